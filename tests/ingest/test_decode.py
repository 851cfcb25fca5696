"""OTLP/HTTP body decoding: protobuf and OTLP/JSON traces, logs and metrics, validation and hostile input."""

from __future__ import annotations

import base64
import gzip
import json
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.mappers import InvalidSpan, map_log_record, select_calls
from ingest.otlp_decode import OtlpDecodeError, decode_logs, decode_metrics, decode_traces, limits

CORPUS = Path(__file__).resolve().parents[1] / "data" / "otlp"
PB = "application/x-protobuf"
JSON = "application/json"
NOW = time.time_ns()
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")


def any_value(value: object) -> common_pb2.AnyValue:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    if isinstance(value, bytes):
        return common_pb2.AnyValue(bytes_value=value)
    if isinstance(value, list):
        return common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=key_values(value)))
    return common_pb2.AnyValue(string_value=value)


def key_values(attrs: dict) -> list[common_pb2.KeyValue]:
    return [common_pb2.KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def pb_span(**overrides: object) -> trace_pb2.Span:
    fields = {
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "parent_span_id": PARENT_ID,
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "start_time_unix_nano": NOW - 2_000_000_000,
        "end_time_unix_nano": NOW - 1_000_000_000,
        "attributes": key_values({"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1200}),
        "status": trace_pb2.Status(code=2, message="Error code: 429"),
    }
    fields.update(overrides)
    return trace_pb2.Span(**fields)


def pb_body(*spans: trace_pb2.Span, resource: dict | None = None) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(attributes=key_values(resource or {"service.name": "checkout"})),
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        scope=common_pb2.InstrumentationScope(name="observatory_sdk", version="0.1.0"),
                        spans=list(spans),
                    )
                ],
            )
        ]
    )
    return request.SerializeToString()


def json_span(**overrides: object) -> dict:
    span = {
        "traceId": TRACE_ID.hex(),
        "spanId": SPAN_ID.hex(),
        "parentSpanId": PARENT_ID.hex(),
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "startTimeUnixNano": str(NOW - 2_000_000_000),
        "endTimeUnixNano": str(NOW - 1_000_000_000),
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
        ],
        "status": {"code": 2, "message": "Error code: 429"},
    }
    span.update(overrides)
    return span


def json_body(*spans: dict, resource: list | None = None) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": resource or [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
                    "scopeSpans": [{"scope": {"name": "observatory_sdk", "version": "0.1.0"}, "spans": list(spans)}],
                }
            ]
        }
    )


