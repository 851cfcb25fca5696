"""Protobuf bodies: the fast path of OTLP ingest.

Spans are parsed into a lean copy of ExportTraceServiceRequest whose span attributes stay serialized
KeyValues; short scalar KeyValues are then read straight from their bytes and cached, since model, team,
provider ... repeat on every span. Measured 2-3x faster than walking the generated messages, which builds
one Python object per KeyValue and AnyValue; tests/ingest/test_decode_protobuf.py holds it to protobuf's
own decoding. Logs and metrics are rarer and walk the generated messages.

When the optional C module `_spans` is built, it takes the plain trace exports first (spans without events or
links, none to reject) and builds the same spans in about half the time (3.0 against 5.6 µs a span, measured
in-process on the benchmark's exports); anything else it leaves to the Python code here, which therefore stays
the reference (tests/ingest/test_decode_c.py holds the two to the same output). OBSERVATORY_INGEST_PURE_PYTHON=1
turns it off.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from ingest.otlp_decode import limits
from ingest.otlp_decode.decoded import (
    DecodedLogs,
    DecodedMetrics,
    DecodedTraces,
    LogRecordView,
    MetricPointView,
    event_name_attribute,
)
from ingest.otlp_decode.limits import (
    ZERO_SPAN_ID,
    ZERO_TRACE_ID,
    OtlpDecodeError,
    Reject,
    log_ids,
    note_error,
    span_label,
    span_problem,
)
from ingest.records import AttrValue, EventView, SpanView


def _load_c_decoder():
    if os.environ.get("OBSERVATORY_INGEST_PURE_PYTHON", "").strip().lower() in ("1", "true", "yes"):
        return None
    try:
        from ingest.otlp_decode import _spans
    except ImportError:
        return None
    return _spans


c_decoder = _load_c_decoder()

_PB_SCALARS = frozenset(("string_value", "int_value", "double_value", "bool_value", "bytes_value"))


def _lean_trace_request() -> type[Message]:
    """ExportTraceServiceRequest with the same wire format, except that span attributes stay raw bytes.

    upb parses a body in well under a microsecond per span; the cost is in building one Python message
    per KeyValue and AnyValue afterwards. Declared as `repeated bytes`, each span's attributes come back
    as serialized KeyValues, which `_pb_key_value` decodes (and validates, with the real KeyValue type)
    and caches, since most attributes repeat from span to span. Everything else keeps its real type.
    """
    package = "observatory.ingest.lean"
    pool = descriptor_pool.Default()
    name = "observatory/ingest/lean_trace.proto"
    real = (ExportTraceServiceRequest.DESCRIPTOR, ResourceSpans.DESCRIPTOR, ScopeSpans.DESCRIPTOR, Span.DESCRIPTOR)
    try:
        pool.FindFileByName(name)  # built already: this module was reloaded
    except KeyError:
        file = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
        file.dependency.extend(message.file.name for message in (KeyValue.DESCRIPTOR, Resource.DESCRIPTOR, Span.DESCRIPTOR))
        renamed = {f".{message.full_name}": f".{package}.{message.name}" for message in real}
        for message in real:
            lean = file.message_type.add()
            message.CopyToProto(lean)
            del lean.nested_type[:]  # Span.Event, Span.Link and Span.SpanKind stay the real ones
            del lean.enum_type[:]
            for lean_field in lean.field:
                if lean_field.type_name in renamed:
                    lean_field.type_name = renamed[lean_field.type_name]
                elif message is Span.DESCRIPTOR and lean_field.name == "attributes":
                    lean_field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                    lean_field.ClearField("type_name")
        pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.ExportTraceServiceRequest"))


_LeanTraceRequest = _lean_trace_request()

# Decoded span attributes by their serialized KeyValue: model, operation, team, provider ... repeat on
# every span. Only short KeyValues are kept: scalars as they are, flat arrays (finish reasons) as tuples
# that each span gets a fresh list of. Content and nested values are decoded every time.
class _KeyValueCache(dict):
    """`cache[raw]` decodes what it does not hold yet (`_pb_key_value`), so that a span's attributes are one
    `dict(map(cache.__getitem__, pairs))`: a loop in C that leaves Python only on a miss."""

    def __missing__(self, raw: bytes) -> tuple[str, AttrValue]:
        return _pb_key_value(raw)


_KEY_VALUES: dict[bytes, tuple[str, AttrValue]] = _KeyValueCache()
_SCALAR_ARRAYS: dict[bytes, tuple[str, tuple[AttrValue, ...]]] = {}
_CACHE_SIZE = 16_384  # entries per cache; a full cache is emptied
_CACHED_BYTES = 160


def _pb_value(value: Any, depth: int) -> AttrValue:
    kind = value.WhichOneof("value")
    if kind in _PB_SCALARS:
        return getattr(value, kind)
    if kind is None:
        return None
    if depth > limits.MAX_DEPTH:
        raise OtlpDecodeError(f"attribute value nested deeper than {limits.MAX_DEPTH} levels")
    if kind == "array_value":
        scalars = _PB_SCALARS
        return [
            getattr(item, item_kind) if (item_kind := item.WhichOneof("value")) in scalars else _pb_value(item, depth + 1)
            for item in value.array_value.values
        ]
    pairs = value.kvlist_value.values
    if len(pairs) > limits.MAX_ATTRIBUTES:
        raise Reject(f"kvlist value has more than {limits.MAX_ATTRIBUTES} entries")
    return {kv.key: _pb_value(kv.value, depth + 1) for kv in pairs}


def _pb_attrs(pairs: Any) -> dict[str, AttrValue]:
    if len(pairs) > limits.MAX_ATTRIBUTES:
        raise Reject(f"more than {limits.MAX_ATTRIBUTES} attributes")
    out: dict[str, AttrValue] = {}
    scalars = _PB_SCALARS
    for kv in pairs:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind in scalars else _pb_value(value, 1)
    return out


def _pb_resource(pairs: Any) -> dict[str, AttrValue]:
    try:
        return _pb_attrs(pairs)
    except Reject as exc:
        raise OtlpDecodeError(f"resource: {exc.reason}") from None


def _pb_parse(message_type: Any, body: bytes, what: str) -> Any:
    try:
        return message_type.FromString(body)
    except (DecodeError, RuntimeError, ValueError, TypeError) as exc:
        raise OtlpDecodeError(f"body is not a valid OTLP protobuf {what} export") from exc


def _pb_key_value(raw: bytes) -> tuple[str, AttrValue]:
    """One span attribute from its serialized KeyValue (the `_KEY_VALUES` cache missed)."""
    array = _SCALAR_ARRAYS.get(raw)
    if array is not None:
        return array[0], list(array[1])
    pair = _pb_short_scalar(raw)
    if pair is None:
        kv = _pb_parse(KeyValue, raw, "trace")
        value = kv.value
        kind = value.WhichOneof("value")
        if kind is not None and kind not in _PB_SCALARS:
            decoded = _pb_value(value, 1)
            if kind == "array_value" and all(type(item) is not list and type(item) is not dict for item in decoded):
                _remember(_SCALAR_ARRAYS, raw, (kv.key, tuple(decoded)))
            return kv.key, decoded
        pair = (kv.key, None if kind is None else getattr(value, kind))
    _remember(_KEY_VALUES, raw, pair)
    return pair


def _remember(cache: dict[bytes, Any], raw: bytes, entry: Any) -> None:
    if len(raw) <= _CACHED_BYTES:
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[raw] = entry


def _pb_check_key_values(pairs: Any) -> None:
    """Attributes of a rejected span are not all decoded, but a malformed one still fails the whole body."""
    for raw in pairs:
        if raw not in _KEY_VALUES and raw not in _SCALAR_ARRAYS:
            _pb_parse(KeyValue, raw, "trace")


def _pb_short_scalar(raw: bytes) -> tuple[str, AttrValue] | None:
    """A short KeyValue holding a string, a non-negative int or a bool, read from its usual encoding.

    That is `0A len key 12 len AnyValue` with AnyValue `0A len text`, `18 varint` or `10 00|01`, all of it
    under 128 bytes (so every length is one byte). Anything else, including text that is not UTF-8, is
    None: protobuf decodes it.
    """
    size = len(raw)
    if size >= 0x80 or size < 5 or raw[0] != 0x0A:
        return None
    value_at = raw[1] + 2
    if value_at + 4 > size or raw[value_at] != 0x12 or raw[value_at + 1] != size - value_at - 2:
        return None
    tag = raw[value_at + 2]
    try:
        if tag == 0x0A:
            if raw[value_at + 3] != size - value_at - 4:
                return None
            return raw[2:value_at].decode(), raw[value_at + 4 :].decode()
        if tag == 0x18 and size - value_at <= 12:  # at most 9 varint bytes: 0 <= value < 2**63
            number = 0
            shift = 0
            for byte in raw[value_at + 3 : -1]:
                if byte < 0x80:
                    return None
                number |= (byte & 0x7F) << shift
                shift += 7
            if raw[-1] >= 0x80:
                return None
            return raw[2:value_at].decode(), number | raw[-1] << shift
        if tag == 0x10 and size == value_at + 4 and raw[-1] <= 1:
            return raw[2:value_at].decode(), raw[-1] == 1
    except UnicodeDecodeError:
        return None
    return None


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    head = bytearray([number << 3 | 2])
    size = len(payload)
    while size >= 0x80:
        head.append(size & 0x7F | 0x80)
        size >>= 7
    head.append(size)
    return bytes(head) + payload


# The C decoder hands over a ResourceSpans' resource and a ScopeSpans' scope as they were sent; they are parsed
# inside an export of their own, at the depth they have in the whole body, so that protobuf's nesting limit refuses
# exactly what it refuses in the whole body.
def _resource_of(raw: bytes) -> dict[str, AttrValue]:
    """A ResourceSpans' resource attributes from its serialized Resource (for the C decoder)."""
    request = _pb_parse(_LeanTraceRequest, _field(1, _field(1, raw)), "trace")
    return _pb_resource(request.resource_spans[0].resource.attributes)


