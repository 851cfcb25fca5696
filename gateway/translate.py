"""Chat calls translated between OpenAI's chat completions and Anthropic's Messages API, for a routing rule's fallback
to the other provider (gateway.routing): the request one way, the answer — a whole body or an event stream — back
into the shape the client's library parses. Pure functions over dicts and bytes.

Translated: system / developer messages ↔ `system`; user and assistant turns; text, images (base64 data URLs ↔
base64 sources, http(s) URLs ↔ url sources) and PDFs (base64); tools, tool_choice, parallel_tool_calls ↔
disable_parallel_tool_use, tool calls ↔ tool_use blocks, tool messages ↔ tool_result blocks; max_tokens /
max_completion_tokens ↔ max_tokens (Anthropic requires one: DEFAULT_MAX_TOKENS when the client gave none; OpenAI
gets max_completion_tokens); temperature (capped at Anthropic's 1), top_p (to Anthropic only without a temperature:
newer Claude models take one of the two), stop ↔ stop_sequences (OpenAI takes four at most), stream; the user id ↔
metadata.user_id. Answers: id, model, text, tool calls, finish reason ↔ stop reason, usage with the prompt cache.

Dropped, never sent: what the other side has no equivalent for — n, logprobs, seed, penalties, logit_bias,
response_format, reasoning_effort, audio, prediction, service_tier, store, OpenAI metadata; Anthropic top_k, thinking,
server tools, cache_control; file ids, audio and non-PDF files; images inside tool results (OpenAI's tool messages
are text); thinking blocks in answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

OPENAI = "openai"
ANTHROPIC = "anthropic"
DEFAULT_MAX_TOKENS = 4096  # Anthropic's max_tokens when an OpenAI request names no limit
OPENAI_MAX_STOPS = 4
ANTHROPIC_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# Anthropic stop_reason → OpenAI finish_reason, and back
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                  "pause_turn": "stop", "refusal": "content_filter", "model_context_window_exceeded": "length"}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)
_EVENT_END = re.compile(rb"\r?\n\r?\n")


class TranslationError(ValueError):
    """A provider's successful answer that is not the JSON object its API documents."""


@dataclass(frozen=True)
class Translation:
    """A chat call its client made to `client` ("openai": chat completions; "anthropic": messages) that `served_by`
    answers. `include_usage`: an OpenAI stream whose client asked for the usage chunk."""

    client: str
    served_by: str
    include_usage: bool = False

    def request(self, body: dict) -> dict:
        return anthropic_request(body) if self.served_by == ANTHROPIC else openai_request(body)

    def answer(self, content: bytes, created: int) -> bytes:
        """A whole successful answer in the client's shape; `created` (Unix seconds) for OpenAI's `created`."""
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise TranslationError(f"the {self.served_by} answer is not a JSON object")
        translated = openai_completion(data, created) if self.client == OPENAI else anthropic_message(data)
        return orjson.dumps(translated)

    def stream(self, created: int) -> OpenAIChunks | AnthropicEvents:
        return OpenAIChunks(self.include_usage, created) if self.client == OPENAI else AnthropicEvents()


# OpenAI chat request → Anthropic messages request ----------------------------------------------------------------


def anthropic_request(body: dict) -> dict:
    system: list[str] = []
    messages: list[dict] = []
    for message in _dicts(body.get("messages")):
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            text = _openai_text(content)
            if text:
                system.append(text)
        elif role == "user":
            _add_turn(messages, "user", _anthropic_blocks(content))
        elif role == "assistant":
            calls = [_tool_use(call) for call in _dicts(message.get("tool_calls")) if call.get("type", "function") == "function"]
            _add_turn(messages, "assistant", _anthropic_blocks(content) + calls)
        elif role == "tool":
            _add_turn(messages, "user", [{"type": "tool_result", "tool_use_id": str(message.get("tool_call_id") or ""),
                                          "content": _openai_text(content)}])
    sent: dict = {"model": body.get("model"), "max_tokens": _max_tokens(body), "messages": messages}
    if system:
        sent["system"] = "\n\n".join(system)
    temperature, top_p = body.get("temperature"), body.get("top_p")
    if _number(temperature):
        sent["temperature"] = min(temperature, 1)
    elif _number(top_p):
        sent["top_p"] = top_p
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []
    if stops:
        sent["stop_sequences"] = stops
    if body.get("stream") is True:
        sent["stream"] = True
    tools = [_anthropic_tool(tool["function"]) for tool in _dicts(body.get("tools"))
             if tool.get("type", "function") == "function" and isinstance(tool.get("function"), dict)]
    if tools:
        sent["tools"] = tools
        choice = _anthropic_tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False and choice.get("type") != "none":
            choice["disable_parallel_tool_use"] = True
        if choice:
            sent["tool_choice"] = choice
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        sent["metadata"] = {"user_id": user}
    return sent


