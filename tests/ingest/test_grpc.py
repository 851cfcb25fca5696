"""The OTLP/gRPC receiver as a gRPC exporter sees it: the same calls as over HTTP, the OTLP status codes (with
RetryInfo where an exporter may retry), partial success, the spool during an outage — a real server on a free port."""

import gzip
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from django.db import connection
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from ingest import spool
from ingest.grpc_server import build_server
from ingest.models import CallContent, LLMCall, MetricSample, TraceSpan
from ingest.receiver import apply_spooled
from observatory.models import Organization, Team
from observatory.services import create_api_key
from tests.ingest.conftest import corpus_body
from tests.ingest.test_corpus import TRACE_FILES
from tests.ingest.test_otlp_http import CHAT, make_request
from tests.ingest.test_spool import database_down

REPO = Path(__file__).resolve().parents[2]
METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
PROTOBUF_TRACES = [entry["file"] for entry in TRACE_FILES if entry["content_type"] == "application/x-protobuf"]


@pytest.fixture
def grpc_port(settings, tmp_path):
    """A started receiver on a free port. Its threads hold their own database connections: closed after each call."""
    settings.DATA_DIR = tmp_path
    settings.SPOOL_DRAIN_IN_BACKGROUND = False
    saved_age = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = 0  # the dict every thread's connection is made from
    server, port = build_server("127.0.0.1:0", threads=4)
    server.start()
    yield port
    server.stop(None).wait()
    connection.settings_dict["CONN_MAX_AGE"] = saved_age


@pytest.fixture
def export(grpc_port, api_key):
    """Send raw protobuf bytes as an exporter would; returns the reply's bytes or raises grpc.RpcError."""
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")

    def send(signal, body, key=None, compression=None, metadata=None):
        token = api_key.plaintext if key is None else key
        metadata = metadata if metadata is not None else ([("authorization", f"Bearer {token}")] if token else [])
        method = channel.unary_unary(METHODS[signal])
        return method(body, metadata=metadata, compression=compression, timeout=30)

    yield send
    channel.close()


def _refusal(signal, body, export, **kwargs):
    with pytest.raises(grpc.RpcError) as refused:
        export(signal, body, **kwargs)
    return refused.value


def _retry_delay(error) -> int:
    trailers = dict(error.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]) == retry
    assert status.code == error.code().value[0] and status.message == error.details()
    return retry.retry_delay.seconds


def _calls(organization):
    """Every stored call of one organization, as comparable rows: all fields but ids, tenancy and the arrival time."""
    skip = {"id", "organization", "team", "product", "api_key", "ingested_at"}
    fields = [f.attname for f in LLMCall._meta.concrete_fields if f.name not in skip]
    return sorted(LLMCall.objects.filter(organization=organization).values_list(*fields), key=repr)


@pytest.mark.django_db(transaction=True)
def test_the_official_grpc_exporter_stores_a_genai_call(grpc_port, api_key, team):
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True,
                                headers=(("authorization", f"Bearer {api_key.plaintext}"),))
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=CHAT):
        pass
    provider.shutdown()
    call = LLMCall.objects.get()
    assert (call.provider, call.input_tokens, call.output_tokens) == ("openai", 1200, 85)
    assert (call.response_model, call.service_name, call.team_id) == ("gpt-4o-mini-2024-07-18", "checkout", team.id)


@pytest.mark.django_db(transaction=True)
def test_the_corpus_sent_over_grpc_stores_the_same_calls_as_over_http(export, post_otlp, org):
    other_org = Organization.objects.create(name="Globex", slug="globex")
    grpc_key = create_api_key(other_org, "grpc", team=Team.objects.create(organization=other_org, name="Search",
                                                                         slug="search"))
    for file in PROTOBUF_TRACES:
        body, _, gzipped = corpus_body(file)
        headers = {"HTTP_CONTENT_ENCODING": "gzip"} if gzipped else {}
        assert post_otlp(body=body, **headers).status_code == 200, file
        raw = gzip.decompress(body) if gzipped else body
        reply = export("traces", raw, key=grpc_key.plaintext, compression=grpc.Compression.Gzip if gzipped else None)
        assert not ExportTraceServiceResponse.FromString(reply).HasField("partial_success"), file
    over_http, over_grpc = _calls(org), _calls(other_org)
    assert len(over_http) > 30
    assert over_grpc == over_http
    assert (TraceSpan.objects.filter(organization=other_org).count()
            == TraceSpan.objects.filter(organization=org).count())


@pytest.mark.django_db(transaction=True)
def test_it_accepts_the_x_api_key_metadata_and_a_replay_counts_once(export, api_key):
    body = make_request([CHAT, CHAT]).SerializeToString()
    export("traces", body, metadata=[("x-api-key", api_key.plaintext)])
    export("traces", body, compression=grpc.Compression.Gzip)
    assert LLMCall.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_it_answers_partial_success_for_invalid_spans(export):
    reply = export("traces", make_request([CHAT, CHAT, CHAT], bad_span_ids=(1,)).SerializeToString())
    partial = ExportTraceServiceResponse.FromString(reply).partial_success
    assert partial.rejected_spans == 1 and partial.error_message
    assert LLMCall.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_it_keeps_gpu_gauges_and_rejects_points_out_of_bounds_with_partial_success(export):
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "DCGM_FI_DEV_GPU_UTIL"
    for when_ns, value in ((1_795_000_000_000_000_000, 71.0), (631_152_000_000_000_000, 5.0)):  # 2026, 1990
        metric.gauge.data_points.add(time_unix_nano=when_ns, as_double=value)
    partial = ExportMetricsServiceResponse.FromString(export("metrics", request.SerializeToString())).partial_success
    assert partial.rejected_data_points == 1 and "before 2000-01-01" in partial.error_message
    assert list(MetricSample.objects.values_list("value", flat=True)) == [71.0]


