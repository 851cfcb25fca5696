"""What is left of a span's attributes once a mapper has read them: consumed ones dropped, content moved
out, the rest kept (as JSON-ready values) in the call's attributes."""

from __future__ import annotations

from ingest.mappers.normalize.content import CONTENT_KEYS, CONTENT_PREFIXES
from ingest.mappers.normalize.values import jsonable
from ingest.records import AttrValue

_KEEP, _DROP, _CONTENT = 0, 1, 2
_MAX_CACHED_KEYS = 20_000
_MAX_CACHED_LAYOUTS = 2048
_MAX_LAYOUT_CHARS = 2048  # longer tuples of names (all names together) are classified again on each span


class AttributeFilter:
    """Splits a span's attributes: consumed into columns (dropped), content (moved out), the rest kept.

    Each mapper has one. Spans of one instrumentation carry the same attribute names in the same order,
    so the split is cached per tuple of names (its "layout"), and key classifications per name.
    """

    __slots__ = ("_classes", "_layouts", "consumed", "consumed_prefixes")

    def __init__(self, consumed: frozenset[str], consumed_prefixes: tuple[str, ...] = ("observatory.",)) -> None:
        self.consumed = consumed
        self.consumed_prefixes = consumed_prefixes
        self._classes: dict[str, int] = {}
        self._layouts: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def _classify(self, key: str) -> int:
        if key in self.consumed or key.startswith(self.consumed_prefixes):
            kind = _DROP
        elif key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES):
            kind = _CONTENT
        else:
            kind = _KEEP
        if len(self._classes) < _MAX_CACHED_KEYS:
            self._classes[key] = kind
        return kind

    def _layout(self, keys: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(names to keep, content names) among `keys`, in their order."""
        keep: list[str] = []
        content: list[str] = []
        classes = self._classes
        for key in keys:
            kind = classes.get(key)
            if kind is None:
                kind = self._classify(key)
            if kind == _KEEP:
                keep.append(key)
            elif kind == _CONTENT:
                content.append(key)
        layout = (tuple(keep), tuple(content))
        if sum(map(len, keys)) <= _MAX_LAYOUT_CHARS:
            if len(self._layouts) >= _MAX_CACHED_LAYOUTS:
                self._layouts.clear()
            self._layouts[keys] = layout
        return layout

    def extend(self, consumed: set[str] | frozenset[str]) -> AttributeFilter:
        return AttributeFilter(self.consumed | consumed, self.consumed_prefixes)

    def split(self, attrs: dict[str, AttrValue]) -> tuple[dict[str, AttrValue], dict[str, AttrValue]]:
        """(attributes to keep, content attributes)."""
        keys = tuple(attrs)
        layout = self._layouts.get(keys)
        if layout is None:
            layout = self._layout(keys)
        keep_keys, content_keys = layout
        keep: dict[str, AttrValue] = {}
        for key in keep_keys:
            value = attrs[key]
            value_type = type(value)
            keep[key] = jsonable(value) if value_type is list or value_type is dict or value_type is bytes else value
        return keep, {key: attrs[key] for key in content_keys} if content_keys else {}