def _max_tokens(body: dict) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if type(value) is int and value > 0:
            return value
    return DEFAULT_MAX_TOKENS


def _add_turn(messages: list[dict], role: str, blocks: list[dict]) -> None:
    """Consecutive turns of one role become one (OpenAI's tool messages → one user turn of tool results)."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _anthropic_blocks(content: object) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in _dicts(content):
        kind = part.get("type")
        text = part.get("text") if kind == "text" else part.get("refusal") if kind == "refusal" else None
        if isinstance(text, str) and text:
            blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            image = part.get("image_url")
            source = _source(image.get("url") if isinstance(image, dict) else image, ANTHROPIC_IMAGE_TYPES)
            if source:
                blocks.append({"type": "image", "source": source})
        elif kind == "file" and isinstance(part.get("file"), dict):
            source = _source(part["file"].get("file_data"), frozenset({"application/pdf"}), urls=False)
            if source:
                blocks.append({"type": "document", "source": source})
    return blocks


def _source(url: object, media_types: frozenset[str], urls: bool = True) -> dict | None:
    if not isinstance(url, str):
        return None
    data = _DATA_URL.fullmatch(url)
    if data:
        return {"type": "base64", "media_type": data[1], "data": data[2]} if data[1] in media_types else None
    if urls and url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    return None


def _tool_use(call: dict) -> dict:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    return {"type": "tool_use", "id": str(call.get("id") or ""), "name": str(function.get("name") or ""),
            "input": _json_object(function.get("arguments"))}


def _anthropic_tool(function: dict) -> dict:
    tool = {"name": str(function.get("name") or "")}
    if isinstance(function.get("description"), str):
        tool["description"] = function["description"]
    parameters = function.get("parameters")
    tool["input_schema"] = parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
    return tool


def _anthropic_tool_choice(choice: object) -> dict:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        return {"type": "tool", "name": str(choice["function"]["name"])}
    return {}


# Anthropic messages request → OpenAI chat request ----------------------------------------------------------------


def openai_request(body: dict) -> dict:
    messages: list[dict] = []
    system = _anthropic_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in _dicts(body.get("messages")):
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(_dicts(content))
        if message.get("role") == "user":
            for result in (b for b in blocks if b.get("type") == "tool_result"):  # tool messages follow the call
                messages.append({"role": "tool", "tool_call_id": str(result.get("tool_use_id") or ""),
                                 "content": _anthropic_text(result.get("content"))})
            parts = [p for p in map(_openai_part, blocks) if p is not None]
            if len(parts) == 1 and parts[0]["type"] == "text":
                messages.append({"role": "user", "content": parts[0]["text"]})
            elif parts:
                messages.append({"role": "user", "content": parts})
        elif message.get("role") == "assistant":
            text = "".join(b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str))
            calls = [{"id": str(b.get("id") or ""), "type": "function",
                      "function": {"name": str(b.get("name") or ""), "arguments": _json_text(b.get("input"))}}
                     for b in blocks if b.get("type") == "tool_use"]
            if text or calls:
                messages.append({"role": "assistant", "content": text or None, **({"tool_calls": calls} if calls else {})})
    sent: dict = {"model": body.get("model"), "messages": messages}
    if type(body.get("max_tokens")) is int:
        sent["max_completion_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if _number(body.get(name)):
            sent[name] = body[name]
    stops = [s for s in body.get("stop_sequences") or [] if isinstance(s, str)] \
        if isinstance(body.get("stop_sequences"), list) else []
    if stops:
        sent["stop"] = stops[:OPENAI_MAX_STOPS]
    if body.get("stream") is True:
        sent["stream"] = True
        sent["stream_options"] = {"include_usage": True}  # the record's tokens; the client gets them in message_delta
    tools = [_openai_tool(tool) for tool in _dicts(body.get("tools"))
             if tool.get("type", "custom") == "custom" and isinstance(tool.get("input_schema"), dict)]
    if tools:
        sent["tools"] = tools
        choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
        kind = choice.get("type")
        if kind in ("auto", "none"):
            sent["tool_choice"] = kind
        elif kind == "any":
            sent["tool_choice"] = "required"
        elif kind == "tool" and choice.get("name"):
            sent["tool_choice"] = {"type": "function", "function": {"name": str(choice["name"])}}
        if choice.get("disable_parallel_tool_use") is True and kind != "none":
            sent["parallel_tool_calls"] = False
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str) and metadata["user_id"]:
        sent["user"] = metadata["user_id"]
    return sent


def _openai_part(block: dict) -> dict | None:
    kind, source = block.get("type"), block.get("source")
    if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
        return {"type": "text", "text": block["text"]}
    if not isinstance(source, dict):
        return None
    if kind == "image" and source.get("type") == "base64":
        return {"type": "image_url", "image_url": {"url": f"data:{source.get('media_type')};base64,{source.get('data')}"}}
    if kind == "image" and source.get("type") == "url":
        return {"type": "image_url", "image_url": {"url": str(source.get("url"))}}
    if kind == "document" and source.get("type") == "base64" and source.get("media_type") == "application/pdf":
        return {"type": "file", "file": {"filename": str(block.get("title") or "document.pdf"),
                                         "file_data": f"data:application/pdf;base64,{source.get('data')}"}}
    if kind == "document" and source.get("type") == "text" and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}
    return None


def _openai_tool(tool: dict) -> dict:
    function = {"name": str(tool.get("name") or ""), "parameters": tool["input_schema"]}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


# Answers ---------------------------------------------------------------------------------------------------------


def openai_completion(message: dict, created: int) -> dict:
    """An Anthropic message as a `chat.completion` (its id kept: feedback names the call by it)."""
    blocks = list(_dicts(message.get("content")))
    text = "".join(b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str))
    calls = [{"id": str(b.get("id") or ""), "type": "function",
              "function": {"name": str(b.get("name") or ""), "arguments": _json_text(b.get("input"))}}
             for b in blocks if b.get("type") == "tool_use"]
    answer: dict = {"role": "assistant", "content": text if text or not calls else None, "refusal": None}
    if calls:
        answer["tool_calls"] = calls
    return {"id": str(message.get("id") or ""), "object": "chat.completion", "created": created,
            "model": str(message.get("model") or ""),
            "choices": [{"index": 0, "message": answer, "logprobs": None,
                         "finish_reason": FINISH_REASONS.get(message.get("stop_reason"), "stop")}],
            "usage": openai_usage(message.get("usage"))}


def anthropic_message(completion: dict) -> dict:
    """A `chat.completion`'s first choice as an Anthropic message."""
    choices = list(_dicts(completion.get("choices")))
    choice = choices[0] if choices else {}
    answer = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    text = _openai_text(answer.get("content")) or (answer.get("refusal") if isinstance(answer.get("refusal"), str) else "")
    content: list[dict] = [{"type": "text", "text": text}] if text else []
    for call in _dicts(answer.get("tool_calls")):
        content.append(_tool_use(call))
    stop = "refusal" if answer.get("refusal") and not answer.get("content") else \
        STOP_REASONS.get(choice.get("finish_reason"), "end_turn")
    return {"id": str(completion.get("id") or ""), "type": "message", "role": "assistant",
            "model": str(completion.get("model") or ""), "content": content, "stop_reason": stop,
            "stop_sequence": None, "usage": anthropic_usage(completion.get("usage"))}


