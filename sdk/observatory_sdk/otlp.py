"""OTLP/protobuf wire encoding written by hand: one `Span` message at a time as bytes, and the
ExportTraceServiceRequest around a batch; and the one field of the server's answer the SDK reads.
Building generated protobuf objects costs several times more per span (and loading protobuf
alone adds megabytes), and most attributes repeat from call to call, so their bytes are cached."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .accelerator import speedups

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

_SMALL = [bytes((n,)) for n in range(128)]
_PACK_FIXED64 = struct.Struct("<Q").pack
_PACK_DOUBLE = struct.Struct("<d").pack
_PACK_FIXED32 = struct.Struct("<I").pack
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
SPAN_ATTRIBUTES = b"\x4a"
_CACHE_KEYS = 512
_CACHE_VALUES = 1024
_cache: dict[str, dict[Any, tuple[type, bytes]]] = {}

SPAN_KIND_CLIENT = 3
STATUS_ERROR = 2


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte, the payload length, the payload."""
    return tag + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:
    if isinstance(value, str):
        return _field(b"\x0a", value.encode("utf-8", "replace"))
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _PACK_DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(item)) for item in value))
    return _field(b"\x0a", str(value).encode("utf-8", "replace"))


def _key_value(tag: bytes, key: str, value: Any) -> bytes:
    return _field(tag, _field(b"\x0a", key.encode()) + _field(b"\x12", _any_value(value)))


def encode_attributes(attributes: Mapping[str, Any], tag: bytes = SPAN_ATTRIBUTES) -> bytes:
    """Repeated KeyValue fields (a Span's attributes by default): by the C module when it is built
    (see accelerator), else `encode_attributes_py`."""
    if _c_encode_attributes is not None and tag == SPAN_ATTRIBUTES and type(attributes) is dict:
        return _c_encode_attributes(attributes)
    return encode_attributes_py(attributes, tag)


def encode_attributes_py(attributes: Mapping[str, Any], tag: bytes = SPAN_ATTRIBUTES) -> bytes:
    """`encode_attributes` in Python. A span's attribute whose key and value were encoded before
    comes from the cache: one dict per key, by value (and its type, so that True, 1 and 1.0 stay
    apart); a key whose values never repeat (ids, hashes) just refills."""
    if tag != SPAN_ATTRIBUTES:
        return b"".join([_key_value(tag, key, value) for key, value in attributes.items()])
    parts = []
    append = parts.append
    for key, value in attributes.items():
        values = _cache.get(key)
        if values is None:
            if len(_cache) >= _CACHE_KEYS:
                _cache.clear()
            values = _cache[key] = {}
        try:
            cached = values.get(value)
        except TypeError:  # an unhashable value, such as a list
            append(_key_value(tag, key, value))
            continue
        if cached is not None and cached[0] is type(value):
            append(cached[1])
            continue
        encoded = _key_value(tag, key, value)
        if len(values) >= _CACHE_VALUES:
            values.clear()
        values[value] = (type(value), encoded)
        append(encoded)
    return b"".join(parts)


def _load_c_encoders() -> tuple[Any, Any]:
    if speedups is None:
        return None, None
    speedups.configure_otlp(_any_value)
    return speedups.encode_attributes, speedups.encode_span


_c_encode_attributes, _c_encode_span = _load_c_encoders()


