"""The protobuf fast path against protobuf's own decoding: random exports (every AnyValue kind, nested arrays and
kvlists, events, links, status, resource and scope attributes, valid and invalid ids and times) are serialized
by protobuf, then decoded by ingest and by a plain walk over protobuf's generated classes; both must agree.
The same exports in OTLP/JSON must decode to the same spans."""

from __future__ import annotations

import base64
import math
import struct
import time
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.otlp_decode import OtlpDecodeError, decode_logs, decode_metrics, decode_traces

PB = "application/x-protobuf"
JSON = "application/json"
NOW = time.time_ns()
DAY = 86_400 * 10**9
YEAR_2000 = 946_684_800 * 10**9
DEEPEST = 16  # arrays / kvlists nested deeper than this refuse the whole body
REFUSED = "refused"
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- random exports -----------------------------------------------------------------------------------

TEXT = st.one_of(
    st.text(max_size=12), st.text(max_size=12), st.text(min_size=130, max_size=150)
)  # KeyValues under and over 127 bytes
SCALARS = st.one_of(
    TEXT.map(lambda text: AnyValue(string_value=text)),
    st.one_of(st.integers(min_value=0, max_value=300), st.integers(min_value=-(2**63), max_value=2**63 - 1)).map(
        lambda number: AnyValue(int_value=number)
    ),
    st.floats().map(lambda number: AnyValue(double_value=number)),
    st.booleans().map(lambda flag: AnyValue(bool_value=flag)),
    st.binary(max_size=40).map(lambda raw: AnyValue(bytes_value=raw)),
    st.just(AnyValue()),  # no value set
)
KEYS = st.one_of(st.sampled_from(["gen_ai.request.model", "gen_ai.usage.input_tokens", "event.name", "k"]), st.text(max_size=20))
ANY_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda values: AnyValue(array_value=ArrayValue(values=values))),
        st.lists(st.tuples(KEYS, children), max_size=4).map(
            lambda pairs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in pairs]))
        ),
    ),
    max_leaves=6,
)
VALUES = st.one_of(SCALARS, SCALARS, SCALARS, ANY_VALUES)  # mostly scalars: the KeyValues read from their bytes
ATTRIBUTES = st.lists(st.builds(KeyValue, key=KEYS, value=VALUES), max_size=6)  # keys may repeat: the last wins
FEW_ATTRIBUTES = st.lists(st.builds(KeyValue, key=KEYS, value=VALUES), max_size=2)
TRACE_IDS = st.binary(min_size=16, max_size=16).filter(any)
SPAN_IDS = st.binary(min_size=8, max_size=8).filter(any)
FLAWS = st.sampled_from([None, None, None, None, None, "trace id", "span id", "parent id", "start", "end"])
FLAWED = {
    "trace id": st.sampled_from([bytes(16), b"\x01" * 8, b""]),
    "span id": st.sampled_from([bytes(8), b"\x02" * 4, b""]),
    "parent id": st.just(b"\x03" * 3),
    "start": st.one_of(st.sampled_from([0, YEAR_2000 - 10**9]), st.integers(NOW + 2 * DAY, NOW + 30 * DAY)),
}
SCOPES = st.builds(InstrumentationScope, name=TEXT, version=st.text(max_size=8), attributes=FEW_ATTRIBUTES)
RESOURCES = st.builds(Resource, attributes=ATTRIBUTES, dropped_attributes_count=st.integers(0, 3))