def openai_usage(usage: object) -> dict:
    """Anthropic's usage in OpenAI's terms: prompt tokens = input + cache reads + cache writes (Anthropic's input
    leaves the cache out), of which cached = the reads. 42 + 1,500 read + 300 written → prompt_tokens 1,842."""
    usage = usage if isinstance(usage, dict) else {}
    read, written = _count(usage.get("cache_read_input_tokens")), _count(usage.get("cache_creation_input_tokens"))
    prompt, completion = _count(usage.get("input_tokens")) + read + written, _count(usage.get("output_tokens"))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": read}}


def anthropic_usage(usage: object) -> dict:
    """OpenAI's usage in Anthropic's terms: input = prompt tokens − cached, cache reads = cached."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
    cached = _count(details.get("cached_tokens"))
    return {"input_tokens": max(_count(usage.get("prompt_tokens")) - cached, 0), "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached, "output_tokens": _count(usage.get("completion_tokens"))}


def error_message(content: bytes) -> str:
    """The message of a provider's error body (both providers put it at error.message); "" when there is none."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


# Streams ---------------------------------------------------------------------------------------------------------


class _Events:
    """Server-sent events out of bytes as they arrive: (event name, data) of each complete event."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        parts = _EVENT_END.split(self._pending + chunk)
        self._pending = parts.pop()
        return [event for event in map(_parse_event, parts) if event is not None]

    def rest(self) -> list[tuple[str, str]]:
        rest, self._pending = self._pending, b""
        event = _parse_event(rest)
        return [event] if event is not None else []


def _parse_event(raw: bytes) -> tuple[str, str] | None:
    name, data = "", []
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
    return (name, "\n".join(data)) if data else None


class _Stream:
    """feed(bytes) → the client's bytes for every complete event; finish() → those of a last event left unended."""

    def __init__(self) -> None:
        self._events = _Events()

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._translate(data) for _, data in self._events.feed(chunk))

    def finish(self) -> bytes:
        return b"".join(self._translate(data) for _, data in self._events.rest())

    def _translate(self, data: str) -> bytes:
        raise NotImplementedError


