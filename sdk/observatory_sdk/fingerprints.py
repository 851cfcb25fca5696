"""Request fingerprints (`observatory.request_hash`, `observatory.prompt_prefix_hash`): sha256 over
a canonical form of the request whose cost stays bounded however long the prompt is.

The canonical form is written in one pass over the request: each value with a type tag, strings
and lists with their length first (so no two different requests can write the same text), and
mapping keys sorted. A string longer than WHOLE_CHARS is represented by its length, its first and
last EDGE_CHARS characters and SAMPLES evenly spaced SAMPLE_CHARS-character slices (3 KiB however
long it is); a list longer than WHOLE_ITEMS by its length, its first and last EDGE_ITEMS items and
SAMPLES evenly spaced items. Worked example: a 425 KiB (~100k-token) document is hashed from 3 KiB
of it, 1024 characters at each end and 32 slices of 32 characters every ~13 KiB in between.

Equal requests always get equal hashes. Two different requests get different hashes unless they
differ only inside the unsampled middle of a long string (or list) of the same length: an edit
that keeps the length of a 100k-token document and touches neither its first nor last 1024
characters nor a sampled slice. Duplicate requests (retries, the same question asked again) and
shared prompt prefixes (a fixed system prompt, tools and document) are what the dashboard looks
for, and those are found exactly."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

WHOLE_CHARS = 4096
EDGE_CHARS = 1024
SAMPLE_CHARS = 32
WHOLE_ITEMS = 64
EDGE_ITEMS = 16
SAMPLES = 32
MAX_DEPTH = 32


class _NotHashable(Exception):
    pass


def _sampled_text(text: str | bytes) -> list[Any]:
    """The ends of a long string (or bytes) and SAMPLES slices spaced evenly between them."""
    size = len(text)
    step = (size - 2 * EDGE_CHARS) // (SAMPLES + 1)
    parts = [text[:EDGE_CHARS]]
    parts += [text[EDGE_CHARS + step * n : EDGE_CHARS + step * n + SAMPLE_CHARS] for n in range(1, SAMPLES + 1)]
    parts.append(text[-EDGE_CHARS:])
    return parts


def _sampled_items(items: Any) -> list[Any]:
    size = len(items)
    step = (size - 2 * EDGE_ITEMS) // (SAMPLES + 1)
    middle = [items[EDGE_ITEMS + step * n] for n in range(1, SAMPLES + 1)]
    return [*items[:EDGE_ITEMS], *middle, *items[size - EDGE_ITEMS :]]


def _scalar(value: Any) -> str | None:
    """The canonical text of a short string, a number, a bool or None; None for anything else."""
    kind = type(value)
    if kind is str:
        return f"s{len(value)}:{value}" if len(value) <= WHOLE_CHARS else None
    if kind is int:
        return f"i{value};"
    if value is None:
        return "n"
    if kind is bool:
        return "t" if value else "f"
    if kind is float:
        return f"r{value!r};"
    return None


def _write(value: Any, out: list[str], depth: int, seen: dict[int, str] | None) -> None:
    text = _scalar(value)
    if text is not None:
        out.append(text)
        return
    if depth > MAX_DEPTH:  # deeper than any request: a cycle
        raise _NotHashable
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        if seen is not None:  # a container written before for the other hash of the same call
            text = seen.get(id(value))
            if text is not None:
                out.append(text)
                return
        start = len(out)
        if kind is dict:
            _write_mapping(value, out, depth, seen)
        else:
            _write_items(value, out, depth, seen)
        if seen is not None:
            text = "".join(out[start:])
            del out[start:]
            out.append(text)
            seen[id(value)] = text
    elif kind is str:
        out.append(f"S{len(value)}:")
        out += _sampled_text(value)
    elif isinstance(value, Mapping):
        _write_mapping(value, out, depth, seen)
    elif isinstance(value, list | tuple):
        _write_items(value, out, depth, seen)
    elif hasattr(value, "model_dump"):  # a pydantic request object hashes like its dict form
        _write(value.model_dump(mode="json", exclude_unset=True), out, depth + 1, None)
    elif isinstance(value, bytes | bytearray):
        out.append(f"b{len(value)}:")
        parts = [value] if len(value) <= WHOLE_CHARS else _sampled_text(value)
        out += [bytes(part).hex() for part in parts]
    elif isinstance(value, str):  # a str subclass (an enum member) hashes like the plain string
        _write(value[:], out, depth, seen)
    elif isinstance(value, int | float):
        _write((float if isinstance(value, float) else int)(value), out, depth, seen)
    else:  # iterators (already consumed by the client) and unknown objects have no stable form
        raise _NotHashable


def _write_mapping(mapping: Mapping[Any, Any], out: list[str], depth: int, seen: dict[int, str] | None) -> None:
    append = out.append
    append(f"d{len(mapping)}:")
    for key in sorted(mapping):
        item = mapping[key]
        # Inlined for the common case, short string keys and values: this loop is most of the cost.
        if type(key) is str and len(key) <= WHOLE_CHARS:
            append(f"s{len(key)}:{key}")
        else:
            _write(key, out, depth + 1, seen)
        if type(item) is str and len(item) <= WHOLE_CHARS:
            append(f"s{len(item)}:{item}")
        else:
            _write(item, out, depth + 1, seen)


def _write_items(items: Any, out: list[str], depth: int, seen: dict[int, str] | None) -> None:
    size = len(items)
    out.append(f"l{size}:")
    for item in items if size <= WHOLE_ITEMS else _sampled_items(items):
        _write(item, out, depth + 1, seen)


def fingerprint(payload: Any, seen: dict[int, str] | None = None) -> str | None:
    """sha256 of the canonical form of `payload`, first 16 bytes as hex; None when part of it
    cannot be read (a one-shot iterator, an unknown object). Hashes of parts of one request share
    `seen` (the canonical text of each container written, by id), so each is written once: only
    while those objects are alive and unchanged, i.e. within one call."""
    out: list[str] = []
    try:
        _write(payload, out, 0, seen)
    except (_NotHashable, TypeError, ValueError):
        return None
    return hashlib.sha256("".join(out).encode("utf-8", "surrogatepass")).hexdigest()[:32]
