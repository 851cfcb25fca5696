"""The real-library corpus replayed over HTTP exactly as the exporters sent it: every body yields the
calls the MANIFEST implies, in PostgreSQL, and replaying everything a second time changes nothing."""

import pytest
from django.db.models import Count, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.models import CallContent, LLMCall, TraceSpan
from tests.ingest.conftest import corpus_body
from tests.ingest.test_corpus import EXPECTED, TRACE_FILES


def _replay_all(post_otlp):
    for entry in TRACE_FILES:
        body, content_type, gzipped = corpus_body(entry["file"])
        headers = {"HTTP_CONTENT_ENCODING": "gzip"} if gzipped else {}
        response = post_otlp(body=body, content_type=content_type, **headers)
        assert response.status_code == 200, (entry["file"], response.content)


@pytest.mark.django_db
def test_every_corpus_body_stored_once_even_when_replayed(post_otlp):
    _replay_all(post_otlp)
    expected_total = sum(len(EXPECTED[(e["library"], e["case"])]) for e in TRACE_FILES)
    assert LLMCall.objects.count() == expected_total
    per_source = dict(LLMCall.objects.values_list("source").annotate(n=Count("id")))
    assert per_source == {
        src: sum(len(EXPECTED[(e["library"], e["case"])]) for e in TRACE_FILES if e["library"] == lib)
        for lib, src in {"otel-openai-v2": "otel-genai", "openlit": "openlit", "traceloop": "openllmetry",
                         "openinference": "openinference"}.items()
    }
    anthropic_ok = LLMCall.objects.filter(provider="anthropic", status="ok")
    assert set(anthropic_ok.values_list("input_tokens", "cached_input_tokens", "cache_write_tokens")) == {(1842, 1500, 300)}
    assert set(anthropic_ok.values_list("output_tokens", flat=True)) <= {77, 78}  # 78: traceloop's streaming bug, as reported
    embeddings = LLMCall.objects.filter(operation="embeddings")
    assert set(embeddings.values_list("input_tokens", flat=True)) == {18}
    errors = LLMCall.objects.filter(status="error")
    assert set(errors.values_list("error_type", flat=True)) == {"rate_limit", "server_error"}
    totals = LLMCall.objects.aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("cached_input_tokens"))
    assert CallContent.objects.count() == 0  # content capture is off by default
    spans = TraceSpan.objects.count()

    _replay_all(post_otlp)
    assert LLMCall.objects.count() == expected_total
    assert LLMCall.objects.aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("cached_input_tokens")) == totals
    assert TraceSpan.objects.count() == spans


@pytest.mark.django_db
def test_content_is_kept_only_when_the_organization_captures_it(post_otlp, org):
    body, content_type, _ = corpus_body("otel-openai-v2/openai_chat.pb")
    post_otlp(body=body, content_type=content_type)
    call = LLMCall.objects.get()
    assert "gen_ai.input.messages" not in call.attributes and CallContent.objects.count() == 0
    LLMCall.objects.all().delete()

    org.capture_content = True
    org.content_max_bytes = 40
    org.save()
    post_otlp(body=body, content_type=content_type)
    content = CallContent.objects.get()
    assert content.span_id == LLMCall.objects.get().span_id
    assert content.input_content and len(content.input_content.encode()) <= 40 and content.truncated


@pytest.mark.django_db
def test_log_events_carry_content_only_with_capture_on(post_otlp, org):
    body, content_type, _ = corpus_body("otel-openai-v2/openai_chat.logs.json")
    assert post_otlp("/v1/logs", body=body, content_type=content_type).status_code == 200
    assert CallContent.objects.count() == 0
    org.capture_content = True
    org.save()
    response = post_otlp("/v1/logs", body=body, content_type=content_type)
    assert response.status_code == 200 and response.json() == {}
    row = CallContent.objects.get()
    assert row.input_content and row.output_content


@pytest.mark.django_db
def test_metrics_are_accepted_and_genai_client_metrics_are_not_stored_twice(post_otlp):
    from ingest.models import MetricSample

    body, content_type, _ = corpus_body("otel-openai-v2/openai_chat.metrics.part1.json.gz")
    response = post_otlp("/v1/metrics", body=body, content_type=content_type, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert MetricSample.objects.count() == 0


@pytest.mark.django_db
def test_gpu_utilization_gauges_are_kept_once(post_otlp):
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    from ingest.models import MetricSample

    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(KeyValue(key="observatory.gpu_pool", value=AnyValue(string_value="a100-pool")))
    metric = rm.scope_metrics.add().metrics.add()
    metric.name = "DCGM_FI_DEV_GPU_UTIL"
    for gpu, value in (("0", 71.0), ("1", 12.0)):
        point = metric.gauge.data_points.add(time_unix_nano=1_795_000_000_000_000_000, as_double=value)
        point.attributes.append(KeyValue(key="gpu", value=AnyValue(string_value=gpu)))
    body = request.SerializeToString()
    assert post_otlp("/v1/metrics", body=body).status_code == 200
    assert post_otlp("/v1/metrics", body=body).status_code == 200  # a repeated export
    samples = MetricSample.objects.order_by("value")
    assert [(s.name, s.value, s.attributes["gpu"], s.attributes["observatory.gpu_pool"]) for s in samples] == [
        ("DCGM_FI_DEV_GPU_UTIL", 12.0, "1", "a100-pool"), ("DCGM_FI_DEV_GPU_UTIL", 71.0, "0", "a100-pool"),
    ]


@pytest.mark.django_db
def test_gpu_gauges_dated_outside_the_span_time_bounds_are_rejected_with_partial_success(post_otlp):
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
    )

    from ingest.models import MetricSample

    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "DCGM_FI_DEV_GPU_UTIL"
    for when_ns, value in ((1_795_000_000_000_000_000, 71.0),  # 2026-11-18
                           (16_725_225_600_000_000_000, 99.0),  # 2500-01-01
                           (631_152_000_000_000_000, 5.0)):  # 1990-01-01
        metric.gauge.data_points.add(time_unix_nano=when_ns, as_double=value)
    response = post_otlp("/v1/metrics", body=request.SerializeToString())
    assert response.status_code == 200
    partial = ExportMetricsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_data_points == 2
    assert "more than a day in the future" in partial.error_message and "before 2000-01-01" in partial.error_message
    assert list(MetricSample.objects.values_list("value", flat=True)) == [71.0]


CORPUS_PB = [corpus_body(e["file"]) for e in TRACE_FILES if e["content_type"] == "application/x-protobuf"][:20]


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.integers(0, len(CORPUS_PB) - 1),
    cuts=st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 255)), max_size=6),
    content_type=st.sampled_from(["application/x-protobuf", "application/json"]),
    gzip_header=st.booleans(),
)
def test_mutated_bodies_never_cause_a_server_error(post_otlp, which, cuts, content_type, gzip_header):
    body = bytearray(CORPUS_PB[which][0])
    for position, value in cuts:
        if body:
            body[position % len(body)] = value
    headers = {"HTTP_CONTENT_ENCODING": "gzip"} if gzip_header else {}
    response = post_otlp(body=bytes(body), content_type=content_type, **headers)
    assert response.status_code < 500, response.content


@pytest.mark.django_db
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "attributes", "key", "value",
                         "intValue", "stringValue", "startTimeUnixNano", "endTimeUnixNano", "name", "resource"]),
        children, max_size=4),
    max_leaves=30,
))
def test_random_json_never_causes_a_server_error(post_otlp, body):
    import json

    response = post_otlp(body=json.dumps(body).encode(), content_type="application/json")
    assert response.status_code < 500, response.content
