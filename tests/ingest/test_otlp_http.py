"""The OTLP/HTTP receiver as an exporter sees it: status codes, messages, partial success, idempotency."""

import base64
import gzip
import json
import secrets

import pytest
from django.db import connection
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from ingest.models import LLMCall, TraceSpan

NOW_NS = 1_795_000_000_000_000_000  # 2026-11-18


def _kv(key, value):
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def make_request(spans_attrs, start_ns=NOW_NS, trace_id=None, bad_span_ids=()):
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(_kv("service.name", "checkout"))
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.openai_v2"
    trace_id = trace_id or secrets.token_bytes(16)
    for i, attrs in enumerate(spans_attrs):
        span_id = b"" if i in bad_span_ids else (i + 1).to_bytes(8, "big")
        ss.spans.append(Span(
            trace_id=trace_id, span_id=span_id, name="chat gpt-4o-mini", kind=3,
            start_time_unix_nano=start_ns + i * 1000, end_time_unix_nano=start_ns + i * 1000 + 850_000_000,
            attributes=[_kv(k, v) for k, v in attrs.items()],
        ))
    return request


CHAT = {
    "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 85,
}


@pytest.mark.django_db
def test_it_stores_a_call_and_answers_in_protobuf(post_otlp, team):
    response = post_otlp(body=make_request([CHAT]).SerializeToString())
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    call = LLMCall.objects.get()
    assert (call.input_tokens, call.output_tokens, call.response_model) == (1200, 85, "gpt-4o-mini-2024-07-18")
    assert call.team_id == team.id  # the key's default team
    assert call.service_name == "checkout"


@pytest.mark.django_db
def test_a_replayed_export_is_not_counted_twice(post_otlp):
    body = make_request([CHAT, CHAT]).SerializeToString()
    assert post_otlp(body=body).status_code == 200
    assert post_otlp(body=body, gzipped=True).status_code == 200
    assert LLMCall.objects.count() == 2


@pytest.mark.django_db
def test_it_accepts_the_langfuse_path_with_basic_auth(post_otlp, api_key):
    basic = base64.b64encode(f"pk-lf-123:{api_key.plaintext}".encode()).decode()
    response = post_otlp("/api/public/otel/v1/traces", make_request([CHAT]).SerializeToString(), key="",
                         HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200
    assert LLMCall.objects.count() == 1


@pytest.mark.django_db
def test_it_accepts_the_x_api_key_header(post_otlp, api_key):
    response = post_otlp(body=make_request([CHAT]).SerializeToString(), key="", HTTP_X_API_KEY=api_key.plaintext)
    assert response.status_code == 200


@pytest.mark.django_db
def test_it_requires_a_key(post_otlp):
    response = post_otlp(body=make_request([CHAT]).SerializeToString(), key="")
    assert response.status_code == 401
    assert "missing API key" in status_pb2.Status.FromString(response.content).message
    assert LLMCall.objects.count() == 0


@pytest.mark.django_db
def test_it_rejects_a_wrong_key_in_json(post_otlp):
    response = post_otlp(body=b"{}", content_type="application/json", key="obs_000000000000_nope")
    assert response.status_code == 401
    assert response.json()["message"] == "invalid or revoked API key"


@pytest.mark.django_db
def test_it_rejects_get(client):
    response = client.get("/v1/traces")
    assert response.status_code == 405


@pytest.mark.django_db
def test_it_rejects_an_unknown_content_type(post_otlp):
    response = post_otlp(body=b"x", content_type="text/plain")
    assert response.status_code == 415
    assert "application/x-protobuf or application/json" in status_pb2.Status.FromString(response.content).message


@pytest.mark.django_db
def test_it_rejects_malformed_protobuf(post_otlp):
    response = post_otlp(body=b"\xff\xff\xff\xff garbage")
    assert response.status_code == 400
    assert "malformed OTLP body" in status_pb2.Status.FromString(response.content).message


@pytest.mark.django_db
def test_it_rejects_malformed_json(post_otlp):
    response = post_otlp(body=b'{"resourceSpans": [', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["message"].startswith("malformed OTLP body")


@pytest.mark.django_db
def test_it_rejects_broken_gzip(post_otlp):
    response = post_otlp(body=b"not gzip", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert "not valid gzip" in status_pb2.Status.FromString(response.content).message


@pytest.mark.django_db
def test_it_refuses_a_gzip_bomb(post_otlp, settings):
    settings.INGEST_MAX_DECOMPRESSED_BYTES = 1_000_000
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    response = post_otlp(body=bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert "decompressed body is over the 1000000-byte limit" in status_pb2.Status.FromString(response.content).message


@pytest.mark.django_db
def test_it_refuses_an_oversized_body(post_otlp, settings):
    settings.INGEST_MAX_BODY_BYTES = 10_000
    response = post_otlp(body=b"\0" * 20_000)
    assert response.status_code == 413


@pytest.mark.django_db
def test_bad_spans_are_rejected_one_by_one_with_partial_success(post_otlp):
    request = make_request([CHAT, CHAT, CHAT], bad_span_ids=(1,))
    response = post_otlp(body=request.SerializeToString())
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 1
    assert partial.error_message
    assert LLMCall.objects.count() == 2


@pytest.mark.django_db
def test_absurd_token_counts_are_rejected_not_stored(post_otlp):
    request = make_request([CHAT, {**CHAT, "gen_ai.usage.input_tokens": -5}])
    response = post_otlp(body=request.SerializeToString(), content_type="application/x-protobuf")
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert response.status_code == 200
    assert partial.rejected_spans == 1
    assert LLMCall.objects.count() == 1


@pytest.mark.django_db
def test_json_answers_in_json_with_partial_success(post_otlp):
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "zzzz", "name": "x",
        "startTimeUnixNano": str(NOW_NS), "endTimeUnixNano": str(NOW_NS + 1),
    }]}]}]}
    response = post_otlp(body=json.dumps(body).encode(), content_type="application/json")
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"


