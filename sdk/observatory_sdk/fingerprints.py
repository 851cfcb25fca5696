"""Request fingerprints (`observatory.request_hash`, `observatory.prompt_prefix_hash`): sha256 over
a canonical form of the request whose cost stays bounded however long the prompt is.

The canonical form is written in one pass over the request: each value with a type tag, strings
and lists with their length first (so no two different requests can write the same text), and
mapping keys sorted. A string longer than WHOLE_CHARS is represented by its length, its first and
last EDGE_CHARS characters and SAMPLES evenly spaced SAMPLE_CHARS-character slices (1.5 KiB however
long it is); a list longer than WHOLE_ITEMS by its length, its first and last EDGE_ITEMS items and
SAMPLES evenly spaced items. Worked example: a 425 KiB (~100k-token) document is hashed from 1.5 KiB
of it, 256 characters at each end and 32 slices of 32 characters every ~13 KiB in between.

Equal requests always get equal hashes. Two different requests get different hashes unless they
differ only inside the unsampled middle of a long string (or list) of the same length: an edit
that keeps the length of a 100k-token document and touches neither its first nor last 256
characters nor a sampled slice. Duplicate requests (retries, the same question asked again) and
shared prompt prefixes (a fixed system prompt, tools and document) are what the dashboard looks
for, and those are found exactly."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from .accelerator import speedups

WHOLE_CHARS = 4096
EDGE_CHARS = 256
SAMPLE_CHARS = 32
WHOLE_ITEMS = 64
EDGE_ITEMS = 16
SAMPLES = 32
MAX_DEPTH = 32
SAMPLERS_LIMIT = 256
_samplers: dict[int, Any] = {}


class _NotHashable(Exception):
    pass


def _sampled_text(text: str | bytes) -> Any:
    """The ends of a long string (or bytes) and SAMPLES slices spaced evenly between them."""
    size = len(text)
    pick = _samplers.get(size)
    if pick is None:
        step = (size - 2 * EDGE_CHARS) // (SAMPLES + 1)
        slices = [slice(0, EDGE_CHARS)]
        slices += [slice(EDGE_CHARS + step * n, EDGE_CHARS + step * n + SAMPLE_CHARS) for n in range(1, SAMPLES + 1)]
        slices.append(slice(size - EDGE_CHARS, size))
        pick = itemgetter(*slices)  # all slices taken in one C call
        if len(_samplers) >= SAMPLERS_LIMIT:
            _samplers.clear()
        _samplers[size] = pick
    return pick(text)


def _sampled_items(items: Any) -> list[Any]:
    size = len(items)
    step = (size - 2 * EDGE_ITEMS) // (SAMPLES + 1)
    middle = [items[EDGE_ITEMS + step * n] for n in range(1, SAMPLES + 1)]
    return [*items[:EDGE_ITEMS], *middle, *items[size - EDGE_ITEMS :]]


def _text_py(value: Any, depth: int, seen: dict[int, str] | None) -> str:
    """The canonical text of `value`, in Python: the reference, and the writer used when the C
    one (`_speedups`) is not built. Containers met before in the same call (`seen`, by id) are not
    written twice: the prefix and the request hash share their messages."""
    kind = type(value)
    if kind is str:
        size = len(value)
        if size <= WHOLE_CHARS:
            return f"s{size}:{value}"
        if depth > MAX_DEPTH:
            raise _NotHashable
        return f"S{size}:" + "".join(_sampled_text(value))
    if kind is int:
        return f"i{value};"
    if value is None:
        return "n"
    if kind is bool:
        return "t" if value else "f"
    if kind is float:
        return f"r{value!r};"
    if depth > MAX_DEPTH:  # deeper than any request: a cycle
        raise _NotHashable
    if kind is dict or kind is list or kind is tuple:
        if seen is None:
            return _mapping_text(value, depth, None) if kind is dict else _items_text(value, depth, None)
        text = seen.get(id(value))
        if text is None:
            text = _mapping_text(value, depth, seen) if kind is dict else _items_text(value, depth, seen)
            seen[id(value)] = text
        return text
    return _other_text(value, depth, seen)


def _other_text(value: Any, depth: int, seen: dict[int, str] | None) -> str:
    """The canonical text of what is not a plain dict, list, tuple, str, int, float, bool or None
    (the C writer hands those back here); the parts inside are written by `_text`."""
    if depth > MAX_DEPTH:
        raise _NotHashable
    kind = type(value)
    if kind is _Sampled:
        return f"l{value.size}:" + "".join([_text(item, depth + 1, seen) for item in value])
    if kind is _Dumped:
        return _text(value.value, depth + 1, None)
    if isinstance(value, Mapping):
        return _mapping_text(value, depth, seen)
    if isinstance(value, list | tuple):
        return _items_text(value, depth, seen)
    if hasattr(value, "model_dump"):  # a pydantic request object hashes like its dict form
        return _text(value.model_dump(mode="json", exclude_unset=True), depth + 1, None)
    if isinstance(value, bytes | bytearray):
        parts = [value] if len(value) <= WHOLE_CHARS else _sampled_text(value)
        return f"b{len(value)}:" + "".join([bytes(part).hex() for part in parts])
    if isinstance(value, str):  # a str subclass (an enum member) hashes like the plain string
        return _text(value[:], depth, seen)
    if isinstance(value, int | float):
        return _text((float if isinstance(value, float) else int)(value), depth, seen)
    raise _NotHashable  # iterators (already consumed by the client) and unknown objects have no stable form


def _mapping_text(mapping: Mapping[Any, Any], depth: int, seen: dict[int, str] | None) -> str:
    parts = [f"d{len(mapping)}:"]
    append = parts.append
    deeper = depth + 1
    for key in sorted(mapping):
        item = mapping[key]
        # Inlined for the common case, short string keys and values: this loop is most of the cost.
        if type(key) is str and len(key) <= WHOLE_CHARS:
            if type(item) is str and len(item) <= WHOLE_CHARS:
                append(f"s{len(key)}:{key}s{len(item)}:{item}")
                continue
            append(f"s{len(key)}:{key}")
        else:
            append(_text(key, deeper, seen))
        append(_text(item, deeper, seen))
    return "".join(parts)


def _items_text(items: Any, depth: int, seen: dict[int, str] | None) -> str:
    size = len(items)
    deeper = depth + 1
    chosen = items if size <= WHOLE_ITEMS else _sampled_items(items)
    return f"l{size}:" + "".join([_text(item, deeper, seen) for item in chosen])


class _Sampled(list):  # type: ignore[type-arg]
    """A snapshot of a list longer than WHOLE_ITEMS: its sampled items only, and its length."""

    __slots__ = ("size",)

    def __init__(self, size: int, items: list[Any]) -> None:
        super().__init__(items)
        self.size = size


class _Dumped(dict):  # type: ignore[type-arg]
    """A snapshot of a pydantic request object: its dump (`value`), read like the object's fields
    (a dict dump is the mapping itself), hashed one level down like the object."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        super().__init__(value if type(value) is dict else ())
        self.value = value