@pytest.mark.django_db(transaction=True)
def test_log_events_carry_content_only_with_capture_on(export, org):
    body = corpus_body("otel-openai-v2/openai_chat.logs.pb")[0]
    reply = export("logs", body)
    assert not ExportLogsServiceResponse.FromString(reply).HasField("partial_success")
    assert CallContent.objects.count() == 0
    org.capture_content = True
    org.save()
    export("logs", body)
    content = CallContent.objects.get()
    assert content.input_content and content.output_content


@pytest.mark.django_db(transaction=True)
def test_it_requires_a_key(export):
    refused = _refusal("traces", make_request([CHAT]).SerializeToString(), export, key="")
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing API key" in refused.details()


@pytest.mark.django_db(transaction=True)
def test_it_rejects_a_wrong_key(export):
    refused = _refusal("metrics", b"", export, key="obs_000000000000_nope")
    assert (refused.code(), refused.details()) == (grpc.StatusCode.UNAUTHENTICATED, "invalid or revoked API key")
    assert LLMCall.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_it_rejects_a_malformed_body_as_invalid_argument(export):
    refused = _refusal("traces", b"\xff\xff\xff\xff garbage", export)
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed OTLP body" in refused.details()


@pytest.mark.django_db(transaction=True)
def test_a_key_over_its_rate_limit_gets_resource_exhausted_with_retry_info(export, settings):
    settings.INGEST_RATE_PER_KEY, settings.INGEST_BURST_PER_KEY = 1, 200
    body = make_request([CHAT] * 150).SerializeToString()
    export("traces", body)  # 200 tokens → 50
    export("traces", make_request([CHAT] * 150).SerializeToString())  # admitted while above zero → 100 in debt
    refused = _refusal("traces", make_request([CHAT] * 150).SerializeToString(), export)
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "rate limit" in refused.details()
    assert 90 <= _retry_delay(refused) <= 101  # 100 records of debt at 1 a second (less what refilled meanwhile)
    assert LLMCall.objects.count() == 300


@pytest.mark.django_db(transaction=True)
def test_an_export_during_an_outage_is_spooled_answered_ok_and_stored_once_the_database_is_back(export, tmp_path):
    body = make_request([CHAT] * 3).SerializeToString()
    export("traces", make_request([CHAT]).SerializeToString())  # the key is known (and cached) before the outage
    with database_down(tmp_path):
        reply = export("traces", body)
        assert not ExportTraceServiceResponse.FromString(reply).HasField("partial_success")
        assert spool.state().pending_bytes > len(body)
    assert LLMCall.objects.count() == 1
    assert spool.drain(apply_spooled) == 1
    assert LLMCall.objects.count() == 4
    export("traces", body)  # the exporter's own retry
    assert LLMCall.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_full_spool_during_an_outage_is_unavailable_with_retry_info(export, tmp_path, settings):
    settings.SPOOL_MAX_BYTES = 1
    export("traces", make_request([CHAT]).SerializeToString())
    with database_down(tmp_path):
        refused = _refusal("traces", make_request([CHAT] * 3).SerializeToString(), export)
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert _retry_delay(refused) == 30


@pytest.mark.django_db(transaction=True)
def test_a_message_over_the_body_limit_once_decompressed_is_refused(settings, api_key, tmp_path):
    settings.INGEST_MAX_BODY_BYTES = 4096
    server, port = build_server("127.0.0.1:0", threads=1)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            method = channel.unary_unary(METHODS["traces"])
            with pytest.raises(grpc.RpcError) as refused:
                method(make_request([CHAT] * 50).SerializeToString(), timeout=10,  # 14.8 kB, 0.9 kB gzipped
                       metadata=[("authorization", f"Bearer {api_key.plaintext}")], compression=grpc.Compression.Gzip)
    finally:
        server.stop(None).wait()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert LLMCall.objects.count() == 0


def _serve_command(port, tmp_path):
    env = {**os.environ, "OBSERVATORY_HOME": str(tmp_path), "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    return subprocess.Popen([sys.executable, "manage.py", "grpc", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_the_grpc_command_serves_until_sigterm_and_refuses_a_busy_port(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = _serve_command(port, tmp_path)
    try:
        assert proc.stdout.readline().strip() == f"serving OTLP/gRPC on 127.0.0.1:{port}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        second = _serve_command(port, tmp_path)
        rest, _ = second.communicate(timeout=60)
        assert second.returncode != 0 and "already using this port" in rest and "Traceback" not in rest
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "stopping" in rest