@st.composite
def spans(draw: st.DrawFn) -> trace_pb2.Span:
    """Mostly valid spans; one in two has one flaw that rejects it (bad id, time before 2000 or days ahead, end before start)."""
    flaw = draw(FLAWS)
    start = draw(FLAWED["start"] if flaw == "start" else st.integers(NOW - 30 * DAY, NOW))
    end = draw(st.integers(0, start - 1) if flaw == "end" else st.integers(start, start + 10 * 10**9))
    parent = FLAWED["parent id"] if flaw == "parent id" else st.one_of(st.just(b""), SPAN_IDS, st.just(bytes(8)))
    return trace_pb2.Span(
        trace_id=draw(FLAWED["trace id"] if flaw == "trace id" else TRACE_IDS),
        span_id=draw(FLAWED["span id"] if flaw == "span id" else SPAN_IDS),
        parent_span_id=draw(parent),
        trace_state=draw(st.sampled_from(["", "vendor=1"])),
        flags=draw(st.integers(0, 2**32 - 1)),
        name=draw(TEXT),
        kind=draw(st.integers(0, 7)),
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=draw(ATTRIBUTES),
        dropped_attributes_count=draw(st.integers(0, 3)),
        events=draw(
            st.lists(
                st.builds(trace_pb2.Span.Event, time_unix_nano=st.integers(0, 2**64 - 1), name=TEXT, attributes=FEW_ATTRIBUTES),
                max_size=3,
            )
        ),
        links=draw(
            st.lists(
                st.builds(
                    trace_pb2.Span.Link,
                    trace_id=TRACE_IDS,
                    span_id=SPAN_IDS,
                    trace_state=st.just("a=b"),
                    attributes=FEW_ATTRIBUTES,
                ),
                max_size=2,
            )
        ),
        status=draw(st.builds(trace_pb2.Status, code=st.integers(0, 3), message=TEXT)),
    )


TRACE_EXPORTS = st.builds(
    ExportTraceServiceRequest,
    resource_spans=st.lists(
        st.builds(
            trace_pb2.ResourceSpans,
            resource=RESOURCES,
            scope_spans=st.lists(
                st.builds(trace_pb2.ScopeSpans, scope=SCOPES, spans=st.lists(spans(), min_size=1, max_size=4), schema_url=TEXT),
                min_size=1,
                max_size=2,
            ),
        ),
        min_size=1,
        max_size=2,
    ),
)

LOG_RECORDS = st.builds(
    logs_pb2.LogRecord,
    time_unix_nano=st.one_of(st.just(0), st.integers(NOW - DAY, NOW)),
    observed_time_unix_nano=st.integers(NOW - DAY, NOW),
    severity_number=st.integers(0, 30),
    severity_text=st.text(max_size=8),
    body=st.one_of(st.none(), ANY_VALUES),
    attributes=ATTRIBUTES,
    trace_id=st.one_of(TRACE_IDS, st.sampled_from([b"", bytes(16), b"\x01\x02"])),
    span_id=st.one_of(SPAN_IDS, st.sampled_from([b"", bytes(8), b"\x01" * 9])),
    event_name=st.sampled_from(["", "gen_ai.client.inference.operation.details"]),
)
LOG_EXPORTS = st.builds(
    ExportLogsServiceRequest,
    resource_logs=st.lists(
        st.builds(
            logs_pb2.ResourceLogs,
            resource=RESOURCES,
            scope_logs=st.lists(
                st.builds(logs_pb2.ScopeLogs, scope=SCOPES, log_records=st.lists(LOG_RECORDS, min_size=1, max_size=5)),
                min_size=1,
                max_size=2,
            ),
        ),
        min_size=1,
        max_size=2,
    ),
)

