"""The C decoder of trace exports (`ingest.otlp_decode._spans`) builds exactly the spans the Python decoder builds,
or leaves the body to it: on random plain exports (it must take them), on random exports with events, links and
flawed spans, on damaged bodies, on every protobuf body of the real-library corpus, and on the benchmark's body.
Its table of decoded attributes never hands a caller a value another caller can change."""

from __future__ import annotations

import gzip
import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from ingest.otlp_decode import limits, protobuf
from ingest.records import SpanView
from tests.ingest.test_decode_protobuf import (
    ATTRIBUTES,
    DAY,
    EXAMPLES,
    NOW,
    RESOURCES,
    SCOPES,
    SPAN_IDS,
    TEXT,
    TRACE_EXPORTS,
    TRACE_IDS,
    comparable_view,
    damaged,
)

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "otlp"
needs_c = pytest.mark.skipif(
    protobuf.c_decoder is None, reason="the C decoder is not built here, or OBSERVATORY_INGEST_PURE_PYTHON turns it off"
)
pytestmark = needs_c


def c_spans(body) -> list[SpanView] | None:
    """What the C decoder alone makes of a body: its spans, or None when it leaves the body to Python."""
    return protobuf._decode_in_c(body)


def result_of(decode, body: bytes):
    """A decoder's spans and rejections, or the message it refuses the body with."""
    try:
        result = decode(body)
    except limits.OtlpDecodeError as exc:
        return exc.message
    return [comparable_view(span) for span in result.spans], result.rejected, result.errors


def python_result(body: bytes):
    return result_of(protobuf._decode_traces_in_python, body)


def assert_same(body: bytes) -> list[SpanView] | None:
    taken = c_spans(body)
    expected = python_result(body)
    if taken is not None:
        assert (([comparable_view(span) for span in taken], 0, [])) == expected
    assert result_of(protobuf.decode_traces, body) == expected
    return taken


@st.composite
def plain_spans(draw: st.DrawFn) -> trace_pb2.Span:
    """Spans the C decoder takes: valid ids and times, no events or links; anything else as random as can be."""
    start = draw(st.integers(NOW - 30 * DAY, NOW))
    return trace_pb2.Span(
        trace_id=draw(TRACE_IDS), span_id=draw(SPAN_IDS),
        parent_span_id=draw(st.one_of(st.just(b""), SPAN_IDS, st.just(bytes(8)))),
        trace_state=draw(st.sampled_from(["", "vendor=1", "clé=é"])), flags=draw(st.integers(0, 2**32 - 1)),
        name=draw(TEXT), kind=draw(st.integers(-3, 7)), start_time_unix_nano=start,
        end_time_unix_nano=draw(st.integers(start, start + 10 * 10**9)), attributes=draw(ATTRIBUTES),
        dropped_attributes_count=draw(st.integers(0, 3)),
        status=draw(st.one_of(st.none(), st.builds(trace_pb2.Status, code=st.integers(-1, 3), message=TEXT))),
    )


PLAIN_EXPORTS = st.builds(
    ExportTraceServiceRequest,
    resource_spans=st.lists(
        st.builds(
            trace_pb2.ResourceSpans,
            resource=st.one_of(st.none(), RESOURCES),
            scope_spans=st.lists(
                st.builds(trace_pb2.ScopeSpans, scope=st.one_of(st.none(), SCOPES),
                          spans=st.lists(plain_spans(), max_size=4), schema_url=TEXT),
                max_size=3,
            ),
            schema_url=st.sampled_from(["", "https://opentelemetry.io/schemas/1.26.0"]),
        ),
        max_size=3,
    ),
)


@EXAMPLES
@given(request=PLAIN_EXPORTS)
def test_plain_exports_are_decoded_in_c_exactly_as_in_python(request):
    body = request.SerializeToString()

    taken = assert_same(body)

    nested = any(kv.value.WhichOneof("value") == "kvlist_value" and len(kv.value.kvlist_value.values) > 0
                 for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans
                 for kv in span.attributes)
    assert taken is not None or nested  # only an attribute the Python code refuses could send it back