@pytest.mark.django_db
def test_non_model_spans_are_kept_as_trace_context(post_otlp):
    request = make_request([CHAT, {"http.request.method": "POST", "url.full": "https://api.openai.com/v1/chat/completions"}])
    assert post_otlp(body=request.SerializeToString()).status_code == 200
    assert LLMCall.objects.count() == 1
    assert TraceSpan.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_down_and_no_spool_gives_503_with_retry_after(post_otlp, settings):
    """With nowhere to keep the export (the spool directory cannot be written) the exporter is told to retry."""
    settings.DATA_DIR = "/proc/observatory-cannot-write-here"
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"] = "/nonexistent-socket-dir"
    try:
        response = post_otlp(body=make_request([CHAT]).SerializeToString())
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "database is unavailable" in status_pb2.Status.FromString(response.content).message


@pytest.mark.django_db
def test_a_span_over_a_day_long_is_stored_flagged_implausible_not_billed(post_otlp):
    request = make_request([CHAT])
    request.resource_spans[0].scope_spans[0].spans[0].end_time_unix_nano = NOW_NS + 25 * 3600 * 10**9
    assert post_otlp(body=request.SerializeToString()).status_code == 200
    call = LLMCall.objects.get()
    assert (call.duration_ms, call.cost_status, call.cost_usd) == (90_000_000.0, "implausible", None)


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/x-protobuf", "application/json"])
def test_a_nul_character_in_one_span_costs_that_span_at_most(post_otlp, content_type):
    spans = [CHAT] * 20 + [{**CHAT, "gen_ai.request.model": "gpt-4o-mini\x00", "llm.prompt.note": "a\x00b"}]
    request = make_request(spans)
    if content_type == "application/json":
        from google.protobuf import json_format

        body = json.dumps(json_format.MessageToDict(request)).encode()
    else:
        body = request.SerializeToString()
    response = post_otlp(body=body, content_type=content_type)
    assert response.status_code == 200
    assert LLMCall.objects.count() == 21
    assert sorted(set(LLMCall.objects.values_list("request_model", flat=True))) == ["gpt-4o-mini", "gpt-4o-mini\ufffd"]