def nested_array(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def nested_json_array(depth: int) -> dict:
    value: dict = {"stringValue": "leaf"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


# --- traces: the happy paths ------------------------------------------------------------------------


def test_it_decodes_a_protobuf_span_into_a_flat_view():
    result = decode_traces(pb_body(pb_span()), PB)

    assert result.rejected == 0
    (span,) = result.spans
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.span_id == "eee19b7ec3c1b174"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert span.kind == 3
    assert span.start_ns == NOW - 2_000_000_000
    assert span.status_code == 2
    assert span.status_message == "Error code: 429"
    assert span.attributes == {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1200}
    assert span.resource == {"service.name": "checkout"}
    assert (span.scope_name, span.scope_version) == ("observatory_sdk", "0.1.0")


def test_it_decodes_the_same_span_from_protobuf_and_json_identically():
    attrs = {
        "s": "text",
        "i": -42,
        "d": 0.25,
        "b": True,
        "raw": b"\x00\xff",
        "list": ["stop", 3, [1.5]],
        "map": {"k": {"inner": False}},
    }
    event = trace_pb2.Span.Event(time_unix_nano=NOW - 1_500_000_000, name="First Token Stream Event")
    pb = decode_traces(pb_body(pb_span(attributes=key_values(attrs), events=[event])), PB).spans[0]
    json_attrs = [
        {"key": "s", "value": {"stringValue": "text"}},
        {"key": "i", "value": {"intValue": "-42"}},
        {"key": "d", "value": {"doubleValue": 0.25}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "raw", "value": {"bytesValue": base64.b64encode(b"\x00\xff").decode()}},
        {
            "key": "list",
            "value": {
                "arrayValue": {
                    "values": [
                        {"stringValue": "stop"},
                        {"intValue": 3},
                        {"arrayValue": {"values": [{"doubleValue": 1.5}]}},
                    ]
                }
            },
        },
        {
            "key": "map",
            "value": {
                "kvlistValue": {
                    "values": [
                        {
                            "key": "k",
                            "value": {"kvlistValue": {"values": [{"key": "inner", "value": {"boolValue": False}}]}},
                        }
                    ]
                }
            },
        },
    ]
    events = [{"timeUnixNano": str(NOW - 1_500_000_000), "name": "First Token Stream Event"}]
    from_json = decode_traces(json_body(json_span(attributes=json_attrs, events=events)), JSON).spans[0]

    assert from_json == pb
    assert pb.attributes["raw"] == b"\x00\xff"
    assert pb.attributes["map"] == {"k": {"inner": False}}
    assert pb.events[0].name == "First Token Stream Event"


def test_it_accepts_snake_case_keys_numbers_for_int64_and_enum_names():
    span = {
        "trace_id": TRACE_ID.hex().upper(),
        "span_id": SPAN_ID.hex(),
        "name": "x",
        "kind": "SPAN_KIND_CLIENT",
        "start_time_unix_nano": NOW - 2_000_000_000,
        "end_time_unix_nano": NOW - 1_000_000_000,
        "attributes": [{"key": "n", "value": {"int_value": 7}}, {"key": "s", "value": {"string_value": "v"}}],
        "status": {"code": "STATUS_CODE_OK"},
    }
    body = orjson.dumps({"resource_spans": [{"scope_spans": [{"scope": {"name": "lib"}, "spans": [span]}]}]})

    (decoded,) = decode_traces(body, "application/json; charset=utf-8").spans

    assert decoded.trace_id == TRACE_ID.hex()
    assert decoded.parent_span_id is None
    assert decoded.kind == 3
    assert decoded.status_code == 1
    assert decoded.attributes == {"n": 7, "s": "v"}
    assert decoded.scope_name == "lib"


def test_it_accepts_base64_ids_from_protobuf_json_mapping():
    span = json_span(traceId=base64.b64encode(TRACE_ID).decode(), spanId=base64.b64encode(SPAN_ID).decode())

    (decoded,) = decode_traces(json_body(span), JSON).spans

    assert decoded.trace_id == TRACE_ID.hex()
    assert decoded.span_id == SPAN_ID.hex()


def test_spans_of_one_resource_share_its_attribute_dict():
    second = pb_span(span_id=bytes.fromhex("00000000000000aa"))

    first, other = decode_traces(pb_body(pb_span(), second), PB).spans

    assert first.resource is other.resource


def test_an_empty_export_is_valid():
    assert decode_traces(b"", PB).spans == []
    assert decode_traces(b"{}", JSON).spans == []


# --- traces: per-span validation with partial success -------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"trace_id": b"\x01" * 8}, "trace id must be 16 bytes, got 8"),
        ({"trace_id": bytes(16)}, "trace id is all zeros"),
        ({"span_id": bytes(8)}, "span id is all zeros"),
        ({"span_id": b"\x01" * 4}, "span id must be 8 bytes, got 4"),
        ({"parent_span_id": b"\x01" * 3}, "parent span id must be 8 bytes, got 3"),
        ({"start_time_unix_nano": 0}, "start time is missing or before 2000-01-01"),
        ({"start_time_unix_nano": 946_684_799 * 10**9}, "start time is missing or before 2000-01-01"),
        (
            {"start_time_unix_nano": NOW + 2 * 86_400 * 10**9, "end_time_unix_nano": NOW + 3 * 86_400 * 10**9},
            "start time is more than a day in the future",
        ),
        ({"end_time_unix_nano": NOW - 3_000_000_000}, "end time is before start time"),
    ],
)
def test_it_rejects_an_invalid_span_and_keeps_the_rest(overrides, reason):
    good = pb_span(span_id=bytes.fromhex("00000000000000aa"))

    result = decode_traces(pb_body(pb_span(**overrides), good), PB)

    assert [span.span_id for span in result.spans] == ["00000000000000aa"]
    assert result.rejected == 1
    assert len(result.errors) == 1
    assert result.errors[0].endswith(reason)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"traceId": "zz" * 16}, "trace id is not hexadecimal"),
        ({"traceId": "abc"}, "trace id must be 16 bytes (32 hex characters), got 3 characters"),
        ({"traceId": 5}, "trace id must be a hex string"),
        ({"spanId": "0" * 16}, "span id is all zeros"),
        ({"startTimeUnixNano": "soon"}, "startTimeUnixNano must be an integer, got 'soon'"),
        ({"attributes": "gen_ai.request.model=gpt-4o"}, "attributes must be an array"),
        ({"attributes": [{"key": 1, "value": {"stringValue": "x"}}]}, "attribute key must be a string"),
        ({"attributes": [{"key": "n", "value": {"intValue": "12abc"}}]}, "intValue must be an integer"),
        ({"attributes": [{"key": "n", "value": {"boolValue": "yes"}}]}, "boolValue must be true or false"),
        ({"attributes": [{"key": "n", "value": "plain"}]}, "attribute value must be an AnyValue object"),
        ({"events": {"name": "x"}}, "events must be an array"),
        ({"status": "ERROR"}, "status must be an object"),
        ({"name": ["chat"]}, "span name must be a string"),
    ],
)
def test_it_rejects_malformed_json_spans_one_by_one(overrides, reason):
    good = json_span(spanId="00000000000000aa")

    result = decode_traces(json_body(json_span(**overrides), good), JSON)

    assert [span.span_id for span in result.spans] == ["00000000000000aa"]
    assert result.rejected == 1
    assert result.errors[0].endswith(reason)


