"""The hand-written OTLP encoder decodes to the same message as OpenTelemetry's reference encoder."""

from __future__ import annotations

import time

import pytest
from observatory_sdk.exporter import parse_retry_after
from observatory_sdk.otlp import encode_readable_span, encode_request, encode_scope, read_partial_success
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

ATTRIBUTES = {
    "gen_ai.provider.name": "openai",
    "gen_ai.usage.input_tokens": 1200,
    "big": 2**40,
    "negative": -7,
    "gen_ai.request.temperature": 0.25,
    "gen_ai.request.stream": True,
    "gen_ai.response.finish_reasons": ("stop", "tool_calls"),
    "unicode": "prix: 3 € — ok",
    "empty": "",
}


def _finished_spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "encoder-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("observatory_sdk", "0.1.0")
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER):
        span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=ATTRIBUTES)
        span.set_status(Status(StatusCode.ERROR, "RateLimitError"))
        span.end(end_time=time.time_ns())
    return exporter.get_finished_spans()


def _encode(spans) -> bytes:
    return encode_request(
        spans[0].resource.attributes, encode_scope("observatory_sdk", "0.1.0"), [encode_readable_span(s) for s in spans]
    )


def _parse(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return request


def _canonical(request: ExportTraceServiceRequest) -> list:
    """Spans with their resource and scope, ignoring how they are grouped and the empty status."""
    rows = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if span.status.code == 0:
                    span.ClearField("status")
                rows.append(
                    (
                        resource_spans.resource.SerializeToString(),
                        scope_spans.scope.name,
                        scope_spans.scope.version,
                        span.SerializeToString(),
                    )
                )
    return sorted(rows)


def test_it_matches_the_reference_encoder():
    spans = _finished_spans()

    assert _canonical(_parse(_encode(spans))) == _canonical(encode_spans(spans))
    assert _canonical(_parse(_encode(spans))) == _canonical(_parse(_encode(spans)))  # the cached path too


def test_it_keeps_attribute_types():
    [chat] = [
        span
        for span in _parse(_encode(_finished_spans())).resource_spans[0].scope_spans[0].spans
        if span.name == "chat gpt-4o-mini"
    ]
    values = {kv.key: kv.value for kv in chat.attributes}

    assert values["gen_ai.usage.input_tokens"].int_value == 1200
    assert values["negative"].int_value == -7
    assert values["gen_ai.request.temperature"].double_value == 0.25
    assert values["gen_ai.request.stream"].bool_value is True
    assert [item.string_value for item in values["gen_ai.response.finish_reasons"].array_value.values] == [
        "stop",
        "tool_calls",
    ]
    assert values["unicode"].string_value == "prix: 3 € — ok"
    assert chat.status.code == 2
    assert chat.status.message == "RateLimitError"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_is_read_as_seconds_or_a_date(header, seconds):
    assert parse_retry_after(header) == seconds


def test_it_reads_the_rejected_span_count_of_the_servers_answer():
    answer = ExportTraceServiceResponse()
    answer.partial_success.rejected_spans = 300
    answer.partial_success.error_message = "3 spans had no model"

    assert read_partial_success(answer.SerializeToString()) == (300, "3 spans had no model")
    assert read_partial_success(b"") == (0, "")
    with pytest.raises(ValueError):
        read_partial_success(b'{"partialSuccess": {}}')