POINT_TIMES = st.one_of(st.just(0), st.integers(NOW - DAY, NOW))
NUMBER_POINTS = st.lists(
    st.builds(
        metrics_pb2.NumberDataPoint,
        attributes=ATTRIBUTES,
        start_time_unix_nano=POINT_TIMES,
        time_unix_nano=POINT_TIMES,
        as_int=st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    ).flatmap(lambda point: st.one_of(st.just(point), st.floats().map(lambda x: _with_double(point, x)))),
    max_size=3,
)
TEMPORALITY = st.integers(0, 3)
METRICS = st.one_of(
    st.builds(
        metrics_pb2.Metric, name=TEXT, unit=st.text(max_size=6), gauge=st.builds(metrics_pb2.Gauge, data_points=NUMBER_POINTS)
    ),
    st.builds(
        metrics_pb2.Metric,
        name=TEXT,
        sum=st.builds(
            metrics_pb2.Sum, data_points=NUMBER_POINTS, aggregation_temporality=TEMPORALITY, is_monotonic=st.booleans()
        ),
    ),
    st.builds(
        metrics_pb2.Metric,
        name=TEXT,
        histogram=st.builds(
            metrics_pb2.Histogram,
            aggregation_temporality=TEMPORALITY,
            data_points=st.lists(
                st.builds(
                    metrics_pb2.HistogramDataPoint,
                    attributes=ATTRIBUTES,
                    time_unix_nano=POINT_TIMES,
                    count=st.integers(0, 2**64 - 1),
                    sum=st.one_of(st.none(), st.floats()),
                    bucket_counts=st.lists(st.integers(0, 100), max_size=3),
                ),
                max_size=3,
            ),
        ),
    ),
    st.builds(
        metrics_pb2.Metric,
        name=TEXT,
        exponential_histogram=st.builds(
            metrics_pb2.ExponentialHistogram,
            aggregation_temporality=TEMPORALITY,
            data_points=st.lists(
                st.builds(
                    metrics_pb2.ExponentialHistogramDataPoint,
                    attributes=ATTRIBUTES,
                    time_unix_nano=POINT_TIMES,
                    count=st.integers(0, 2**64 - 1),
                    sum=st.one_of(st.none(), st.floats()),
                    scale=st.integers(-10, 20),
                ),
                max_size=3,
            ),
        ),
    ),
    st.builds(
        metrics_pb2.Metric,
        name=TEXT,
        summary=st.builds(
            metrics_pb2.Summary,
            data_points=st.lists(
                st.builds(metrics_pb2.SummaryDataPoint, time_unix_nano=POINT_TIMES, count=st.integers(0, 9)), max_size=2
            ),
        ),
    ),
    st.builds(metrics_pb2.Metric, name=TEXT),  # no data at all
)
METRIC_EXPORTS = st.builds(
    ExportMetricsServiceRequest,
    resource_metrics=st.lists(
        st.builds(
            metrics_pb2.ResourceMetrics,
            resource=RESOURCES,
            scope_metrics=st.lists(
                st.builds(metrics_pb2.ScopeMetrics, scope=SCOPES, metrics=st.lists(METRICS, min_size=1, max_size=4)),
                min_size=1,
                max_size=2,
            ),
        ),
        min_size=1,
        max_size=2,
    ),
)


def _with_double(point: metrics_pb2.NumberDataPoint, number: float) -> metrics_pb2.NumberDataPoint:
    point = metrics_pb2.NumberDataPoint.FromString(point.SerializeToString())
    point.as_double = number
    return point


# --- decoding with protobuf's generated classes ---------------------------------------------------------------


class TooDeep(Exception):
    pass


def plain(value: AnyValue, depth: int = 1) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("array_value", "kvlist_value"):
        if depth > DEEPEST:
            raise TooDeep
        if kind == "array_value":
            return [plain(item, depth + 1) for item in value.array_value.values]
        return {kv.key: plain(kv.value, depth + 1) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def plain_attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: plain(kv.value) for kv in pairs}


def comparable(value: Any) -> Any:
    """Values with their type, floats by their bits: True is not 1, -0.0 is not 0.0, and NaN (whatever its sign and
    payload, which OTLP/JSON cannot carry) equals NaN."""
    if isinstance(value, float):
        return ("float", "NaN" if math.isnan(value) else struct.pack("<d", value))
    if isinstance(value, list):
        return ("list", [comparable(item) for item in value])
    if isinstance(value, dict):
        return ("dict", {key: comparable(item) for key, item in value.items()})
    return (type(value).__name__, value)


def comparable_view(view: Any) -> tuple:
    return tuple(
        [comparable_view(event) for event in value] if name == "events" else comparable(value)
        for name, value in ((name, getattr(view, name)) for name in view.__slots__)
    )


def span_is_valid(span: trace_pb2.Span, latest: int) -> bool:
    return (
        len(span.trace_id) == 16
        and span.trace_id != bytes(16)
        and len(span.span_id) == 8
        and span.span_id != bytes(8)
        and len(span.parent_span_id) in (0, 8)
        and YEAR_2000 <= span.start_time_unix_nano <= latest
        and span.end_time_unix_nano >= span.start_time_unix_nano
    )