class _Unreadable:
    """Stands in for what has no stable form (a one-shot iterator, an unknown object, too deep)."""


_UNREADABLE = _Unreadable()


class _Omitted:
    """Stands in, in a snapshot, for a client's "not given" sentinel (`omit`): the call's own
    reading of the snapshot leaves that argument out, as if it had not been passed."""

    def __repr__(self) -> str:
        return "OMITTED"


OMITTED = _Omitted()
_omitted_types: tuple[type, ...] = ()


def omit(*types: type) -> None:
    """Register client sentinel types (openai.NotGiven, ...) that a snapshot writes as OMITTED."""
    global _omitted_types
    _omitted_types = tuple({*_omitted_types, *types})


_SHARED = frozenset({str, int, float, bool, type(None), bytes})
_SNAPSHOT_DEPTH = MAX_DEPTH + 4  # the request sits one level down in its hash, messages one up in the prefix's


def snapshot_py(value: Any, depth: int = 0) -> Any:
    """A copy of a request value that the app can no longer change and that hashes (and reads) as
    the value did when it was taken: containers are copied, strings and numbers shared, so its
    cost grows with the number of containers and items, never with the length of a text; a list
    longer than WHOLE_ITEMS keeps only the items its hash reads. Made on the app's thread when the
    call starts; the hashes are written from it later, by the export thread."""
    kind = type(value)
    if kind in _SHARED:
        return value
    if depth > _SNAPSHOT_DEPTH:
        return _UNREADABLE
    if kind is dict:
        copy = value.copy()
        for key, item in copy.items():
            if type(item) not in _SHARED:
                copy[key] = snapshot(item, depth + 1)
        return copy
    if (kind is list or kind is tuple) and len(value) <= WHOLE_ITEMS:
        items = [item if type(item) in _SHARED else snapshot(item, depth + 1) for item in value]
        return items if kind is list else tuple(items)
    return _snapshot_other(value, depth)


def _snapshot_other(value: Any, depth: int) -> Any:
    if isinstance(value, _omitted_types):
        return OMITTED
    if isinstance(value, Mapping):
        return {key: snapshot(value[key], depth + 1) for key in value}
    if isinstance(value, list | tuple):
        if len(value) <= WHOLE_ITEMS:
            return [snapshot(item, depth + 1) for item in value]
        return _Sampled(len(value), [snapshot(item, depth + 1) for item in _sampled_items(value)])
    if hasattr(value, "model_dump"):
        try:
            return _Dumped(snapshot(value.model_dump(mode="json", exclude_unset=True), depth + 1))
        except Exception:
            return _UNREADABLE
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value[:]
    if isinstance(value, int | float):
        return (float if isinstance(value, float) else int)(value)
    return _UNREADABLE


def _c_functions() -> tuple[Any, Any]:
    """`_speedups.text` and `_speedups.snapshot` (the same text and copy, made in C), or Nones
    when the C module is not built or is turned off (see accelerator)."""
    if speedups is None:
        return None, None
    speedups.configure(_other_text, _NotHashable)
    speedups.configure_snapshot(_snapshot_other, _UNREADABLE)
    speedups.configure_digest(hashlib.sha256)
    return speedups.text, speedups.snapshot


_c_text, _c_snapshot = _c_functions()
_text = _c_text or _text_py
"""The canonical text writer in use: the C one when built, else `_text_py`."""
snapshot = _c_snapshot or snapshot_py
"""The snapshot in use: the C one when built, else `snapshot_py` (whose docstring says what it is)."""


def canonical_text(payload: Any, seen: dict[int, str] | None = None, depth: int = 0) -> str | None:
    """The canonical form of `payload` (see the module docstring), written as if `depth` levels
    down; None when part of it cannot be read (a one-shot iterator, an unknown object, a cycle)."""
    try:
        return _text(payload, depth, seen)
    except (_NotHashable, TypeError, ValueError, RecursionError):
        return None


def digest(text: str) -> str:
    """The hash of a canonical text: sha256, first 16 bytes as hex."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def fingerprint(payload: Any, seen: dict[int, str] | None = None) -> str | None:
    """sha256 of the canonical form of `payload`, first 16 bytes as hex; None when part of it
    cannot be read (a one-shot iterator, an unknown object). Hashes of parts of one request share
    `seen` (the canonical text of each container written, by id), so each is written once: only
    while those objects are alive and unchanged, i.e. within one call."""
    text = canonical_text(payload, seen)
    return None if text is None else digest(text)
