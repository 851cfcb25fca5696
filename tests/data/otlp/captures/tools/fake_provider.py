#!/usr/bin/env python3
"""Fake OpenAI + Anthropic HTTP API for the captures (stdlib only, 127.0.0.1 only).

Every capture points its client at  http://127.0.0.1:PORT/s/<profile>  (OpenAI clients add /v1 to it
themselves or are given .../s/<profile>/v1). The profile fixes the usage the fake reports, so every
scenario has its own known ground truth, and can make the request fail whatever the model:

  profile   OpenAI usage (chat / responses)                         Anthropic usage
  p         1200 in (0 cached), 85 out (0 reasoning)                42 in + 1500 cache read + 300 cache write, 77 out
  c         2006 in (1792 cached), 93 out (0 reasoning)             same as p
  r         1200 in (1024 cached), 85 out (64 reasoning)            same as p
  e429      HTTP 429 (rate limit), no usage                         HTTP 429 rate_limit_error
  e500      HTTP 500 (server error), no usage                       HTTP 500 api_error

Response models: the request alias comes back as its dated snapshot (gpt-4o-mini -> gpt-4o-mini-2024-07-18,
o4-mini -> o4-mini-2025-04-16, claude-sonnet-4-5 -> claude-sonnet-4-5-20250929), like the real APIs.

Streams: OpenAI chat sends a usage chunk only when stream_options.include_usage is true (as the real API);
Anthropic's message_start carries output_tokens=1 and message_delta the final cumulative usage.
FAKE_LOG=file appends one JSON line per request (path, profile, model, stream flags).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENAI_USAGE = {
    "p": (1200, 0, 85, 0),
    "c": (2006, 1792, 93, 0),
    "r": (1200, 1024, 85, 64),
}
ANTHROPIC_USAGE = {"input_tokens": 42, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 1500,
                   "output_tokens": 77}
SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "o4-mini": "o4-mini-2025-04-16",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}
TEXT = "The capital of France is Paris."
DELAY = 0.05
LOG = open(os.environ.get("FAKE_LOG", os.devnull), "a", buffering=1)


def openai_usage(profile: str) -> dict:
    prompt, cached, completion, reasoning = OPENAI_USAGE.get(profile, OPENAI_USAGE["p"])
    return {
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def responses_usage(profile: str) -> dict:
    prompt, cached, completion, reasoning = OPENAI_USAGE.get(profile, OPENAI_USAGE["p"])
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": prompt + completion}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # -------------------------------------------------------------- plumbing
    def send_json(self, code: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:20])
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:20])
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:20])
        self.end_headers()
        self.close_connection = True

    def sse(self, payload, event: str | None = None) -> None:
        text = (f"event: {event}\n" if event else "") + "data: "
        text += payload if isinstance(payload, str) else json.dumps(payload)
        self.wfile.write((text + "\n\n").encode())
        self.wfile.flush()

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            return self.send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in SNAPSHOTS]})
        return self.send_json(200, {"ok": True})

    def do_POST(self):
        size = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(size) if size else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        path = self.path.split("?")[0]
        parts = [p for p in path.split("/") if p]
        profile = parts[1] if len(parts) > 1 and parts[0] == "s" else "p"
        anthropic = path.endswith("/messages")
        LOG.write(json.dumps({"t": time.time(), "path": path, "profile": profile, "model": body.get("model"),
                              "stream": body.get("stream"), "stream_options": body.get("stream_options")}) + "\n")
        if profile in ("e429", "e500"):
            return self.error(int(profile[1:]), anthropic)
        if path.endswith("/chat/completions"):
            return self.chat(body, profile)
        if path.endswith("/responses"):
            return self.responses_api(body, profile)
        if path.endswith("/embeddings"):
            n = 9 * (len(body["input"]) if isinstance(body.get("input"), list) else 1)
            return self.send_json(200, {"object": "list", "model": body.get("model"), "usage": {"prompt_tokens": n, "total_tokens": n},
                                        "data": [{"object": "embedding", "index": 0, "embedding": [0.1] * 8}]})
        if anthropic:
            return self.messages(body)
        return self.send_json(404, {"error": {"message": f"unknown path {path}", "type": "invalid_request_error"}})

    def error(self, code: int, anthropic: bool) -> None:
        time.sleep(DELAY)
        if anthropic:
            kind = "rate_limit_error" if code == 429 else "api_error"
            return self.send_json(code, {"type": "error", "error": {"type": kind, "message": f"fake {code}"}},
                                  {"retry-after": "1"} if code == 429 else None)
        if code == 429:
            return self.send_json(429, {"error": {"message": "Rate limit reached (fake)", "type": "requests", "param": None,
                                                  "code": "rate_limit_exceeded"}}, {"retry-after": "1"})
        return self.send_json(500, {"error": {"message": "Server error (fake)", "type": "server_error", "param": None, "code": None}})

    # -------------------------------------------------------------- OpenAI
    def chat(self, body: dict, profile: str) -> None:
        model = body.get("model") or "gpt-4o-mini"
        snapshot = SNAPSHOTS.get(model, model)
        cid = "chatcmpl-" + uuid.uuid4().hex[:20]
        time.sleep(DELAY)
        if not body.get("stream"):
            return self.send_json(200, {
                "id": cid, "object": "chat.completion", "created": int(time.time()), "model": snapshot,
                "system_fingerprint": "fp_fake", "service_tier": "default",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT, "refusal": None, "annotations": []},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": openai_usage(profile),
            })
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.start_sse()
        base = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": snapshot,
                "system_fingerprint": "fp_fake", "service_tier": "default"}

        def chunk(delta: dict, finish: str | None = None) -> dict:
            out = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
            if include_usage:
                out["usage"] = None
            return out

        self.sse(chunk({"role": "assistant", "content": "", "refusal": None}))
        for word in TEXT.split(" "):
            time.sleep(0.01)
            self.sse(chunk({"content": word + " "}))
        self.sse(chunk({}, "stop"))
        if include_usage:
            self.sse(dict(base, choices=[], usage=openai_usage(profile)))
        self.sse("[DONE]")

    def responses_api(self, body: dict, profile: str) -> None:
        model = body.get("model") or "gpt-4o-mini"
        message = {"id": "msg_" + uuid.uuid4().hex[:20], "type": "message", "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": TEXT, "annotations": []}]}
        response = {"id": "resp_" + uuid.uuid4().hex[:20], "object": "response", "created_at": int(time.time()),
                    "status": "completed", "error": None, "incomplete_details": None, "model": SNAPSHOTS.get(model, model),
                    "output": [message], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
                    "usage": responses_usage(profile), "metadata": {}, "text": {"format": {"type": "text"}}}
        time.sleep(DELAY)
        return self.send_json(200, response)

    # -------------------------------------------------------------- Anthropic
    def messages(self, body: dict) -> None:
        model = body.get("model") or "claude-sonnet-4-5"
        snapshot = SNAPSHOTS.get(model, model)
        mid = "msg_" + uuid.uuid4().hex[:20]
        time.sleep(DELAY)
        if not body.get("stream"):
            return self.send_json(200, {"id": mid, "type": "message", "role": "assistant", "model": snapshot,
                                        "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn",
                                        "stop_sequence": None, "usage": dict(ANTHROPIC_USAGE, service_tier="standard")})
        self.start_sse()
        start = dict(ANTHROPIC_USAGE, output_tokens=1)
        self.sse({"type": "message_start", "message": {"id": mid, "type": "message", "role": "assistant", "model": snapshot,
                                                       "content": [], "stop_reason": None, "stop_sequence": None,
                                                       "usage": start}}, "message_start")
        self.sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start")
        for word in TEXT.split(" "):
            time.sleep(0.01)
            self.sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word + " "}},
                     "content_block_delta")
        self.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        self.sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                  "usage": dict(ANTHROPIC_USAGE)}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18090
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"fake provider on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()
