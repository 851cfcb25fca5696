"""OTLP/gRPC receiver: the TraceService, MetricsService and LogsService `Export` methods, on a grpcio server.

Thin, like the OTLP/HTTP views: the key from the `authorization` (Bearer or Basic) or `x-api-key` metadata, the raw
request bytes (gRPC has already decompressed them) to ingest.receiver, and its answer as the signal's
Export*ServiceResponse (`partial_success` when records were rejected). A refusal becomes the gRPC status the OTLP
spec asks for — 401 UNAUTHENTICATED, 400 INVALID_ARGUMENT, 429 RESOURCE_EXHAUSTED and 503 UNAVAILABLE, the last two
with a google.rpc.RetryInfo (without it an exporter must not retry RESOURCE_EXHAUSTED). Requests run on a thread
pool; each call starts and ends like a Django request, closing database connections that went stale.
"""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass
from typing import NoReturn

import grpc
from django.conf import settings
from django.db import close_old_connections
from django.utils.datastructures import CaseInsensitiveMapping
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import receiver
from ingest.http import GRPC_CODES, PROTOBUF, RequestRejected
from observatory.api_auth import key_from_headers

log = logging.getLogger(__name__)

DEFAULT_PORT = 4317


@dataclass(frozen=True)
class _Service:
    name: str
    signal: str
    reply: type
    rejected_field: str


SERVICES = (
    _Service("opentelemetry.proto.collector.trace.v1.TraceService", "traces", ExportTraceServiceResponse, "rejected_spans"),
    _Service("opentelemetry.proto.collector.metrics.v1.MetricsService", "metrics", ExportMetricsServiceResponse,
             "rejected_data_points"),
    _Service("opentelemetry.proto.collector.logs.v1.LogsService", "logs", ExportLogsServiceResponse,
             "rejected_log_records"),
)

_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def metadata_headers(metadata) -> CaseInsensitiveMapping:
    """The call's text metadata as headers (`authorization`, `x-api-key`), for observatory.api_auth."""
    return CaseInsensitiveMapping({key: value for key, value in metadata or () if not key.endswith("-bin")})


def reply_for(service: _Service, received: receiver.Received) -> bytes:
    reply = service.reply()
    if received.rejected or received.message:
        setattr(reply.partial_success, service.rejected_field, received.rejected)
        reply.partial_success.error_message = received.message
    return reply.SerializeToString()


def abort(context: grpc.ServicerContext, rejected: RequestRejected) -> NoReturn:
    """End the call with the refusal's gRPC status; a retry delay travels as RetryInfo twice: in the status details
    (`grpc-status-details-bin`, read by Go and Java exporters) and alone (`google.rpc.retryinfo-bin`, read by Python's)."""
    code = _STATUS_CODES.get(GRPC_CODES.get(rejected.status, 2), grpc.StatusCode.UNKNOWN)
    if rejected.retry_after is not None:
        retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=rejected.retry_after))
        detail = any_pb2.Any()
        detail.Pack(retry)
        status = status_pb2.Status(code=code.value[0], message=rejected.message, details=[detail])
        context.set_trailing_metadata((
            ("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", retry.SerializeToString()),
        ))
    context.abort(code, rejected.message)


def export_handler(service: _Service):
    """The unary `Export` method of one service, taking the request's raw protobuf bytes (decoded by our own decoder)."""

    def export(body: bytes, context: grpc.ServicerContext) -> bytes:
        close_old_connections()
        try:
            sender = receiver.sender_for(key_from_headers(metadata_headers(context.invocation_metadata())))
            received = receiver.receive(sender, service.signal, body, PROTOBUF)
        except RequestRejected as exc:
            abort(context, exc)
        finally:
            close_old_connections()
        return reply_for(service, received)

    return grpc.unary_unary_rpc_method_handler(export)


def build_server(address: str, threads: int = 8) -> tuple[grpc.Server, int]:
    """A grpcio server (not started) with the three OTLP services and the standard health service on `address`
    ("host:port"; port 0 picks a free one); returns it with the bound port. Raises RuntimeError if it cannot bind."""
    limit = settings.INGEST_MAX_BODY_BYTES
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="otlp-grpc"),
        handlers=[grpc.method_handlers_generic_handler(service.name, {"Export": export_handler(service)})
                  for service in SERVICES],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.so_reuseport", 0),  # a port another server holds is an error, not a silent share
        ],
    )  # no cap on calls waiting for a thread: a refusal past it would be RESOURCE_EXHAUSTED, which exporters drop
    health_servicer = health.HealthServicer()
    for service in SERVICES:
        health_servicer.set(service.name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(address)
    if not port:
        raise RuntimeError(f"cannot listen on {address}")
    return server, port
