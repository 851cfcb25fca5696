"""OTLP/HTTP export bodies (protobuf or OTLP/JSON) decoded into flat views.

Traces become `SpanView`s, logs `LogRecordView`s and metrics `MetricPointView`s; hostile input is bounded.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from ingest.records import AttrValue, EventView, SpanView

MAX_ATTRIBUTES = 512  # per span, event, resource, log record, data point and kvlist value
MAX_DEPTH = 16  # nested arrayValue / kvlistValue levels inside one attribute value
MAX_EVENTS = 1000  # per span
MAX_SPANS = 50_000  # per request
MAX_LOG_RECORDS = 50_000  # per request
MAX_METRIC_POINTS = 50_000  # per request
MAX_ERRORS_REPORTED = 100  # rejection reasons kept per request; `rejected` still counts them all

MIN_TIME_NS = 946_684_800 * 10**9  # 2000-01-01T00:00:00Z
MAX_FUTURE_NS = 86_400 * 10**9  # a start time more than a day ahead of our clock is rejected

_ZERO16 = bytes(16)
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_ZERO8 = bytes(8)


class OtlpDecodeError(Exception):
    """The body is not a decodable OTLP export; `message` says why (the HTTP layer answers 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Reject(Exception):
    """One span, log record or point is invalid; the rest of the request is kept."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class DecodedTraces:
    spans: list[SpanView]
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class LogRecordView:
    """One OTLP log record (often a GenAI event), flattened like `SpanView`."""

    trace_id: str | None
    span_id: str | None
    time_ns: int  # time_unix_nano, or observed_time_unix_nano when the former is 0
    event_name: str  # the `eventName` field, else the `event.name` attribute
    severity_number: int
    severity_text: str
    body: AttrValue
    attributes: dict[str, AttrValue]
    resource: dict[str, AttrValue]
    scope_name: str
    scope_version: str


@dataclass(slots=True)
class DecodedLogs:
    records: list[LogRecordView]
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class MetricPointView:
    """One metric data point; histograms carry their sum in `value` and their count in `count`."""

    name: str
    unit: str
    kind: str  # gauge | sum | histogram (exponential histograms too)
    is_monotonic: bool
    temporality: int  # 0 unspecified, 1 delta, 2 cumulative
    attributes: dict[str, AttrValue]  # point attributes merged over resource attributes (point wins)
    resource: dict[str, AttrValue]
    scope_name: str
    start_ns: int
    time_ns: int
    value: float
    count: int | None = None


@dataclass(slots=True)
class DecodedMetrics:
    points: list[MetricPointView]
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


def decode_traces(body: bytes, content_type: str) -> DecodedTraces:
    """Decode an (already decompressed) OTLP trace export; invalid spans are counted, not raised."""
    if _body_format(content_type) == "pb":
        return _pb_traces(body)
    return _json_traces(body)


def decode_logs(body: bytes, content_type: str) -> DecodedLogs:
    """Decode an (already decompressed) OTLP logs export."""
    if _body_format(content_type) == "pb":
        return _pb_logs(body)
    return _json_logs(body)


def decode_metrics(body: bytes, content_type: str) -> DecodedMetrics:
    """Decode an (already decompressed) OTLP metrics export into flat data points."""
    if _body_format(content_type) == "pb":
        return _pb_metrics(body)
    return _json_metrics(body)


def _body_format(content_type: str) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("application/x-protobuf", "application/protobuf"):
        return "pb"
    if media == "application/json":
        return "json"
    raise OtlpDecodeError(
        f"unsupported content type {content_type!r}: OTLP/HTTP accepts application/x-protobuf or application/json"
    )


def _note(errors: list[str], message: str) -> None:
    if len(errors) < MAX_ERRORS_REPORTED:
        errors.append(message)


def _span_problem(tid: bytes, sid: bytes, psid: bytes, start: int, end: int, latest: int) -> str | None:
    if len(tid) != 16:
        return f"trace id must be 16 bytes, got {len(tid)}"
    if tid == _ZERO16:
        return "trace id is all zeros"
    if len(sid) != 8:
        return f"span id must be 8 bytes, got {len(sid)}"
    if sid == _ZERO8:
        return "span id is all zeros"
    if psid and len(psid) != 8:
        return f"parent span id must be 8 bytes, got {len(psid)}"
    if start < MIN_TIME_NS:
        return "start time is missing or before 2000-01-01"
    if start > latest:
        return "start time is more than a day in the future"
    if end < start:
        return "end time is before start time"
    return None


def _span_label(sid: bytes) -> str:
    return f"span {sid.hex()}" if len(sid) == 8 else "span"


def _log_ids(tid: bytes, sid: bytes) -> tuple[str | None, str | None]:
    if tid and len(tid) != 16:
        raise _Reject(f"trace id must be 16 bytes, got {len(tid)}")
    if sid and len(sid) != 8:
        raise _Reject(f"span id must be 8 bytes, got {len(sid)}")
    trace_id = tid.hex() if tid and tid != _ZERO16 else None
    span_id = sid.hex() if sid and sid != _ZERO8 else None
    return trace_id, span_id


# --- protobuf -------------------------------------------------------------------------------------

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
_KEY_VALUES: dict[bytes, tuple[str, AttrValue]] = {}
_SCALAR_ARRAYS: dict[bytes, tuple[str, tuple[AttrValue, ...]]] = {}
_CACHE_SIZE = 16_384  # entries per cache; a full cache is emptied
_CACHED_BYTES = 160


def _pb_value(value: Any, depth: int) -> AttrValue:
    kind = value.WhichOneof("value")
    if kind in _PB_SCALARS:
        return getattr(value, kind)
    if kind is None:
        return None
    if depth > MAX_DEPTH:
        raise OtlpDecodeError(f"attribute value nested deeper than {MAX_DEPTH} levels")
    if kind == "array_value":
        scalars = _PB_SCALARS
        return [
            getattr(item, item_kind) if (item_kind := item.WhichOneof("value")) in scalars else _pb_value(item, depth + 1)
            for item in value.array_value.values
        ]
    pairs = value.kvlist_value.values
    if len(pairs) > MAX_ATTRIBUTES:
        raise _Reject(f"kvlist value has more than {MAX_ATTRIBUTES} entries")
    return {kv.key: _pb_value(kv.value, depth + 1) for kv in pairs}


def _pb_attrs(pairs: Any) -> dict[str, AttrValue]:
    if len(pairs) > MAX_ATTRIBUTES:
        raise _Reject(f"more than {MAX_ATTRIBUTES} attributes")
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
    except _Reject as exc:
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


def _pb_traces(body: bytes) -> DecodedTraces:
    request = _pb_parse(_LeanTraceRequest, body, "trace")
    resource_spans = request.resource_spans
    total = 0
    for rs in resource_spans:
        for ss in rs.scope_spans:
            total += len(ss.spans)
    if total > MAX_SPANS:
        raise OtlpDecodeError(f"too many spans in one request: {total} > {MAX_SPANS}")
    latest = time.time_ns() + MAX_FUTURE_NS
    spans: list[SpanView] = []
    append = spans.append
    errors: list[str] = []
    rejected = 0
    cached = _KEY_VALUES.get
    zero16 = _ZERO16
    zero8 = _ZERO8
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
                    or not MIN_TIME_NS <= start <= latest
                    or end < start
                    or len(pairs) > MAX_ATTRIBUTES
                ):
                    _pb_check_key_values(pairs)
                    rejected += 1
                    problem = _span_problem(tid, sid, psid, start, end, latest) or f"more than {MAX_ATTRIBUTES} attributes"
                    _note(errors, f"{_span_label(sid)}: {problem}")
                    continue
                attributes = {}
                try:
                    for raw in pairs:
                        pair = cached(raw)
                        if pair is None:
                            pair = _pb_key_value(raw)
                        attributes[pair[0]] = pair[1]
                    pb_events = s.events
                    if pb_events:
                        if len(pb_events) > MAX_EVENTS:
                            raise _Reject(f"more than {MAX_EVENTS} events")
                        events = [EventView(e.name, e.time_unix_nano, _pb_attrs(e.attributes)) for e in pb_events]
                    else:
                        events = []
                except _Reject as exc:
                    _pb_check_key_values(pairs)
                    rejected += 1
                    _note(errors, f"{_span_label(sid)}: {exc.reason}")
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


def _pb_logs(body: bytes) -> DecodedLogs:
    request = _pb_parse(ExportLogsServiceRequest, body, "logs")
    total = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    if total > MAX_LOG_RECORDS:
        raise OtlpDecodeError(f"too many log records in one request: {total} > {MAX_LOG_RECORDS}")
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
                    trace_id, span_id = _log_ids(lr.trace_id, lr.span_id)
                    attributes = _pb_attrs(lr.attributes)
                    body_value = _pb_value(lr.body, 1) if lr.HasField("body") else None
                except _Reject as exc:
                    rejected += 1
                    _note(errors, f"log record: {exc.reason}")
                    continue
                event_name = lr.event_name or _text(attributes.get("event.name"))
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


def _pb_metrics(body: bytes) -> DecodedMetrics:
    request = _pb_parse(ExportMetricsServiceRequest, body, "metrics")
    total = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    if total > MAX_METRIC_POINTS:
        raise OtlpDecodeError(f"too many metric points in one request: {total} > {MAX_METRIC_POINTS}")
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
                        _note(errors, f"metric {metric.name}: data point without a time")
                        continue
                    try:
                        attributes = {**resource, **_pb_attrs(p.attributes)}
                    except _Reject as exc:
                        rejected += 1
                        _note(errors, f"metric {metric.name}: {exc.reason}")
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


def _text(value: AttrValue) -> str:
    return value if type(value) is str else ""


# --- OTLP/JSON ------------------------------------------------------------------------------------

# Errors that reject one JSON span / record / point; OtlpDecodeError (not a ValueError) still propagates.
_JSON_ROW_ERRORS = (_Reject, TypeError, ValueError, AttributeError, KeyError, OverflowError)
_STRING, _INT, _DOUBLE, _BOOL, _ARRAY, _KVLIST, _BYTES = range(7)
_JSON_KINDS = {
    "stringValue": _STRING,
    "string_value": _STRING,
    "intValue": _INT,
    "int_value": _INT,
    "doubleValue": _DOUBLE,
    "double_value": _DOUBLE,
    "boolValue": _BOOL,
    "bool_value": _BOOL,
    "arrayValue": _ARRAY,
    "array_value": _ARRAY,
    "kvlistValue": _KVLIST,
    "kvlist_value": _KVLIST,
    "bytesValue": _BYTES,
    "bytes_value": _BYTES,
}
_SPECIAL_FLOATS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_TEMPORALITIES = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
}


def _json_document(body: bytes, camel: str, snake: str) -> list[Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"body is not valid JSON: {exc}") from None
    if type(doc) is not dict:
        raise OtlpDecodeError("an OTLP/JSON body must be a JSON object")
    items = _jget(doc, camel, snake)
    if items is None:
        return []
    if type(items) is not list:
        raise OtlpDecodeError(f"{camel} must be an array")
    for item in items:
        if type(item) is not dict:
            raise OtlpDecodeError(f"each element of {camel} must be an object")
    return items


def _jget(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _jlist(obj: dict[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    items = _jget(obj, camel, snake)
    if items is None:
        return []
    if type(items) is not list:
        raise OtlpDecodeError(f"{where}.{camel} must be an array")
    return items


def _jobject(obj: Any, where: str) -> dict[str, Any]:
    if type(obj) is not dict:
        raise OtlpDecodeError(f"{where} must be an object")
    return obj


def _jint(value: Any, what: str) -> int:
    kind = type(value)
    if kind is int:
        return value
    if kind is str:
        digits = value[1:] if value[:1] == "-" else value
        if digits.isascii() and digits.isdigit() and len(digits) <= 30:
            return int(value)
    elif kind is float and value.is_integer():
        return int(value)
    raise _Reject(f"{what} must be an integer, got {str(value)[:40]!r}")


def _jfloat(value: Any, what: str) -> float:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    if kind is str:
        special = _SPECIAL_FLOATS.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise _Reject(f"{what} must be a number, got {str(value)[:40]!r}")


def _jenum(value: Any, names: dict[str, int], what: str) -> int:
    if value is None:
        return 0
    if type(value) is str and value in names:
        return names[value]
    return _jint(value, what)


def _jtime(obj: dict[str, Any], camel: str, snake: str) -> int:
    value = _jget(obj, camel, snake)
    return 0 if value is None else _jint(value, camel)


def _jstr(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if type(value) is not str:
        raise _Reject(f"{what} must be a string")
    return value


def _jid(value: Any, size: int, what: str) -> bytes:
    """Decode an OTLP/JSON id: hex per the spec; base64 (protobuf's JSON mapping) is accepted too."""
    if value is None or value == "":
        return b""
    if type(value) is not str:
        raise _Reject(f"{what} must be a hex string")
    if len(value) == 2 * size:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise _Reject(f"{what} is not hexadecimal") from None
        if len(raw) == size:
            return raw
        raise _Reject(f"{what} is not hexadecimal")
    if len(value) == 4 * ((size + 2) // 3):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == size:
            return raw
    raise _Reject(f"{what} must be {size} bytes ({2 * size} hex characters), got {len(value)} characters")


def _jvalue(value: Any, depth: int) -> AttrValue:
    if type(value) is not dict:
        raise _Reject("attribute value must be an AnyValue object")
    for key, item in value.items():
        kind = _JSON_KINDS.get(key)
        if kind is None:
            continue
        if kind == _STRING:
            if type(item) is str:
                return item
            raise _Reject("stringValue must be a string")
        if kind == _INT:
            number = _jint(item, "intValue")
            if not _INT64_MIN <= number <= _INT64_MAX:
                raise _Reject("intValue is outside the int64 range")
            return number
        if kind == _DOUBLE:
            return _jfloat(item, "doubleValue")
        if kind == _BOOL:
            if type(item) is bool:
                return item
            raise _Reject("boolValue must be true or false")
        if kind == _BYTES:
            if type(item) is not str:
                raise _Reject("bytesValue must be a base64 string")
            try:
                return base64.b64decode(item, validate=True)
            except (binascii.Error, ValueError):
                raise _Reject("bytesValue is not valid base64") from None
        if depth > MAX_DEPTH:
            raise OtlpDecodeError(f"attribute value nested deeper than {MAX_DEPTH} levels")
        if type(item) is not dict:
            raise _Reject(f"{key} must be an object")
        values = item.get("values")
        if values is None:
            values = []
        elif type(values) is not list:
            raise _Reject(f"{key}.values must be an array")
        if kind == _ARRAY:
            return [_jvalue(element, depth + 1) for element in values]
        return _jattrs(values, depth + 1)
    return None


def _jattrs(pairs: Any, depth: int = 1) -> dict[str, AttrValue]:
    if pairs is None:
        return {}
    if type(pairs) is not list:
        raise _Reject("attributes must be an array")
    if len(pairs) > MAX_ATTRIBUTES:
        raise _Reject(f"more than {MAX_ATTRIBUTES} attributes")
    out: dict[str, AttrValue] = {}
    for kv in pairs:
        if type(kv) is not dict:
            raise _Reject("each attribute must be a {key, value} object")
        key = kv.get("key")
        if type(key) is not str:
            raise _Reject("attribute key must be a string")
        value = kv.get("value")
        if type(value) is dict:
            text = value.get("stringValue")
            if type(text) is str:
                out[key] = text
                continue
            number = value.get("intValue")
            if type(number) is str and number.isascii():
                try:
                    number = int(number)
                except ValueError:
                    raise _Reject("intValue must be an integer") from None
            if type(number) is int:
                if not _INT64_MIN <= number <= _INT64_MAX:
                    raise _Reject("intValue is outside the int64 range")
                out[key] = number
                continue
        out[key] = None if value is None else _jvalue(value, depth)
    return out


def _jresource(container: dict[str, Any]) -> dict[str, AttrValue]:
    resource = container.get("resource")
    if resource is None:
        return {}
    _jobject(resource, "resource")
    try:
        return _jattrs(resource.get("attributes"))
    except _JSON_ROW_ERRORS as exc:
        reason = exc.reason if isinstance(exc, _Reject) else "malformed attributes"
        raise OtlpDecodeError(f"resource: {reason}") from None


def _jscope(container: dict[str, Any]) -> tuple[str, str]:
    scope = container.get("scope")
    if scope is None:
        scope = container.get("instrumentationLibrary")
    if scope is None:
        return "", ""
    _jobject(scope, "scope")
    name = scope.get("name") or ""
    version = scope.get("version") or ""
    if type(name) is not str or type(version) is not str:
        raise OtlpDecodeError("scope name and version must be strings")
    return name, version


def _json_traces(body: bytes) -> DecodedTraces:
    resource_spans = _json_document(body, "resourceSpans", "resource_spans")
    groups: list[tuple[dict[str, AttrValue], str, str, list[Any]]] = []
    total = 0
    for rs in resource_spans:
        resource = _jresource(rs)
        scope_spans = _jlist(rs, "scopeSpans", "scope_spans", "resourceSpans[]")
        if not scope_spans:
            scope_spans = _jlist(rs, "instrumentationLibrarySpans", "instrumentation_library_spans", "resourceSpans[]")
        for ss in scope_spans:
            _jobject(ss, "scopeSpans[]")
            scope_name, scope_version = _jscope(ss)
            items = _jlist(ss, "spans", "spans", "scopeSpans[]")
            total += len(items)
            groups.append((resource, scope_name, scope_version, items))
    if total > MAX_SPANS:
        raise OtlpDecodeError(f"too many spans in one request: {total} > {MAX_SPANS}")
    latest = time.time_ns() + MAX_FUTURE_NS
    spans: list[SpanView] = []
    errors: list[str] = []
    rejected = 0
    for resource, scope_name, scope_version, items in groups:
        for item in items:
            try:
                spans.append(_json_span(item, resource, scope_name, scope_version, latest))
            except _JSON_ROW_ERRORS as exc:
                rejected += 1
                _note(errors, _json_row_error("span", item, exc))
    return DecodedTraces(spans, rejected, errors)


def _json_row_error(what: str, item: Any, exc: Exception) -> str:
    reason = exc.reason if isinstance(exc, _Reject) else f"malformed {what} ({type(exc).__name__})"
    span_id = item.get("spanId") if type(item) is dict else None
    if what == "span" and type(span_id) is str and len(span_id) == 16:
        return f"span {span_id.lower()}: {reason}"
    return f"{what}: {reason}"


def _json_span(s: Any, resource: dict[str, AttrValue], scope_name: str, scope_version: str, latest: int) -> SpanView:
    if type(s) is not dict:
        raise _Reject("span must be an object")
    tid = _jid(_jget(s, "traceId", "trace_id"), 16, "trace id")
    sid = _jid(_jget(s, "spanId", "span_id"), 8, "span id")
    psid = _jid(_jget(s, "parentSpanId", "parent_span_id"), 8, "parent span id")
    start = _jtime(s, "startTimeUnixNano", "start_time_unix_nano")
    end = _jtime(s, "endTimeUnixNano", "end_time_unix_nano")
    problem = _span_problem(tid, sid, psid, start, end, latest)
    if problem is not None:
        raise _Reject(problem)
    attributes = _jattrs(s.get("attributes"))
    raw_events = s.get("events")
    events: list[EventView] = []
    if raw_events:
        if type(raw_events) is not list:
            raise _Reject("events must be an array")
        if len(raw_events) > MAX_EVENTS:
            raise _Reject(f"more than {MAX_EVENTS} events")
        for e in raw_events:
            if type(e) is not dict:
                raise _Reject("each event must be an object")
            events.append(
                EventView(
                    _jstr(e, "name", "event name"),
                    _jtime(e, "timeUnixNano", "time_unix_nano"),
                    _jattrs(e.get("attributes")),
                )
            )
    status = s.get("status")
    if status:
        if type(status) is not dict:
            raise _Reject("status must be an object")
        status_code = _jenum(status.get("code"), _STATUS_CODES, "status code")
        status_message = _jstr(status, "message", "status message")
    else:
        status_code = 0
        status_message = ""
    return SpanView(
        tid.hex(),
        sid.hex(),
        psid.hex() if psid and psid != _ZERO8 else None,
        _jstr(s, "name", "span name"),
        _jenum(s.get("kind"), _SPAN_KINDS, "span kind"),
        start,
        end,
        status_code,
        status_message,
        attributes,
        events,
        resource,
        scope_name,
        scope_version,
    )


def _json_logs(body: bytes) -> DecodedLogs:
    resource_logs = _json_document(body, "resourceLogs", "resource_logs")
    groups: list[tuple[dict[str, AttrValue], str, str, list[Any]]] = []
    total = 0
    for rl in resource_logs:
        resource = _jresource(rl)
        for sl in _jlist(rl, "scopeLogs", "scope_logs", "resourceLogs[]"):
            _jobject(sl, "scopeLogs[]")
            scope_name, scope_version = _jscope(sl)
            items = _jlist(sl, "logRecords", "log_records", "scopeLogs[]")
            total += len(items)
            groups.append((resource, scope_name, scope_version, items))
    if total > MAX_LOG_RECORDS:
        raise OtlpDecodeError(f"too many log records in one request: {total} > {MAX_LOG_RECORDS}")
    records: list[LogRecordView] = []
    errors: list[str] = []
    rejected = 0
    for resource, scope_name, scope_version, items in groups:
        for item in items:
            try:
                records.append(_json_log(item, resource, scope_name, scope_version))
            except _JSON_ROW_ERRORS as exc:
                rejected += 1
                _note(errors, _json_row_error("log record", item, exc))
    return DecodedLogs(records, rejected, errors)


def _json_log(lr: Any, resource: dict[str, AttrValue], scope_name: str, scope_version: str) -> LogRecordView:
    if type(lr) is not dict:
        raise _Reject("log record must be an object")
    trace_id, span_id = _log_ids(
        _jid(_jget(lr, "traceId", "trace_id"), 16, "trace id"),
        _jid(_jget(lr, "spanId", "span_id"), 8, "span id"),
    )
    attributes = _jattrs(lr.get("attributes"))
    raw_body = lr.get("body")
    body_value = None if raw_body is None else _jvalue(raw_body, 1)
    event_name = _jget(lr, "eventName", "event_name")
    if type(event_name) is not str or not event_name:
        event_name = _text(attributes.get("event.name"))
    severity_text = _jget(lr, "severityText", "severity_text")
    return LogRecordView(
        trace_id,
        span_id,
        _jtime(lr, "timeUnixNano", "time_unix_nano") or _jtime(lr, "observedTimeUnixNano", "observed_time_unix_nano"),
        event_name,
        _jenum(_jget(lr, "severityNumber", "severity_number"), {}, "severity number"),
        severity_text if type(severity_text) is str else "",
        body_value,
        attributes,
        resource,
        scope_name,
        scope_version,
    )


_JSON_METRIC_KINDS = (
    ("gauge", "gauge", "gauge"),
    ("sum", "sum", "sum"),
    ("histogram", "histogram", "histogram"),
    ("exponentialHistogram", "exponential_histogram", "histogram"),
)


def _json_metrics(body: bytes) -> DecodedMetrics:
    resource_metrics = _json_document(body, "resourceMetrics", "resource_metrics")
    work: list[tuple[dict[str, AttrValue], str, dict[str, Any], str, dict[str, Any], list[Any]]] = []
    total = 0
    for rm in resource_metrics:
        resource = _jresource(rm)
        for sm in _jlist(rm, "scopeMetrics", "scope_metrics", "resourceMetrics[]"):
            _jobject(sm, "scopeMetrics[]")
            scope_name, _ = _jscope(sm)
            for metric in _jlist(sm, "metrics", "metrics", "scopeMetrics[]"):
                _jobject(metric, "metrics[]")
                for camel, snake, kind in _JSON_METRIC_KINDS:
                    data = _jget(metric, camel, snake)
                    if data is None:
                        continue
                    _jobject(data, f"metric.{camel}")
                    items = _jlist(data, "dataPoints", "data_points", f"metric.{camel}")
                    total += len(items)
                    work.append((resource, scope_name, metric, kind, data, items))
                    break
    if total > MAX_METRIC_POINTS:
        raise OtlpDecodeError(f"too many metric points in one request: {total} > {MAX_METRIC_POINTS}")
    points: list[MetricPointView] = []
    errors: list[str] = []
    rejected = 0
    for resource, scope_name, metric, kind, data, items in work:
        name = metric.get("name")
        unit = metric.get("unit")
        name = name if type(name) is str else ""
        unit = unit if type(unit) is str else ""
        try:
            is_monotonic = kind == "sum" and _jget(data, "isMonotonic", "is_monotonic") is True
            temporality = (
                0
                if kind == "gauge"
                else _jenum(_jget(data, "aggregationTemporality", "aggregation_temporality"), _TEMPORALITIES, "temporality")
            )
        except _JSON_ROW_ERRORS as exc:
            rejected += len(items)
            _note(errors, _json_row_error(f"metric {name}", None, exc))
            continue
        for item in items:
            try:
                points.append(_json_point(item, name, unit, kind, is_monotonic, temporality, resource, scope_name))
            except _JSON_ROW_ERRORS as exc:
                rejected += 1
                _note(errors, _json_row_error(f"metric {name}", None, exc))
    return DecodedMetrics(points, rejected, errors)


def _json_point(
    p: Any,
    name: str,
    unit: str,
    kind: str,
    is_monotonic: bool,
    temporality: int,
    resource: dict[str, AttrValue],
    scope_name: str,
) -> MetricPointView:
    if type(p) is not dict:
        raise _Reject("data point must be an object")
    time_ns = _jtime(p, "timeUnixNano", "time_unix_nano")
    if time_ns == 0:
        raise _Reject("data point without a time")
    attributes = {**resource, **_jattrs(p.get("attributes"))}
    count = None
    if kind == "histogram":
        raw_sum = p.get("sum")
        value = 0.0 if raw_sum is None else _jfloat(raw_sum, "sum")
        raw_count = p.get("count")
        count = 0 if raw_count is None else _jint(raw_count, "count")
    else:
        as_int = _jget(p, "asInt", "as_int")
        if as_int is not None:
            value = float(_jint(as_int, "asInt"))
        else:
            as_double = _jget(p, "asDouble", "as_double")
            value = 0.0 if as_double is None else _jfloat(as_double, "asDouble")
    return MetricPointView(
        name,
        unit,
        kind,
        is_monotonic,
        temporality,
        attributes,
        resource,
        scope_name,
        _jtime(p, "startTimeUnixNano", "start_time_unix_nano"),
        time_ns,
        value,
        count,
    )
