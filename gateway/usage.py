"""Token usage, model, response id and finish reason read from provider answers: whole JSON bodies and server-sent
event streams. Pure functions over bytes and dicts; token semantics as the call record's (input includes cached
reads and cache writes, output includes reasoning), so Anthropic's input (which excludes the cache) is summed here.

`StreamWatcher` sees a stream chunk by chunk as it is passed to the client: it forwards bytes as they came, and
reads only the few events that carry what a call record needs. For an OpenAI chat stream whose usage the gateway
asked for itself, it holds back the one extra usage chunk the client did not ask for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from gateway.routes import ANTHROPIC, Route
from ingest.mappers.normalize.errors import error_from_http, error_kind
from ingest.mappers.normalize.finish_reasons import finish_reason


@dataclass
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    reported: bool = False
    response_model: str = ""
    response_id: str = ""
    finish_reason: str = ""


def _int(value: object) -> int:
    return value if type(value) is int and value >= 0 else 0


def read_openai_usage(usage: dict, into: Usage) -> None:
    """Chat (`prompt_tokens`…) and Responses (`input_tokens`…) usage; embeddings report prompt tokens only."""
    if "prompt_tokens" in usage:
        into.input_tokens = _int(usage.get("prompt_tokens"))
        into.output_tokens = _int(usage.get("completion_tokens"))
        input_details = usage.get("prompt_tokens_details") or {}
        output_details = usage.get("completion_tokens_details") or {}
    else:
        into.input_tokens = _int(usage.get("input_tokens"))
        into.output_tokens = _int(usage.get("output_tokens"))
        input_details = usage.get("input_tokens_details") or {}
        output_details = usage.get("output_tokens_details") or {}
    into.cached_input_tokens = _int(input_details.get("cached_tokens")) if isinstance(input_details, dict) else 0
    into.reasoning_tokens = _int(output_details.get("reasoning_tokens")) if isinstance(output_details, dict) else 0
    into.reported = True


def read_anthropic_usage(usage: dict, into: Usage) -> None:
    """Anthropic's `input_tokens` leaves out cache reads and writes; a later (cumulative) report replaces an earlier."""
    if "input_tokens" in usage or "cache_read_input_tokens" in usage:
        cached = _int(usage.get("cache_read_input_tokens"))
        written = _int(usage.get("cache_creation_input_tokens"))
        into.input_tokens = _int(usage.get("input_tokens")) + cached + written
        into.cached_input_tokens, into.cache_write_tokens = cached, written
    if "output_tokens" in usage:
        into.output_tokens = _int(usage.get("output_tokens"))
    into.reported = True


def usage_from_body(route: Route, body: bytes) -> Usage:
    """What a whole (non-streamed) successful answer says; an unreadable body says nothing (usage not reported)."""
    found = Usage()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return found
    if not isinstance(data, dict):
        return found
    _read_object(route, data, found)
    return found


def _read_object(route: Route, data: dict, found: Usage) -> None:
    found.response_model = str(data.get("model") or found.response_model)[:512]
    found.response_id = str(data.get("id") or found.response_id)[:512]
    usage = data.get("usage")
    if isinstance(usage, dict):
        (read_anthropic_usage if route.provider == ANTHROPIC else read_openai_usage)(usage, found)
    reason = data.get("stop_reason") if route.provider == ANTHROPIC else _openai_finish(data)
    if reason:
        found.finish_reason = finish_reason(reason)


def _openai_finish(data: dict) -> str:
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0].get("finish_reason") or ""
    status = data.get("status")  # Responses: completed / incomplete / failed
    return status if isinstance(status, str) and status != "in_progress" else ""


