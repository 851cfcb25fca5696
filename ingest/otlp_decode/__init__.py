"""OTLP/HTTP export bodies (protobuf or OTLP/JSON) decoded into flat views.

Traces become `SpanView`s, logs `LogRecordView`s and metrics `MetricPointView`s; hostile input is bounded.
The content type picks the decoder: `protobuf` (the fast path) or `json`; `limits` holds what a body may
carry and what makes a span, record or point invalid, for both.
"""

from __future__ import annotations

from ingest.otlp_decode import json as otlp_json
from ingest.otlp_decode import protobuf
from ingest.otlp_decode.decoded import DecodedLogs, DecodedMetrics, DecodedTraces, LogRecordView, MetricPointView
from ingest.otlp_decode.limits import OtlpDecodeError

__all__ = [
    "DecodedLogs",
    "DecodedMetrics",
    "DecodedTraces",
    "LogRecordView",
    "MetricPointView",
    "OtlpDecodeError",
    "decode_logs",
    "decode_metrics",
    "decode_traces",
]


def decode_traces(body: bytes, content_type: str) -> DecodedTraces:
    """Decode an (already decompressed) OTLP trace export; invalid spans are counted, not raised."""
    if _body_format(content_type) == "pb":
        return protobuf.decode_traces(body)
    return otlp_json.decode_traces(body)


def decode_logs(body: bytes, content_type: str) -> DecodedLogs:
    """Decode an (already decompressed) OTLP logs export."""
    if _body_format(content_type) == "pb":
        return protobuf.decode_logs(body)
    return otlp_json.decode_logs(body)


def decode_metrics(body: bytes, content_type: str) -> DecodedMetrics:
    """Decode an (already decompressed) OTLP metrics export into flat data points."""
    if _body_format(content_type) == "pb":
        return protobuf.decode_metrics(body)
    return otlp_json.decode_metrics(body)


def _body_format(content_type: str) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("application/x-protobuf", "application/protobuf"):
        return "pb"
    if media == "application/json":
        return "json"
    raise OtlpDecodeError(
        f"unsupported content type {content_type!r}: OTLP/HTTP accepts application/x-protobuf or application/json"
    )