def test_it_reports_at_most_a_hundred_reasons_but_counts_every_rejection():
    spans = [pb_span(trace_id=bytes(16), span_id=(i + 1).to_bytes(8, "big")) for i in range(150)]

    result = decode_traces(pb_body(*spans), PB)

    assert result.rejected == 150
    assert len(result.errors) == 100
    assert result.errors[0] == "span 0000000000000001: trace id is all zeros"


# --- traces: hostile input limits -----------------------------------------------------------------


def test_it_rejects_a_span_with_too_many_attributes():
    crowded = pb_span(attributes=key_values({f"k{i}": i for i in range(513)}))
    fine = pb_span(span_id=bytes.fromhex("00000000000000aa"), attributes=key_values({f"k{i}": i for i in range(512)}))

    result = decode_traces(pb_body(crowded, fine), PB)

    assert [len(span.attributes) for span in result.spans] == [512]
    assert result.errors == ["span eee19b7ec3c1b174: more than 512 attributes"]


def test_it_rejects_a_span_with_too_many_events():
    events = [trace_pb2.Span.Event(time_unix_nano=NOW - 1_500_000_000, name="chunk")] * 1001

    result = decode_traces(pb_body(pb_span(events=events)), PB)

    assert result.spans == []
    assert result.errors == ["span eee19b7ec3c1b174: more than 1000 events"]


def test_it_rejects_a_json_span_with_too_many_attributes():
    attributes = [{"key": f"k{i}", "value": {"intValue": i}} for i in range(513)]

    result = decode_traces(json_body(json_span(attributes=attributes)), JSON)

    assert result.errors == ["span eee19b7ec3c1b174: more than 512 attributes"]


def test_values_nested_sixteen_deep_are_accepted_and_seventeen_refused():
    ok = decode_traces(pb_body(pb_span(attributes=key_values({"deep": nested_array(16)}))), PB)
    assert ok.spans[0].attributes["deep"] == nested_array(16)

    with pytest.raises(OtlpDecodeError, match="nested deeper than 16 levels"):
        decode_traces(pb_body(pb_span(attributes=key_values({"deep": nested_array(17)}))), PB)
    with pytest.raises(OtlpDecodeError, match="nested deeper than 16 levels"):
        decode_traces(json_body(json_span(attributes=[{"key": "deep", "value": nested_json_array(17)}])), JSON)
    json_ok = decode_traces(json_body(json_span(attributes=[{"key": "deep", "value": nested_json_array(16)}])), JSON)
    assert json_ok.spans[0].attributes["deep"] == nested_array(16)


