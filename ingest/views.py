"""OTLP/HTTP receiver: /v1/traces, /v1/metrics, /v1/logs (and Langfuse's /api/public/otel/v1/traces).

Thin: authenticate, read the body, decode, hand to services, answer in the request's encoding.
Every failure is a 4xx with a message, or a 503 with Retry-After when the database is down.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import otlp_decode, rate_limit
from ingest.http import RequestRejected, export_response, read_otlp_body, response_content_type, status_response
from ingest.services import ingest_log_records, ingest_metric_points, ingest_spans
from observatory.api_auth import key_from_headers
from observatory.services import authenticate_key_cached

log = logging.getLogger(__name__)


def _handle(request: HttpRequest, work) -> HttpResponse:
    content_type = response_content_type(request)
    if request.method != "POST":
        response = status_response(content_type, 405, "use POST to export OTLP data")
        response["Allow"] = "POST"
        return response
    try:
        plaintext = key_from_headers(request.headers)
        if not plaintext:
            raise RequestRejected(401, "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'")
        api_key = authenticate_key_cached(plaintext)
        if api_key is None:
            raise RequestRejected(401, "invalid or revoked API key")
        _within_rate(api_key, 0)
        otlp = read_otlp_body(request)
        return work(api_key, otlp, content_type)
    except RequestRejected as exc:
        return status_response(content_type, exc.status, exc.message, exc.retry_after)
    except otlp_decode.OtlpDecodeError as exc:
        return status_response(content_type, 400, f"malformed OTLP body: {exc}")
    except (OperationalError, InterfaceError) as exc:
        log.warning("database unavailable during ingest: %s", exc)
        return status_response(content_type, 503, "the database is unavailable; retry later", retry_after=5)
    except DataError as exc:
        log.warning("ingest write refused by the database: %s", exc)
        return status_response(content_type, 400, f"the data could not be stored: {str(exc).splitlines()[0][:200]}")
    except DatabaseError:
        log.exception("unexpected database error during ingest; the exporter will retry")
        return status_response(content_type, 503, "the data could not be stored right now; retry later", retry_after=30)


def _within_rate(api_key, records: int) -> None:
    """Charge the key's rate limit for `records` records (0: only check it is not exhausted); 429 when over."""
    wait = rate_limit.admit(api_key, records)
    if wait is not None:
        log.info("ingest rate limit: key %s refused for %s s", api_key.prefix, wait)
        raise RequestRejected(429, f"this API key is over its ingest rate limit; retry in {wait} s", retry_after=wait)


def _traces(api_key, otlp, content_type) -> HttpResponse:
    decoded = otlp_decode.decode_traces(otlp.body, otlp.content_type)
    _within_rate(api_key, len(decoded.spans))
    outcome = ingest_spans(api_key, decoded.spans, decoded.rejected, decoded.errors)
    return export_response(content_type, ExportTraceServiceResponse(), "rejected_spans", outcome.rejected, outcome.message)


def _metrics(api_key, otlp, content_type) -> HttpResponse:
    decoded = otlp_decode.decode_metrics(otlp.body, otlp.content_type)
    _within_rate(api_key, len(decoded.points))
    rejected, message = ingest_metric_points(api_key, decoded)
    return export_response(content_type, ExportMetricsServiceResponse(), "rejected_data_points", rejected, message)


def _logs(api_key, otlp, content_type) -> HttpResponse:
    decoded = otlp_decode.decode_logs(otlp.body, otlp.content_type)
    _within_rate(api_key, len(decoded.records))
    rejected, message = ingest_log_records(api_key, decoded)
    return export_response(content_type, ExportLogsServiceResponse(), "rejected_log_records", rejected, message)


@csrf_exempt
def otlp_traces(request: HttpRequest) -> HttpResponse:
    return _handle(request, _traces)


@csrf_exempt
def otlp_metrics(request: HttpRequest) -> HttpResponse:
    return _handle(request, _metrics)


@csrf_exempt
def otlp_logs(request: HttpRequest) -> HttpResponse:
    return _handle(request, _logs)