def encode_span_py(
    trace_id: int,
    span_id: int,
    parent_span_id: int | None,
    parent_is_remote: bool,
    name: str,
    kind: int,
    start_ns: int,
    end_ns: int,
    attributes: Mapping[str, Any],
    status_code: int = 0,
    status_message: str | None = None,
) -> bytes:
    """One `Span` message with its field tag, ready to join into `encode_request`: in Python (the
    reference; `encode_span` is the C module's when it is built, byte for byte the same)."""
    flags = _HAS_IS_REMOTE
    parts = [b"\x0a\x10" + trace_id.to_bytes(16, "big"), b"\x12\x08" + span_id.to_bytes(8, "big")]
    if parent_span_id is not None:
        parts.append(b"\x22\x08" + parent_span_id.to_bytes(8, "big"))
        if parent_is_remote:
            flags |= _IS_REMOTE
    parts.append(_field(b"\x2a", name.encode("utf-8", "replace")))
    parts.append(b"\x30" + _SMALL[kind])
    parts.append(b"\x39" + _PACK_FIXED64(start_ns))
    parts.append(b"\x41" + _PACK_FIXED64(end_ns))
    parts.append(encode_attributes(attributes))
    if status_code:
        status = _field(b"\x12", status_message.encode("utf-8", "replace")) if status_message else b""
        parts.append(_field(b"\x7a", status + b"\x18" + _SMALL[status_code]))
    parts.append(b"\x85\x01" + _PACK_FIXED32(flags))
    return _field(b"\x12", b"".join(parts))


encode_span = _c_encode_span or encode_span_py
"""The span encoder in use: the C module's when it is built (see accelerator), else `encode_span_py`."""


def encode_readable_span(span: ReadableSpan) -> bytes:
    """`encode_span` for a finished OpenTelemetry SDK span."""
    parent = span.parent
    return encode_span(
        span.context.trace_id,
        span.context.span_id,
        parent.span_id if parent is not None else None,
        bool(parent is not None and parent.is_remote),
        span.name,
        span.kind.value + 1,  # the SDK counts from INTERNAL = 0, OTLP from UNSPECIFIED = 0
        span.start_time or 0,
        span.end_time or 0,
        span.attributes or {},
        span.status.status_code.value,
        span.status.description,
    )


def encode_scope(name: str, version: str | None) -> bytes:
    scope = _field(b"\x0a", name.encode())
    return scope + (_field(b"\x12", version.encode()) if version else b"")


def encode_resource(resource_attributes: Mapping[str, Any]) -> bytes:
    """The `resource` field of a ResourceSpans: the same for every batch, so encoded once."""
    return _field(b"\x0a", encode_attributes(resource_attributes, b"\x0a"))


def encode_request(resource: Mapping[str, Any] | bytes, scope: bytes, spans: Iterable[bytes]) -> bytes:
    """An ExportTraceServiceRequest: one resource (its attributes, or `encode_resource` of them),
    one instrumentation scope, the encoded spans, in one join."""
    if not isinstance(resource, bytes):
        resource = encode_resource(resource)
    body = b"".join(spans)
    scope_field = _field(b"\x0a", scope)
    scope_size = len(scope_field) + len(body)
    resource_spans_size = len(resource) + 1 + len(_varint(scope_size)) + scope_size
    return b"".join(
        (b"\x0a", _varint(resource_spans_size), resource, b"\x12", _varint(scope_size), scope_field, body)
    )


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 128:
            return value, at


def _fields(data: bytes) -> Iterable[tuple[int, int | bytes]]:
    """(field number, value) of each field of a message: ints for varints, bytes otherwise."""
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, at = _read_varint(data, at)
            yield number, value
        elif wire_type == 2:
            size, at = _read_varint(data, at)
            if at + size > len(data):
                raise ValueError("truncated field")
            yield number, data[at : at + size]
            at += size
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            yield number, data[at : at + width]
            at += width
        else:
            raise ValueError(f"wire type {wire_type}")


def read_partial_success(payload: bytes) -> tuple[int, str]:
    """`partial_success.rejected_spans` and `.error_message` of an ExportTraceServiceResponse;
    ValueError when the payload is not one."""
    rejected, message = 0, ""
    for number, value in _fields(payload):
        if number == 1 and isinstance(value, bytes):
            for inner_number, inner in _fields(value):
                if inner_number == 1 and isinstance(inner, int):
                    rejected = inner
                elif inner_number == 2 and isinstance(inner, bytes):
                    message = inner.decode("utf-8", "replace")
    return rejected, message