def test_it_refuses_more_spans_than_the_request_limit(monkeypatch):
    monkeypatch.setattr(limits, "MAX_SPANS", 3)
    spans = [pb_span(span_id=(i + 1).to_bytes(8, "big")) for i in range(4)]

    with pytest.raises(OtlpDecodeError, match="too many spans in one request: 4 > 3"):
        decode_traces(pb_body(*spans), PB)
    with pytest.raises(OtlpDecodeError, match="too many spans in one request: 4 > 3"):
        decode_traces(json_body(*[json_span(spanId=f"{i + 1:016x}") for i in range(4)]), JSON)


def test_the_default_limits_are_the_documented_ones():
    assert (limits.MAX_ATTRIBUTES, limits.MAX_DEPTH) == (512, 16)
    assert (limits.MAX_EVENTS, limits.MAX_SPANS) == (1000, 50_000)


def test_a_resource_with_too_many_attributes_fails_the_request():
    with pytest.raises(OtlpDecodeError, match="resource: more than 512 attributes"):
        decode_traces(pb_body(pb_span(), resource={f"r{i}": i for i in range(513)}), PB)


# --- traces: whole-body errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\xff\xff\xff\xff", PB, "body is not a valid OTLP protobuf trace export"),
        (b"{not json", JSON, "body is not valid JSON"),
        (b"[1, 2]", JSON, "an OTLP/JSON body must be a JSON object"),
        (b'{"resourceSpans": 5}', JSON, "resourceSpans must be an array"),
        (b'{"resourceSpans": [5]}', JSON, "each element of resourceSpans must be an object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": 5}]}]}', JSON, r"scopeSpans\[\].spans must be an array"),
        (b'{"resourceSpans": [{"resource": []}]}', JSON, "resource must be an object"),
        (b"{}", "text/plain", "unsupported content type 'text/plain'"),
    ],
)
def test_it_refuses_a_body_that_is_not_an_otlp_export(body, content_type, message):
    with pytest.raises(OtlpDecodeError, match=message) as info:
        decode_traces(body, content_type)
    assert info.value.message


# --- logs -------------------------------------------------------------------------------------------


def corpus_body(relative: str) -> tuple[bytes, str]:
    raw = (CORPUS / relative).read_bytes()
    body = gzip.decompress(raw) if relative.endswith(".gz") else raw
    return body, JSON if ".json" in relative else PB


def test_it_decodes_otel_v2_log_events_with_structured_content():
    body, content_type = corpus_body("otel-openai-v2/openai_chat.logs.json")

    (record,) = decode_logs(body, content_type).records

    assert record.event_name == "gen_ai.client.inference.operation.details"
    assert record.trace_id == "84f744e5b0aa36544a576202989d7555"
    assert record.span_id == "5e47d086ed2664cc"
    assert record.time_ns == 1795357852715846692  # observedTimeUnixNano: the record has no timeUnixNano
    assert record.body is None
    assert record.attributes["gen_ai.usage.input_tokens"] == 1200
    assert record.attributes["gen_ai.input.messages"][1] == {
        "role": "user",
        "parts": [{"content": "What is the capital of France?", "type": "text"}],
    }
    assert record.resource["service.name"] == "corpus-otel-openai-v2"
    assert record.scope_name == "opentelemetry.util.genai.handler"


@pytest.mark.parametrize(
    "relative",
    sorted(str(path.relative_to(CORPUS)) for path in CORPUS.glob("*/*.logs.*") if path.suffix in (".json", ".pb", ".gz")),
)
def test_every_corpus_log_body_decodes_to_content_for_its_span(relative):
    body, content_type = corpus_body(relative)

    records = decode_logs(body, content_type).records

    assert records
    for record in records:
        fragment = map_log_record(record)
        assert fragment is not None and fragment.input_content
        if record.trace_id is None:  # openlit exports stream events outside the span's context
            assert "_stream" in relative
            assert fragment.response_id.startswith(("chatcmpl-", "msg_", "resp_"))
        else:
            assert len(record.trace_id) == 32 and len(record.span_id) == 16