@functools.lru_cache(maxsize=256)
def _scope_of(raw: bytes) -> tuple[str, str]:
    """A ScopeSpans' (name, version) from its serialized InstrumentationScope (for the C decoder)."""
    request = _pb_parse(_LeanTraceRequest, _field(1, _field(2, _field(1, raw))), "trace")
    scope = request.resource_spans[0].scope_spans[0].scope
    return scope.name, scope.version


def decode_traces(body: bytes) -> DecodedTraces:
    """An uncompressed protobuf trace export; invalid items are counted and explained, not raised."""
    spans = _decode_in_c(body)
    if spans is not None:
        return DecodedTraces(spans, 0, [])
    return _decode_traces_in_python(body)


def _decode_in_c(body: bytes) -> list[SpanView] | None:
    """The spans of a plain export, by the C decoder; None when it leaves the body to Python (or is not built)."""
    if c_decoder is None:
        return None
    return c_decoder.decode(body, _KEY_VALUES.__getitem__, _resource_of, _scope_of, SpanView,
                            time.time_ns() + limits.MAX_FUTURE_NS, limits.MIN_TIME_NS, limits.MAX_ATTRIBUTES,
                            limits.MAX_SPANS)


def _decode_traces_in_python(body: bytes) -> DecodedTraces:
    request = _pb_parse(_LeanTraceRequest, body, "trace")
    resource_spans = request.resource_spans
    total = 0
    for rs in resource_spans:
        for ss in rs.scope_spans:
            total += len(ss.spans)
    if total > limits.MAX_SPANS:
        raise OtlpDecodeError(f"too many spans in one request: {total} > {limits.MAX_SPANS}")
    latest = time.time_ns() + limits.MAX_FUTURE_NS
    spans: list[SpanView] = []
    append = spans.append
    errors: list[str] = []
    rejected = 0
    key_value = _KEY_VALUES.__getitem__
    zero16 = ZERO_TRACE_ID
    zero8 = ZERO_SPAN_ID
    min_time = limits.MIN_TIME_NS
    max_attributes = limits.MAX_ATTRIBUTES
    for rs in resource_spans:
        resource = _pb_resource(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = ss.scope
            scope_name = scope.name
            scope_version = scope.version
            for s in ss.spans:
                tid = s.trace_id
                sid = s.span_id
                psid = s.parent_span_id
                start = s.start_time_unix_nano
                end = s.end_time_unix_nano
                pairs = s.attributes
                if (
                    len(tid) != 16
                    or len(sid) != 8
                    or tid == zero16
                    or sid == zero8
                    or (psid and len(psid) != 8)
                    or not min_time <= start <= latest
                    or end < start
                    or len(pairs) > max_attributes
                ):
                    _pb_check_key_values(pairs)
                    rejected += 1
                    problem = span_problem(tid, sid, psid, start, end, latest) or f"more than {max_attributes} attributes"
                    note_error(errors, f"{span_label(sid)}: {problem}")
                    continue
                try:
                    attributes = dict(map(key_value, pairs))
                    pb_events = s.events
                    if pb_events:
                        if len(pb_events) > limits.MAX_EVENTS:
                            raise Reject(f"more than {limits.MAX_EVENTS} events")
                        events = [EventView(e.name, e.time_unix_nano, _pb_attrs(e.attributes)) for e in pb_events]
                    else:
                        events = []
                except Reject as exc:
                    _pb_check_key_values(pairs)
                    rejected += 1
                    note_error(errors, f"{span_label(sid)}: {exc.reason}")
                    continue
                status = s.status
                append(
                    SpanView(
                        tid.hex(),
                        sid.hex(),
                        psid.hex() if psid and psid != zero8 else None,
                        s.name,
                        s.kind,
                        start,
                        end,
                        status.code,
                        status.message,
                        attributes,
                        events,
                        resource,
                        scope_name,
                        scope_version,
                    )
                )
    return DecodedTraces(spans, rejected, errors)


def decode_logs(body: bytes) -> DecodedLogs:
    """An uncompressed protobuf logs export; invalid items are counted and explained, not raised."""
    request = _pb_parse(ExportLogsServiceRequest, body, "logs")
    total = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    if total > limits.MAX_LOG_RECORDS:
        raise OtlpDecodeError(f"too many log records in one request: {total} > {limits.MAX_LOG_RECORDS}")
    records: list[LogRecordView] = []
    errors: list[str] = []
    rejected = 0
    for rl in request.resource_logs:
        resource = _pb_resource(rl.resource.attributes)
        for sl in rl.scope_logs:
            scope_name = sl.scope.name
            scope_version = sl.scope.version
            for lr in sl.log_records:
                try:
                    trace_id, span_id = log_ids(lr.trace_id, lr.span_id)
                    attributes = _pb_attrs(lr.attributes)
                    body_value = _pb_value(lr.body, 1) if lr.HasField("body") else None
                except Reject as exc:
                    rejected += 1
                    note_error(errors, f"log record: {exc.reason}")
                    continue
                event_name = lr.event_name or event_name_attribute(attributes)
                records.append(
                    LogRecordView(
                        trace_id,
                        span_id,
                        lr.time_unix_nano or lr.observed_time_unix_nano,
                        event_name,
                        lr.severity_number,
                        lr.severity_text,
                        body_value,
                        attributes,
                        resource,
                        scope_name,
                        scope_version,
                    )
                )
    return DecodedLogs(records, rejected, errors)


def decode_metrics(body: bytes) -> DecodedMetrics:
    """An uncompressed protobuf metrics export; invalid items are counted and explained, not raised."""
    request = _pb_parse(ExportMetricsServiceRequest, body, "metrics")
    total = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    if total > limits.MAX_METRIC_POINTS:
        raise OtlpDecodeError(f"too many metric points in one request: {total} > {limits.MAX_METRIC_POINTS}")
    points: list[MetricPointView] = []
    errors: list[str] = []
    rejected = 0
    for rm in request.resource_metrics:
        resource = _pb_resource(rm.resource.attributes)
        for sm in rm.scope_metrics:
            scope_name = sm.scope.name
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind not in ("gauge", "sum", "histogram", "exponential_histogram"):
                    continue
                data = getattr(metric, kind)
                is_monotonic = kind == "sum" and data.is_monotonic
                temporality = 0 if kind == "gauge" else data.aggregation_temporality
                for p in data.data_points:
                    if p.time_unix_nano == 0:
                        rejected += 1
                        note_error(errors, f"metric {metric.name}: data point without a time")
                        continue
                    try:
                        attributes = {**resource, **_pb_attrs(p.attributes)}
                    except Reject as exc:
                        rejected += 1
                        note_error(errors, f"metric {metric.name}: {exc.reason}")
                        continue
                    if kind in ("gauge", "sum"):
                        value = float(p.as_int) if p.WhichOneof("value") == "as_int" else p.as_double
                        count = None
                        point_kind = kind
                    else:
                        value = p.sum
                        count = p.count
                        point_kind = "histogram"
                    points.append(
                        MetricPointView(
                            metric.name,
                            metric.unit,
                            point_kind,
                            is_monotonic,
                            temporality,
                            attributes,
                            resource,
                            scope_name,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            value,
                            count,
                        )
                    )
    return DecodedMetrics(points, rejected, errors)