def error_type_of(status: int, body: bytes) -> str:
    """The normalized error type of a provider's refusal: from its error body's type or code, else its status."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        for raw in (error.get("code"), error.get("type")):
            kind = error_kind(raw) if isinstance(raw, str) else ""
            if kind:
                return kind
    return error_from_http(status) or "other"


_EVENT_END = re.compile(rb"\r?\n\r?\n")
_USAGE_OBJECT = re.compile(rb'"usage":\s*\{')
_DONE = re.compile(rb"^data:\s*\[DONE\]\s*$", re.MULTILINE)


class StreamWatcher:
    """Reads a provider's event stream as it passes; `feed` returns the bytes to send on to the client.

    Only events that can carry what the record needs are parsed (the first, those with usage or a finish reason,
    Anthropic's message_start/message_delta, Responses' created/completed); content deltas pass untouched.
    """

    def __init__(self, route: Route, hide_usage_chunk: bool = False) -> None:
        self.route = route
        self.usage = Usage()
        self.hide_usage_chunk = hide_usage_chunk  # OpenAI chat: usage was asked for by the gateway, not the client
        self._pending = b""
        self.events = 0
        # The provider's closing event went by (`[DONE]`, Anthropic's message_stop, a Responses stream's last
        # response.* event): the client has the whole answer even if it hangs up before the connection ends.
        self.complete = False

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        last = 0
        kept: list[bytes] = []
        for match in _EVENT_END.finditer(data):
            event = data[last:match.end()]
            last = match.end()
            if self._read_event(event) or not self.hide_usage_chunk:
                kept.append(event)
        self._pending = data[last:]
        if not self.hide_usage_chunk:
            return chunk  # the bytes exactly as they came; complete events were read on the side
        return b"".join(kept)

    def finish(self) -> bytes:
        """Whatever trailing bytes did not end an event (passed on as they are)."""
        rest, self._pending = self._pending, b""
        if rest.strip():
            self._read_event(rest)
        return rest if self.hide_usage_chunk else b""

    def _read_event(self, event: bytes) -> bool:
        """Read one event; False when it is the usage-only chunk to hold back from the client."""
        self.events += 1
        route = self.route
        if route.provider == ANTHROPIC:
            if b"message_start" in event or b"message_delta" in event:
                self._anthropic(_data_of(event))
            elif b"message_stop" in event:  # parsed: a text delta may say message_stop too
                payload = _data_of(event)
                self.complete = self.complete or (isinstance(payload, dict) and payload.get("type") == "message_stop")
            return True
        if route.operation == "responses":
            closing = b'"response.completed"' in event or b'"response.incomplete"' in event \
                or b'"response.failed"' in event
            self.complete = self.complete or closing
            if self.events == 1 or closing:
                payload = _data_of(event)
                response = payload.get("response") if isinstance(payload, dict) else None
                if isinstance(response, dict):
                    _read_object(route, response, self.usage)
            return True
        if _DONE.search(event):
            self.complete = True
            return True
        has_usage = _USAGE_OBJECT.search(event) is not None
        if self.events == 1 or has_usage or b'"finish_reason":"' in event or b'"finish_reason": "' in event:
            payload = _data_of(event)
            if isinstance(payload, dict):
                _read_object(route, payload, self.usage)
                if has_usage and self.hide_usage_chunk and not payload.get("choices"):
                    return False
        return True

    def _anthropic(self, payload: object) -> None:
        if not isinstance(payload, dict):
            return
        if payload.get("type") == "message_start" and isinstance(payload.get("message"), dict):
            _read_object(self.route, payload["message"], self.usage)
        elif payload.get("type") == "message_delta":
            usage = payload.get("usage")
            if isinstance(usage, dict):
                read_anthropic_usage(usage, self.usage)
            delta = payload.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self.usage.finish_reason = finish_reason(delta["stop_reason"])


def _data_of(event: bytes) -> object:
    """The JSON of an event's `data:` lines (None for `[DONE]` or anything unreadable)."""
    lines = [line[5:].strip() for line in event.splitlines() if line.startswith(b"data:")]
    if not lines:
        return None
    try:
        return orjson.loads(b"\n".join(lines))
    except orjson.JSONDecodeError:
        return None
