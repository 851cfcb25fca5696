"""Loopback fakes for the SDK tests and benchmark: an OpenAI/Anthropic-compatible model server
and an OTLP/HTTP sink that decodes the exported spans."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
ANSWER_PARTS = ["Hello", " from the", " fake model."]
ANSWER = "".join(ANSWER_PARTS)
SLOW_SECONDS = 1.0

OPENAI_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 85,
    "total_tokens": 1285,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 64,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
RESPONSES_USAGE = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 1024},
    "output_tokens": 85,
    "output_tokens_details": {"reasoning_tokens": 64},
    "total_tokens": 1285,
}
ANTHROPIC_USAGE = {
    "input_tokens": 42,
    "cache_read_input_tokens": 1500,
    "cache_creation_input_tokens": 300,
    "output_tokens": 77,
}

STREAM_OPTIONS_REFUSAL = "Unrecognized request argument supplied: stream_options"
OPENAI_ERRORS = {
    429: {
        "message": "Rate limit reached for gpt-4o-mini on tokens per min.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    },
    500: {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    },
}
ANTHROPIC_ERRORS = {
    429: {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your rate limit."},
    500: {"type": "api_error", "message": "Internal server error"},
}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out and hang up are expected; keep the test output clean."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_sse(self, events: list[tuple[str | None, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event, data in events:
            text = f"event: {event}\n" if event else ""
            text += "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n"
            raw = text.encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class _ProviderHandler(_Handler):
    server: FakeProviderServer

    def do_POST(self) -> None:
        body = json.loads(self._read_body() or b"{}")
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        anthropic = self.path.endswith("/messages")
        model = str(body.get("model", ""))
        if model.startswith("fail-"):
            status = int(model.removeprefix("fail-"))
            if anthropic:
                payload = {"type": "error", "error": ANTHROPIC_ERRORS[status]}
                self._send_json(status, payload, {"request-id": "req_fake_error"})
            else:
                self._send_json(status, {"error": OPENAI_ERRORS[status]}, {"x-request-id": "req_fake_error"})
            return
        if model == "slow":
            time.sleep(SLOW_SECONDS)
        if model.startswith("no-stream-options") and "stream_options" in body:
            refusal = {"message": STREAM_OPTIONS_REFUSAL, "type": "invalid_request_error", "param": None, "code": None}
            self._send_json(400, {"error": refusal})
            return
        if self.path.endswith("/chat/completions"):
            self._chat(body)
        elif self.path.endswith("/responses"):
            self._responses(body)
        elif self.path.endswith("/embeddings"):
            self._embeddings(body)
        elif anthropic:
            self._messages(body)
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def _chat(self, body: dict[str, Any]) -> None:
        if not body.get("stream"):
            self._send_json(200, chat_completion(_first_tool_name(body, anthropic=False)))
            return

        # As OpenAI does: with include_usage every chunk has "usage": null, and one more chunk
        # with no choices carries the usage.
        include_usage = (body.get("stream_options") or {}).get("include_usage")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            data = {
                "id": "chatcmpl-fake1",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": OPENAI_MODEL,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            return {**data, "usage": None} if include_usage else data

        events: list[tuple[str | None, Any]] = [(None, chunk({"role": "assistant", "content": ""}))]
        events += [(None, chunk({"content": part})) for part in ANSWER_PARTS]
        events.append((None, chunk({}, "stop")))
        if include_usage:
            events.append((None, {**chunk({}), "choices": [], "usage": OPENAI_USAGE}))
        events.append((None, "[DONE]"))
        self._send_sse(events)

    def _responses(self, body: dict[str, Any]) -> None:
        response = {
            "id": "resp_fake1",
            "object": "response",
            "created_at": 1_700_000_000,
            "status": "completed",
            "model": OPENAI_MODEL,
            "output": [
                {
                    "type": "message",
                    "id": "msg_fake1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": ANSWER, "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": RESPONSES_USAGE,
        }
        if not body.get("stream"):
            self._send_json(200, response)
            return
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        events: list[tuple[str | None, Any]] = [
            ("response.created", {"type": "response.created", "sequence_number": 0, "response": started})
        ]
        for number, part in enumerate(ANSWER_PARTS, start=1):
            events.append(
                (
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": number,
                        "item_id": "msg_fake1",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": part,
                        "logprobs": [],
                    },
                )
            )
        events.append(("response.completed", {"type": "response.completed", "sequence_number": 9, "response": response}))
        self._send_sse(events)

    def _embeddings(self, body: dict[str, Any]) -> None:
        vector = [0.25, -0.5, 0.75]
        if body.get("encoding_format") == "base64":
            embedding: Any = base64.b64encode(struct.pack("<3f", *vector)).decode()
        else:
            embedding = vector
        self._send_json(
            200,
            {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": embedding}],
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": 18, "total_tokens": 18},
            },
        )

    def _messages(self, body: dict[str, Any]) -> None:
        tool_name = _first_tool_name(body, anthropic=True)
        if tool_name:
            content: list[dict[str, Any]] = [
                {"type": "tool_use", "id": "toolu_fake1", "name": tool_name, "input": {"city": "Paris"}}
            ]
        else:
            content = [{"type": "text", "text": ANSWER}]
        message = {
            "id": "msg_fake1",
            "type": "message",
            "role": "assistant",
            "model": ANTHROPIC_MODEL,
            "content": content,
            "stop_reason": "tool_use" if tool_name else "end_turn",
            "stop_sequence": None,
            "usage": ANTHROPIC_USAGE,
        }
        if not body.get("stream"):
            self._send_json(200, message, {"request-id": "req_fake1"})
            return
        start_usage = {**ANTHROPIC_USAGE, "output_tokens": 1}
        events: list[tuple[str | None, Any]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {**message, "content": [], "stop_reason": None, "usage": start_usage},
                },
            ),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
        ]
        for part in ANSWER_PARTS:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}},
                )
            )
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 77},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._send_sse(events)


def _first_tool_name(body: dict[str, Any], *, anthropic: bool) -> str | None:
    tools = body.get("tools") or []
    if not tools:
        return None
    first = tools[0]
    if anthropic:
        return str(first.get("name"))
    return str((first.get("function") or {}).get("name") or first.get("name"))


def chat_completion(tool_name: str | None = None) -> dict[str, Any]:
    """The fixed chat.completion body: a text answer, or a call of `tool_name`."""
    if tool_name:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_fake1", "type": "function", "function": {"name": tool_name, "arguments": '{"city": "Paris"}'}}
            ],
        }
    else:
        message = {"role": "assistant", "content": ANSWER, "refusal": None}
    return {
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": OPENAI_MODEL,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if tool_name else "stop"}],
        "usage": OPENAI_USAGE,
        "system_fingerprint": "fp_fake",
    }


class FakeProviderServer(_QuietServer):
    """OpenAI (`{url}/v1`) and Anthropic (`{url}`) compatible server with fixed usage numbers.

    Model names steer it: `fail-429` / `fail-500` answer with the provider's error body,
    `slow` waits SLOW_SECONDS, `no-stream-options…` refuses any request with stream_options
    (400, as some OpenAI-compatible servers do); a request with tools gets a tool call back."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProviderHandler)
        self.requests: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _SinkHandler(_Handler):
    server: _SinkServer

    def setup(self) -> None:
        super().setup()
        self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        self.server.open_connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:
        body = self._read_body()
        sink = self.server.sink
        with sink.lock:
            sink.posts.append(dict(self.headers))
            failure = sink.failures.pop(0) if sink.failures else None
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            self._send(status, b"", "text/plain", headers)
            return
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = list(_flatten(request))
        with sink.lock:
            sink.spans.extend(spans)
        self._send(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")


class _SinkServer(_QuietServer):
    sink: OtlpSink
    open_connections: set[socket.socket]


class OtlpSink:
    """OTLP/HTTP receiver on loopback that decodes ExportTraceServiceRequest into plain dicts.

    It can be stopped and started again on the same port, and told to fail the next posts."""

    def __init__(self, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.spans: list[dict[str, Any]] = []
        self.posts: list[dict[str, str]] = []
        self.failures: list[tuple[int, int | None]] = []
        self.port = port
        self._server: _SinkServer | None = None
        self.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = _SinkServer(("127.0.0.1", self.port), _SinkHandler)
        server.sink = self
        server.open_connections = set()
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        """Stop listening and drop every open (keep-alive) connection, like a restarted server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            for connection in list(self._server.open_connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._server = None

    def fail_next(self, count: int, status: int = 503, retry_after: int | None = None) -> None:
        with self.lock:
            self.failures.extend([(status, retry_after)] * count)

    def model_spans(self) -> list[dict[str, Any]]:
        with self.lock:
            return [span for span in self.spans if span["scope"] == "observatory_sdk"]

    def wait_for_spans(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.model_spans()
            if len(spans) >= count:
                return spans
            time.sleep(0.02)
        return self.model_spans()


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in any_value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


def _flatten(request: ExportTraceServiceRequest) -> Any:
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "name": span.name,
                    "kind": span.kind,
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "start": span.start_time_unix_nano,
                    "end": span.end_time_unix_nano,
                    "status_code": span.status.code,
                    "status_message": span.status.message,
                    "scope": scope_spans.scope.name,
                    "scope_version": scope_spans.scope.version,
                    "resource": resource,
                    "attributes": {kv.key: _value(kv.value) for kv in span.attributes},
                }