def test_it_decodes_a_protobuf_log_body_and_the_event_name_attribute():
    record = logs_pb2.LogRecord(
        time_unix_nano=NOW,
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        severity_number=9,
        body=any_value({"content": "What is the capital of France?"}),
        attributes=key_values({"event.name": "gen_ai.user.message", "gen_ai.system": "openai"}),
    )
    request = ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=resource_pb2.Resource(attributes=key_values({"service.name": "legacy"})),
                scope_logs=[
                    logs_pb2.ScopeLogs(
                        scope=common_pb2.InstrumentationScope(name="opentelemetry.instrumentation.openai_v2"),
                        log_records=[record, logs_pb2.LogRecord(trace_id=b"\x01\x02")],
                    )
                ],
            )
        ]
    )

    result = decode_logs(request.SerializeToString(), PB)

    (decoded,) = result.records
    assert decoded.event_name == "gen_ai.user.message"
    assert decoded.body == {"content": "What is the capital of France?"}
    assert decoded.severity_number == 9
    assert (decoded.trace_id, decoded.span_id) == (TRACE_ID.hex(), SPAN_ID.hex())
    assert result.rejected == 1
    assert result.errors == ["log record: trace id must be 16 bytes, got 2"]


# --- metrics ----------------------------------------------------------------------------------------


def test_it_flattens_histogram_points_with_resource_attributes_underneath():
    body, content_type = corpus_body("otel-openai-v2/openai_chat.metrics.part1.json.gz")

    points = decode_metrics(body, content_type).points

    usage = [p for p in points if p.name == "gen_ai.client.token.usage"]
    assert [(p.attributes["gen_ai.token.type"], p.value, p.count) for p in usage] == [
        ("input", 1200.0, 1),
        ("output", 85.0, 1),
    ]
    assert all(p.kind == "histogram" and p.temporality == 2 and not p.is_monotonic for p in usage)
    assert usage[0].attributes["service.name"] == "corpus-otel-openai-v2"
    assert usage[0].unit == "{token}"
    assert usage[0].start_ns < usage[0].time_ns


def test_it_decodes_protobuf_sums_as_monotonic_cumulative_points():
    body, content_type = corpus_body("traceloop/openai_chat.metrics.part1.pb.gz")

    points = decode_metrics(body, content_type).points

    choices = [p for p in points if p.name == "gen_ai.client.generation.choices"]
    assert [(p.kind, p.is_monotonic, p.temporality, p.value, p.count) for p in choices] == [
        ("sum", True, 2, 1.0, None),
        ("sum", True, 2, 1.0, None),
    ]
    assert sorted(p.value for p in points if p.name == "gen_ai.client.token.usage") == [85.0, 1200.0]


def test_openlit_metrics_carry_the_cost_histogram():
    body, content_type = corpus_body("openlit/openai_chat.metrics.part1.json.gz")

    points = decode_metrics(body, content_type).points

    (cost,) = [p for p in points if p.name == "gen_ai.usage.cost"]
    assert cost.value == pytest.approx(0.0001542)
    assert cost.scope_name == "openlit.otel.metrics"


def test_json_gauge_points_take_as_int_or_as_double_and_point_attributes_win():
    body = orjson.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {"attributes": [{"key": "gpu", "value": {"stringValue": "resource"}}]},
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": "DCGM_FI_DEV_GPU_UTIL",
                                    "gauge": {
                                        "dataPoints": [
                                            {
                                                "timeUnixNano": str(NOW),
                                                "asInt": "87",
                                                "attributes": [{"key": "gpu", "value": {"stringValue": "0"}}],
                                            },
                                            {"timeUnixNano": str(NOW), "asDouble": 0.5},
                                            {"asDouble": 1.0},
                                        ]
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )

    result = decode_metrics(body, JSON)

    assert [(p.kind, p.value, p.attributes["gpu"]) for p in result.points] == [
        ("gauge", 87.0, "0"),
        ("gauge", 0.5, "resource"),
    ]
    assert result.rejected == 1
    assert result.errors == ["metric DCGM_FI_DEV_GPU_UTIL: data point without a time"]


# --- fuzzing: only OtlpDecodeError may escape --------------------------------------------------------