def expected_traces(body: bytes) -> tuple[list[tuple], int] | str:
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError:
        return REFUSED
    latest = time.time_ns() + DAY
    kept: list[tuple] = []
    rejected = 0
    try:
        for rs in request.resource_spans:
            resource = comparable(plain_attributes(rs.resource.attributes))
            for ss in rs.scope_spans:
                for span in ss.spans:
                    if not span_is_valid(span, latest):
                        rejected += 1
                        continue
                    parent = span.parent_span_id
                    kept.append(
                        (
                            comparable(span.trace_id.hex()),
                            comparable(span.span_id.hex()),
                            comparable(parent.hex() if parent and parent != bytes(8) else None),
                            comparable(span.name),
                            comparable(span.kind),
                            comparable(span.start_time_unix_nano),
                            comparable(span.end_time_unix_nano),
                            comparable(span.status.code),
                            comparable(span.status.message),
                            comparable(plain_attributes(span.attributes)),
                            [
                                (comparable(e.name), comparable(e.time_unix_nano), comparable(plain_attributes(e.attributes)))
                                for e in span.events
                            ],
                            resource,
                            comparable(ss.scope.name),
                            comparable(ss.scope.version),
                        )
                    )
    except TooDeep:
        return REFUSED
    return kept, rejected


def expected_logs(body: bytes) -> tuple[list[tuple], int] | str:
    try:
        request = ExportLogsServiceRequest.FromString(body)
    except DecodeError:
        return REFUSED
    kept: list[tuple] = []
    rejected = 0
    try:
        for rl in request.resource_logs:
            resource = plain_attributes(rl.resource.attributes)
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    tid, sid = record.trace_id, record.span_id
                    if (tid and len(tid) != 16) or (sid and len(sid) != 8):
                        rejected += 1
                        continue
                    attributes = plain_attributes(record.attributes)
                    body_value = plain(record.body) if record.HasField("body") else None
                    event_name = attributes.get("event.name")
                    values = (
                        tid.hex() if tid and tid != bytes(16) else None,
                        sid.hex() if sid and sid != bytes(8) else None,
                        record.time_unix_nano or record.observed_time_unix_nano,
                        record.event_name or (event_name if isinstance(event_name, str) else ""),
                        record.severity_number,
                        record.severity_text,
                        body_value,
                        attributes,
                        resource,
                        sl.scope.name,
                        sl.scope.version,
                    )
                    kept.append(tuple(comparable(value) for value in values))
    except TooDeep:
        return REFUSED
    return kept, rejected


