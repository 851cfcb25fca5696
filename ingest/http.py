"""OTLP/HTTP request and response handling: body limits, gzip, content types, Status and partial success.

Per the OTLP/HTTP spec the response uses the request's encoding (protobuf or JSON); an error is a
google.rpc.Status with a message; a partly rejected export is a 200 with `partial_success`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from google.rpc import status_pb2

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# The gRPC status code (google.rpc.Code) answering each HTTP status, as the OTLP specification pairs them; the
# OTLP/HTTP Status body carries it, and OTLP/gRPC answers with it.
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14}


class RequestRejected(Exception):
    """The whole request is refused with `status` and a message a person can act on."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class OtlpRequest:
    body: bytes
    content_type: str  # PROTOBUF or JSON


def response_content_type(request: HttpRequest) -> str:
    return JSON if request.content_type == JSON else PROTOBUF


def read_otlp_body(request: HttpRequest) -> OtlpRequest:
    content_type = (request.content_type or "").lower()
    if content_type not in (PROTOBUF, JSON):
        raise RequestRejected(
            415, f"unsupported Content-Type {content_type or '(none)'!r}: send application/x-protobuf or application/json"
        )
    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise RequestRejected(400, "Content-Length is not a number") from None
    if declared > limit:
        raise RequestRejected(413, f"request body of {declared} bytes is over the {limit}-byte limit; send smaller batches")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise RequestRejected(413, f"request body is over the {limit}-byte limit; send smaller batches")
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        body = _decompress(body, encoding)
    elif encoding not in ("", "identity"):
        raise RequestRejected(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    if not body:
        raise RequestRejected(400, "empty request body: expected an OTLP export request")
    return OtlpRequest(body=body, content_type=content_type)


def _decompress(body: bytes, encoding: str) -> bytes:
    limit = settings.INGEST_MAX_DECOMPRESSED_BYTES
    wbits = 31 if encoding != "deflate" else 15
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(body, limit + 1)
    except zlib.error:
        raise RequestRejected(400, f"body is not valid {encoding} data") from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise RequestRejected(413, f"decompressed body is over the {limit}-byte limit; send smaller batches")
    if not decompressor.eof:
        raise RequestRejected(400, f"body is truncated {encoding} data")
    return out


def status_response(content_type: str, status: int, message: str, retry_after: int | None = None) -> HttpResponse:
    code = GRPC_CODES.get(status, 2)
    if content_type == JSON:
        payload = orjson.dumps({"code": code, "message": message})
    else:
        payload = status_pb2.Status(code=code, message=message).SerializeToString()
    response = HttpResponse(payload, status=status, content_type=content_type)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


class AnswerFirstResponse(HttpResponse):
    """A response that runs `after_answer` once it has been sent: the WSGI server (and Django's test client)
    calls `close` when the response is done, before the request's database connection is tidied up."""

    def __init__(self, *args, after_answer: Callable[[], None], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.after_answer: Callable[[], None] | None = after_answer

    def close(self) -> None:
        after, self.after_answer = self.after_answer, None
        try:
            if after is not None:
                after()
        finally:
            super().close()


def export_response(
    content_type: str, response_message, rejected_field: str, rejected: int, message: str,
    after_answer: Callable[[], None] | None = None,
) -> HttpResponse:
    """A 200 with the signal's Export*ServiceResponse; partial_success only when something was rejected.
    `after_answer`: work to do once the response is sent (AnswerFirstResponse)."""
    if rejected or message:
        partial = response_message.partial_success
        setattr(partial, rejected_field, rejected)
        partial.error_message = message
    if content_type == JSON:
        body = {}
        if rejected or message:
            camel = "".join(w.capitalize() if i else w for i, w in enumerate(rejected_field.split("_")))
            body["partialSuccess"] = {camel: str(rejected), "errorMessage": message}
        payload, media = orjson.dumps(body), JSON
    else:
        payload, media = response_message.SerializeToString(), PROTOBUF
    if after_answer is None:
        return HttpResponse(payload, content_type=media)
    return AnswerFirstResponse(payload, content_type=media, after_answer=after_answer)