DECODERS = (decode_traces, decode_logs, decode_metrics)
CONTENT_TYPES = (PB, JSON)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", str(NOW), "1200", "0" * 32]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.sampled_from(
                [
                    "resourceSpans",
                    "resourceLogs",
                    "resourceMetrics",
                    "scopeSpans",
                    "scopeLogs",
                    "scopeMetrics",
                    "spans",
                    "logRecords",
                    "metrics",
                    "resource",
                    "scope",
                    "attributes",
                    "key",
                    "value",
                    "stringValue",
                    "intValue",
                    "arrayValue",
                    "kvlistValue",
                    "values",
                    "traceId",
                    "spanId",
                    "parentSpanId",
                    "startTimeUnixNano",
                    "endTimeUnixNano",
                    "events",
                    "status",
                    "code",
                    "gauge",
                    "sum",
                    "histogram",
                    "dataPoints",
                    "timeUnixNano",
                    "asInt",
                    "body",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        ),
    ),
    max_leaves=40,
)


def _decode_and_map(decoder, body: bytes, content_type: str) -> None:
    try:
        result = decoder(body, content_type)
    except OtlpDecodeError:
        return
    if decoder is decode_traces:
        invalid: list[InvalidSpan] = []
        calls, rest = select_calls(result.spans, invalid)
        assert len(calls) + len(rest) + len(invalid) == len(result.spans)
        for call in calls:
            orjson.dumps(call.attributes)  # storable as JSONB
    elif decoder is decode_logs:
        for record in result.records:
            map_log_record(record)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=400), decoder=st.sampled_from(DECODERS), content_type=st.sampled_from(CONTENT_TYPES))
def test_random_bytes_raise_only_otlp_decode_error(body, decoder, content_type):
    _decode_and_map(decoder, body, content_type)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=JSON_VALUES, decoder=st.sampled_from(DECODERS))
def test_random_json_structures_raise_only_otlp_decode_error(document, decoder):
    _decode_and_map(decoder, json.dumps(document).encode(), JSON)


def _corpus_bodies() -> list[tuple[bytes, str, object]]:
    bodies = []
    for entry in json.loads((CORPUS / "index.json").read_text()):
        if entry["signal"] != "traces" or entry["content_encoding"] == "gzip":
            continue
        body = (CORPUS / entry["file"]).read_bytes()
        bodies.append((body, entry["content_type"], decode_traces))
    return bodies


CORPUS_BODIES = _corpus_bodies()


def _mutate_json(node: object, path: list[int], replacement: object) -> object:
    """Replace the node reached by following `path` (indexes into lists / dict values)."""
    if not path:
        return replacement
    if isinstance(node, list) and node:
        index = path[0] % len(node)
        return [_mutate_json(item, path[1:], replacement) if i == index else item for i, item in enumerate(node)]
    if isinstance(node, dict) and node:
        keys = list(node)
        key = keys[path[0] % len(keys)]
        return {k: (_mutate_json(v, path[1:], replacement) if k == key else v) for k, v in node.items()}
    return replacement


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    choice=st.integers(min_value=0, max_value=len(CORPUS_BODIES) - 1),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=6),
    cut=st.integers(min_value=0),
)
def test_mutated_corpus_bytes_raise_only_otlp_decode_error(choice, flips, cut):
    body, content_type, decoder = CORPUS_BODIES[choice]
    data = bytearray(body)
    for position, value in flips:
        data[position % len(data)] = value
    if cut % 5 == 0:
        data = data[: cut % len(data)]
    _decode_and_map(decoder, bytes(data), content_type)


JSON_CORPUS = [orjson.loads(body) for body, content_type, _ in CORPUS_BODIES if content_type == JSON]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    choice=st.integers(min_value=0, max_value=len(JSON_CORPUS) - 1),
    edits=st.lists(
        st.tuples(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=12), JSON_VALUES),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_corpus_json_trees_raise_only_otlp_decode_error(choice, edits):
    document = JSON_CORPUS[choice]
    for path, replacement in edits:
        document = _mutate_json(document, path, replacement)
    _decode_and_map(decode_traces, json.dumps(document).encode(), JSON)