class OpenAIChunks(_Stream):
    """An Anthropic message stream as OpenAI `chat.completion.chunk` events, ending with `data: [DONE]` once the
    message stops (a cut stream ends without it, as OpenAI's would); the usage chunk only if the client asked."""

    def __init__(self, include_usage: bool, created: int) -> None:
        super().__init__()
        self.include_usage, self.created = include_usage, created
        self.id = self.model = ""
        self.usage: dict = {}
        self.tool_calls: dict[object, int] = {}  # Anthropic content block index → OpenAI tool call index

    def _translate(self, data: str) -> bytes:
        payload = _json(data)
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
            self.id, self.model = str(message.get("id") or ""), str(message.get("model") or "")
            self.usage = dict(message.get("usage") or {})
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            block = payload.get("content_block") if isinstance(payload.get("content_block"), dict) else {}
            if block.get("type") == "tool_use":
                number = self.tool_calls[payload.get("index")] = len(self.tool_calls)
                return self._chunk({"tool_calls": [{"index": number, "id": str(block.get("id") or ""), "type": "function",
                                                    "function": {"name": str(block.get("name") or ""), "arguments": ""}}]})
            if block.get("type") == "text" and block.get("text"):
                return self._chunk({"content": str(block["text"])})
            return b""
        if kind == "content_block_delta":
            delta = payload.get("delta") if isinstance(payload.get("delta"), dict) else {}
            if delta.get("type") == "text_delta":
                return self._chunk({"content": str(delta.get("text") or "")})
            if delta.get("type") == "input_json_delta" and payload.get("index") in self.tool_calls:
                number = self.tool_calls[payload.get("index")]
                return self._chunk({"tool_calls": [{"index": number,
                                                    "function": {"arguments": str(delta.get("partial_json") or "")}}]})
            return b""
        if kind == "message_delta":
            usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
            self.usage.update({name: value for name, value in usage.items() if value is not None})  # cumulative
            reason = (payload.get("delta") or {}).get("stop_reason") if isinstance(payload.get("delta"), dict) else None
            return self._chunk({}, FINISH_REASONS.get(reason, "stop")) if reason else b""
        if kind == "message_stop":
            last = b""
            if self.include_usage:
                last = _data({**self._head(), "choices": [], "usage": openai_usage(self.usage)})
            return last + b"data: [DONE]\n\n"
        if kind == "error":
            error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
            return _data({"error": {"message": str(error.get("message") or "the provider's stream failed"),
                                    "type": str(error.get("type") or "api_error"), "param": None, "code": None}})
        return b""  # ping; thinking and signature deltas

    def _head(self) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        chunk = {**self._head(), "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return _data({**chunk, "usage": None} if self.include_usage else chunk)


class AnthropicEvents(_Stream):
    """An OpenAI chat stream (asked with include_usage) as Anthropic's events: message_start, a content block per
    text run or tool call, then — at `[DONE]`, once the usage chunk is in — message_delta with the stop reason and
    the usage, and message_stop."""

    def __init__(self) -> None:
        super().__init__()
        self.started = self.done = False
        self.block: tuple[str, object] | None = None  # the open content block: ("text", None) or ("tool", index)
        self.index = -1
        self.stop_reason = ""
        self.usage: dict = {}

    def _translate(self, data: str) -> bytes:
        if data.strip() == "[DONE]":
            return self._end()
        payload = _json(data)
        if isinstance(payload.get("error"), dict) and not payload.get("choices"):
            message = str(payload["error"].get("message") or "the provider's stream failed")
            return _event("error", {"type": "error", "error": {"type": "api_error", "message": message}})
        out = [] if self.started or not payload else [self._start(payload)]
        if isinstance(payload.get("usage"), dict):
            self.usage = payload["usage"]
        for choice in _dicts(payload.get("choices"))[:1]:
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            text = delta.get("content") or delta.get("refusal")
            if isinstance(text, str) and text:
                if self.block != ("text", None):
                    out.append(self._open(("text", None), {"type": "text", "text": ""}))
                out.append(self._delta({"type": "text_delta", "text": text}))
            for call in _dicts(delta.get("tool_calls")):
                function = call.get("function") if isinstance(call.get("function"), dict) else {}
                key = ("tool", call.get("index", 0))
                if self.block != key:
                    out.append(self._open(key, {"type": "tool_use", "id": str(call.get("id") or ""),
                                                "name": str(function.get("name") or ""), "input": {}}))
                if function.get("arguments"):
                    out.append(self._delta({"type": "input_json_delta", "partial_json": str(function["arguments"])}))
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return b"".join(out)

    def _start(self, chunk: dict) -> bytes:
        self.started = True
        message = {"id": str(chunk.get("id") or ""), "type": "message", "role": "assistant",
                   "model": str(chunk.get("model") or ""), "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0}}  # OpenAI reports usage at the end only
        return _event("message_start", {"type": "message_start", "message": message})

    def _open(self, key: tuple[str, object], block: dict) -> bytes:
        closed = self._close()
        self.block, self.index = key, self.index + 1
        return closed + _event("content_block_start", {"type": "content_block_start", "index": self.index,
                                                       "content_block": block})

    def _close(self) -> bytes:
        if self.block is None:
            return b""
        self.block = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def _delta(self, delta: dict) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta})

    def _end(self) -> bytes:
        if self.done:
            return b""
        self.done = True
        out = [] if self.started else [self._start({})]
        out.append(self._close())
        out.append(_event("message_delta", {"type": "message_delta",
                                            "delta": {"stop_reason": self.stop_reason or "end_turn", "stop_sequence": None},
                                            "usage": anthropic_usage(self.usage)}))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)


# Plain data ------------------------------------------------------------------------------------------------------


def _dicts(value: object) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _number(value: object) -> bool:
    return type(value) in (int, float)


def _count(value: object) -> int:
    return value if type(value) is int and value >= 0 else 0


def _openai_text(content: object) -> str:
    """The text of an OpenAI message's content: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    return "".join(p["text"] for p in _dicts(content) if p.get("type") == "text" and isinstance(p.get("text"), str))


def _anthropic_text(content: object) -> str:
    """The text of Anthropic content (a system prompt, a tool result): a string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    return "\n\n".join(b["text"] for b in _dicts(content) if b.get("type") == "text" and isinstance(b.get("text"), str))


def _json_object(arguments: object) -> dict:
    """A tool call's arguments (OpenAI: a JSON string) as Anthropic's input object; {} when they are not one."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str | bytes) else None
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {}


def _json_text(value: object) -> str:
    return orjson.dumps(value if isinstance(value, dict) else {}).decode()


def _json(data: str) -> dict:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _data(payload: dict) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _event(name: str, payload: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