@EXAMPLES
@given(request=TRACE_EXPORTS)
def test_exports_with_events_links_and_flawed_spans_end_as_in_python(request):
    body = request.SerializeToString()
    taken = assert_same(body)
    if any(span.events or span.links for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans):
        assert taken is None


FLAWS = {
    "short trace id": lambda span: setattr(span, "trace_id", b"\x01" * 8),
    "zero trace id": lambda span: setattr(span, "trace_id", bytes(16)),
    "short span id": lambda span: setattr(span, "span_id", b"\x02" * 4),
    "no span id": lambda span: setattr(span, "span_id", b""),
    "zero span id": lambda span: setattr(span, "span_id", bytes(8)),
    "odd parent id": lambda span: setattr(span, "parent_span_id", b"\x03" * 3),
    "no start": lambda span: setattr(span, "start_time_unix_nano", 0),
    "start days ahead": lambda span: (setattr(span, "end_time_unix_nano", NOW + 3 * DAY),
                                      setattr(span, "start_time_unix_nano", NOW + 2 * DAY)),
    "end before start": lambda span: setattr(span, "end_time_unix_nano", span.start_time_unix_nano - 1),
    "an event": lambda span: span.events.add(name="gen_ai.content.prompt", time_unix_nano=NOW),
    "a link": lambda span: span.links.add(trace_id=b"\x05" * 16, span_id=b"\x06" * 8),
}


@EXAMPLES
@given(request=PLAIN_EXPORTS, data=st.data())
def test_a_span_the_python_decoder_rejects_or_reads_further_sends_the_body_back(request, data):
    spans = [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    if not spans:
        request.resource_spans.add().scope_spans.add().spans.append(data.draw(plain_spans()))
        spans = [request.resource_spans[-1].scope_spans[0].spans[0]]
    FLAWS[data.draw(st.sampled_from(sorted(FLAWS)))](data.draw(st.sampled_from(spans)))
    body = request.SerializeToString()

    assert c_spans(body) is None
    assert_same(body)


@EXAMPLES
@given(request=PLAIN_EXPORTS, data=st.data())
def test_damaged_bodies_are_refused_or_decoded_as_in_python(request, data):
    body = damaged(request.SerializeToString(), data)
    if body and data.draw(st.booleans()):
        body = body[:data.draw(st.integers(0, len(body) - 1))]

    assert_same(body)


def test_every_protobuf_body_of_the_corpus_decodes_as_in_python():
    bodies = sorted(CORPUS.rglob("*.pb")) + sorted(CORPUS.rglob("*.pb.gz"))
    taken = 0
    for path in bodies:
        body = path.read_bytes()
        if path.suffix == ".gz":
            body = gzip.decompress(body)
        try:
            ExportTraceServiceRequest.FromString(body)
        except Exception:  # a logs or metrics body
            continue
        if not ExportTraceServiceRequest.FromString(body).resource_spans:
            continue
        taken += assert_same(body) is not None
    assert taken >= 10  # the libraries' plain exports go the C way


def test_the_benchmark_body_goes_the_c_way():
    spec = importlib.util.spec_from_file_location("ingest_bench", ROOT / "bench" / "ingest.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    body = gzip.decompress(bench.make_body(100, NOW - DAY, random.Random(7)))
    spans = assert_same(body)
    assert spans is not None and len(spans) == 100
    assert spans[0].scope_name == "observatory_sdk" and spans[0].resource["service.name"] == "bench-app"
    assert isinstance(spans[0].attributes["gen_ai.usage.input_tokens"], int)


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def one_span_body(attributes: list[KeyValue]) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id = b"\x01" * 16, b"\x02" * 8
    span.start_time_unix_nano = span.end_time_unix_nano = NOW - DAY
    span.attributes.extend(attributes)
    return request.SerializeToString()


def test_a_caller_changing_a_decoded_value_changes_nothing_for_the_next_export():
    body = one_span_body([
        kv("gen_ai.request.model", AnyValue(string_value="gpt-4o")),
        kv("gen_ai.response.finish_reasons", AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="stop")]))),
    ])
    first = c_spans(body)[0]
    first.attributes["gen_ai.request.model"] = "changed"
    first.attributes["gen_ai.response.finish_reasons"].append("length")
    protobuf._KEY_VALUES.clear()  # the C table answers alone now

    again = c_spans(body)[0]

    assert again.attributes == {"gen_ai.request.model": "gpt-4o", "gen_ai.response.finish_reasons": ["stop"]}
    assert again.attributes is not first.attributes