def expected_metrics(body: bytes) -> tuple[list[tuple], int] | str:
    try:
        request = ExportMetricsServiceRequest.FromString(body)
    except DecodeError:
        return REFUSED
    kept: list[tuple] = []
    rejected = 0
    try:
        for rm in request.resource_metrics:
            resource = plain_attributes(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    if kind not in ("gauge", "sum", "histogram", "exponential_histogram"):
                        continue
                    data = getattr(metric, kind)
                    for point in data.data_points:
                        if point.time_unix_nano == 0:
                            rejected += 1
                            continue
                        if kind in ("gauge", "sum"):
                            number = float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double
                            count = None
                        else:
                            number, count = point.sum, point.count
                        values = (
                            metric.name,
                            metric.unit,
                            kind if kind in ("gauge", "sum") else "histogram",
                            kind == "sum" and data.is_monotonic,
                            0 if kind == "gauge" else data.aggregation_temporality,
                            {**resource, **plain_attributes(point.attributes)},
                            resource,
                            sm.scope.name,
                            point.start_time_unix_nano,
                            point.time_unix_nano,
                            number,
                            count,
                        )
                        kept.append(tuple(comparable(value) for value in values))
    except TooDeep:
        return REFUSED
    return kept, rejected


def decoded(decoder: Any, body: bytes, content_type: str = PB) -> tuple[list[tuple], int] | str:
    try:
        result = decoder(body, content_type)
    except OtlpDecodeError:
        return REFUSED
    items = result.spans if decoder is decode_traces else result.records if decoder is decode_logs else result.points
    return [comparable_view(item) for item in items], result.rejected


def damaged(body: bytes, data: st.DataObject) -> bytes:
    """`body` with one to four of its bytes overwritten at random."""
    changed = bytearray(body)
    if changed:
        for _ in range(data.draw(st.integers(1, 4))):
            changed[data.draw(st.integers(0, len(changed) - 1))] = data.draw(st.integers(0, 255))
    return bytes(changed)


# --- the properties ---------------------------------------------------------------------------------------------


@EXAMPLES
@given(request=TRACE_EXPORTS)
def test_fast_path_decodes_random_trace_exports_as_protobuf_does(request):
    body = request.SerializeToString()

    assert decoded(decode_traces, body) == expected_traces(body)


@EXAMPLES
@given(request=TRACE_EXPORTS, data=st.data())
def test_fast_path_refuses_exactly_the_damaged_trace_bodies_protobuf_refuses(request, data):
    body = damaged(request.SerializeToString(), data)

    assert decoded(decode_traces, body) == expected_traces(body)


@EXAMPLES
@given(request=LOG_EXPORTS)
def test_log_exports_decode_as_protobuf_does(request):
    body = request.SerializeToString()

    assert decoded(decode_logs, body) == expected_logs(body)


@EXAMPLES
@given(request=METRIC_EXPORTS)
def test_metric_exports_decode_as_protobuf_does(request):
    body = request.SerializeToString()

    assert decoded(decode_metrics, body) == expected_metrics(body)


def otlp_json(request: ExportTraceServiceRequest, data: st.DataObject) -> bytes:
    """The export in OTLP/JSON as protobuf's JSON mapping writes it, ids in hex (the spec) or base64 (the mapping),
    keys in lowerCamelCase or snake_case, enums as integers or names, int64 as strings or numbers."""
    snake = data.draw(st.booleans(), label="snake_case keys")
    has_empty_key = any(kv.key == "" for kv in _all_key_values(request))
    document = json_format.MessageToDict(
        request,
        # the decoder wants every attribute's `key` member, which the mapping leaves out when it is empty
        always_print_fields_with_no_presence=has_empty_key or data.draw(st.booleans(), label="print defaults"),
        preserving_proto_field_name=snake,
        use_integers_for_enums=data.draw(st.booleans(), label="integer enums"),
        unquote_int64_if_possible=data.draw(st.booleans(), label="int64 as numbers"),
    )
    if data.draw(st.booleans(), label="hex ids"):
        names = ("trace_id", "span_id", "parent_span_id") if snake else ("traceId", "spanId", "parentSpanId")
        for rs in document.get("resource_spans" if snake else "resourceSpans", ()):
            for ss in rs.get("scope_spans" if snake else "scopeSpans", ()):
                for span in ss.get("spans", ()):
                    for name in names:
                        if name in span:
                            span[name] = base64.b64decode(span[name]).hex()
    return orjson.dumps(document)


def _all_key_values(request: ExportTraceServiceRequest) -> list[KeyValue]:
    found: list[KeyValue] = []

    def walk(pairs: Any) -> None:
        for kv in pairs:
            found.append(kv)
            stack = [kv.value]
            while stack:
                value = stack.pop()
                if value.HasField("array_value"):
                    stack.extend(value.array_value.values)
                elif value.HasField("kvlist_value"):
                    walk(value.kvlist_value.values)

    for rs in request.resource_spans:
        walk(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                walk(span.attributes)
                for event in span.events:
                    walk(event.attributes)
    return found


@EXAMPLES
@given(request=TRACE_EXPORTS, data=st.data())
def test_json_trace_exports_decode_as_their_protobuf_twins(request, data):
    from_protobuf = decoded(decode_traces, request.SerializeToString())

    assert decoded(decode_traces, otlp_json(request, data), JSON) == from_protobuf
