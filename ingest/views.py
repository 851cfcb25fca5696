"""OTLP/HTTP receiver: /v1/traces, /v1/metrics, /v1/logs (and Langfuse's /api/public/otel/v1/traces).

Thin: read the key and the body, hand them to ingest.receiver (authenticate, rate-limit, decode, store or spool),
answer in the request's encoding; a trace export is stored once the answer is sent (ingest.journal keeps it safe
meanwhile). Every failure is a 4xx with a message, or a 503/429 with Retry-After.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import receiver
from ingest.http import RequestRejected, export_response, read_otlp_body, response_content_type, status_response
from observatory.api_auth import key_from_headers

_REPLIES = {
    "traces": (ExportTraceServiceResponse, "rejected_spans"),
    "metrics": (ExportMetricsServiceResponse, "rejected_data_points"),
    "logs": (ExportLogsServiceResponse, "rejected_log_records"),
}


def _handle(request: HttpRequest, signal: str) -> HttpResponse:
    content_type = response_content_type(request)
    if request.method != "POST":
        response = status_response(content_type, 405, "use POST to export OTLP data")
        response["Allow"] = "POST"
        return response
    try:
        sender = receiver.sender_for(key_from_headers(request.headers))
        otlp = read_otlp_body(request)
        received = receiver.receive(sender, signal, otlp.body, otlp.content_type, answer_first=True)
    except RequestRejected as exc:
        return status_response(content_type, exc.status, exc.message, exc.retry_after)
    reply, rejected_field = _REPLIES[signal]
    return export_response(content_type, reply(), rejected_field, received.rejected, received.message,
                           received.after_answer)


@csrf_exempt
def otlp_traces(request: HttpRequest) -> HttpResponse:
    return _handle(request, "traces")


@csrf_exempt
def otlp_metrics(request: HttpRequest) -> HttpResponse:
    return _handle(request, "metrics")


@csrf_exempt
def otlp_logs(request: HttpRequest) -> HttpResponse:
    return _handle(request, "logs")