def test_a_full_table_is_emptied_and_keeps_decoding():
    protobuf.c_decoder.clear_cache()
    for number in range(16_384 + 10):
        spans = c_spans(one_span_body([kv("gen_ai.usage.input_tokens", AnyValue(int_value=number))]))
        assert spans[0].attributes == {"gen_ai.usage.input_tokens": number}
    assert protobuf.c_decoder.cache_size() == 10


def test_the_limits_are_the_python_decoders(monkeypatch):
    body = one_span_body([kv(f"k{i}", AnyValue(int_value=i)) for i in range(4)])
    monkeypatch.setattr(limits, "MAX_ATTRIBUTES", 3)
    assert c_spans(body) is None
    assert protobuf.decode_traces(body).rejected == 1
    monkeypatch.setattr(limits, "MAX_ATTRIBUTES", 512)
    monkeypatch.setattr(limits, "MAX_SPANS", 0)
    assert c_spans(body) is None
    with pytest.raises(limits.OtlpDecodeError, match="too many spans"):
        protobuf.decode_traces(body)


def test_pure_python_can_be_asked_for():
    code = "from ingest.otlp_decode import protobuf; print(protobuf.c_decoder)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OBSERVATORY_INGEST_PURE_PYTHON": "1"},
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "None"


def span_body(span_fields: bytes, resource: bytes | None = None, scope: bytes | None = None) -> bytes:
    """An export of one ResourceSpans (`resource`: its Resource's bytes) and one ScopeSpans (`scope`: its
    InstrumentationScope's bytes) holding one span of `span_fields` besides valid ids and times."""
    span = trace_pb2.Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, start_time_unix_nano=NOW - DAY,
                          end_time_unix_nano=NOW - DAY).SerializeToString() + span_fields
    scope_spans = protobuf._field(2, span) if scope is None else protobuf._field(1, scope) + protobuf._field(2, span)
    resource_spans = protobuf._field(2, scope_spans)
    if resource is not None:
        resource_spans = protobuf._field(1, resource) + resource_spans
    return protobuf._field(1, resource_spans)


def test_a_tag_or_a_length_longer_than_protobuf_reads_is_refused_as_protobuf_refuses_it():
    name = b"\x01x"
    for tag in (b"\xaa\x80\x80\x80\x00", b"\xaa\x80\x80\x80\x80\x00"):  # 5 bytes: read; 6: corrupt for protobuf
        assert_same(span_body(tag + name))
    for length in (b"\x81\x80\x80\x80\x00", b"\x81\x80\x80\x80\x80\x00"):
        assert_same(span_body(b"\x2a" + length + b"x"))
    assert c_spans(span_body(b"\xaa\x80\x80\x80\x80\x00" + name)) is None
    assert isinstance(python_result(span_body(b"\xaa\x80\x80\x80\x80\x00" + name)), str)  # refused


@pytest.mark.parametrize("depth", [97, 98, 99, 100, 101])
def test_a_resource_or_scope_nested_up_to_protobufs_limit_is_judged_at_its_depth_in_the_whole_body(depth):
    nested = b"\x7b" * depth + b"\x7c" * depth  # unknown groups (field 15) inside one another
    assert_same(span_body(b"", resource=nested))
    assert_same(span_body(b"", scope=nested))


def test_only_bytes_are_walked():
    body = span_body(b"\x2a\x01x")
    assert c_spans(body) is not None
    assert c_spans(bytearray(body)) is None and c_spans(memoryview(body)) is None
