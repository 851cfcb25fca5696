"""OpenAI integration: chat.completions.create, responses.create and embeddings.create on
`OpenAI` / `AsyncOpenAI` clients (and the stream helpers that call them), streaming included.

Why one module of ~420 lines: it is the whole of what the SDK knows about one provider's client (its request
options, response and chunk shapes, usage on streams), as sentry-python keeps one module per integration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai
from openai.resources.chat.completions import AsyncCompletions, Completions
from openai.resources.embeddings import AsyncEmbeddings, Embeddings
from openai.resources.responses import AsyncResponses, Responses

from ..calls import STAR, Operation, Summary, Usage
from ..content import message, other_part, text_part, tool_call_part, tool_result_part
from ..fingerprints import omit
from ..patching import ClassPatches, StreamingOperation, wrap_copies, wrap_instance_method, wrap_method

_SENTINELS: tuple[type, ...] = (openai.NotGiven, openai.Omit)
omit(*_SENTINELS)
_STREAMS: tuple[type, ...] = (openai.Stream, openai.AsyncStream)
_SYSTEM_ROLES = ("system", "developer")
_TEXT_BLOCKS = ("text", "input_text", "output_text")
# Set by with_raw_response / with_streaming_response: the app reads the raw bytes of those.
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
# (server address, port, request model) that answered a 400/422 about stream_options.
_REFUSING_STREAM_OPTIONS: set[tuple[Any, Any, Any]] = set()
_MAX_REFUSING = 256


def _get(value: Any, name: str) -> Any:
    """A field of a request dict (TypedDict) or of a response / pydantic object."""
    if type(value) is dict or isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _sampling(request: Mapping[str, Any], max_tokens: Any) -> dict[str, Any]:
    attributes = {}
    if isinstance(max_tokens, int):
        attributes["gen_ai.request.max_tokens"] = max_tokens
    for field in ("temperature", "top_p"):
        value = request.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[f"gen_ai.request.{field}"] = float(value)
    return attributes


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    if not isinstance(content, list | tuple):  # a one-shot iterable is the client's to read
        return [other_part("unknown")]
    parts = []
    for block in content:
        kind = _get(block, "type")
        parts.append(text_part(_get(block, "text")) if kind in _TEXT_BLOCKS else other_part(kind))
    return parts


def _leading_system(items: list[Any] | tuple[Any, ...]) -> tuple[list[Any], Any]:
    """The run of system/developer messages at the start, and the first message after it."""
    count = 0
    while count < len(items) and _get(items[count], "role") in _SYSTEM_ROLES:
        count += 1
    return list(items[:count]), items[count] if count < len(items) else None


# -- chat completions ---------------------------------------------------------------------------


def _chat_usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        input_tokens=getattr(usage, "prompt_tokens", None),
        cache_read=getattr(prompt_details, "cached_tokens", None),
        cache_creation=getattr(prompt_details, "cache_write_tokens", None),
        output_tokens=getattr(usage, "completion_tokens", None),
        reasoning=getattr(completion_details, "reasoning_tokens", None),
    )


def _chat_message(item: Any) -> dict[str, Any]:
    role = _get(item, "role")
    content = _get(item, "content")
    if role == "tool":
        return message(role, [tool_result_part(_get(item, "tool_call_id"), content)])
    parts = _content_parts(content)
    tool_calls = _get(item, "tool_calls")
    for tool_call in tool_calls if isinstance(tool_calls, list | tuple) else []:
        function = _get(tool_call, "function")
        parts.append(tool_call_part(_get(tool_call, "id"), _get(function, "name"), _get(function, "arguments")))
    return message(role, parts)


class ChatCompletions(StreamingOperation):
    provider = "openai"
    name = "chat"
    record_kind = 1  # the C module reads its usual call (calls.record_attributes)
    sentinels = _SENTINELS
    stream_types = _STREAMS
    response_paths = (
        ("id",),
        ("model",),
        ("choices", STAR, "finish_reason"),
        ("usage", "prompt_tokens"),
        ("usage", "prompt_tokens_details", "cached_tokens"),
        ("usage", "prompt_tokens_details", "cache_write_tokens"),
        ("usage", "completion_tokens"),
        ("usage", "completion_tokens_details", "reasoning_tokens"),
        ("usage", "total_tokens"),
    )

    def response_values(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        response_id, model, finish_reasons, *counts = values
        return response_id, model, [reason for reason in finish_reasons or () if reason], *counts[:5]

    def summarize(self, response: Any, capture_content: bool) -> Summary:
        choices = getattr(response, "choices", None) or []
        summary = Summary(
            response_id=getattr(response, "id", None),
            model=getattr(response, "model", None),
            finish_reasons=[choice.finish_reason for choice in choices if getattr(choice, "finish_reason", None)],
            usage=_chat_usage(getattr(response, "usage", None)),
        )
        if capture_content:
            summary.output_messages = [
                {**_chat_message(choice.message), "finish_reason": choice.finish_reason} for choice in choices
            ]
        return summary

    def request_attributes(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return _sampling(request, request.get("max_completion_tokens") or request.get("max_tokens"))

    def prompt_prefix(self, request: Mapping[str, Any]) -> Any:
        messages = request.get("messages")
        if not isinstance(messages, list | tuple):
            return None
        system, first = _leading_system(messages)
        return {"system": system, "tools": request.get("tools") or request.get("functions"), "first": first}

    def input_messages(self, request: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        messages = request.get("messages")
        return [_chat_message(item) for item in messages] if isinstance(messages, list | tuple) else None

    def user(self, request: Mapping[str, Any]) -> str | None:
        return request.get("user") or request.get("safety_identifier")

    def accumulator(self, capture_content: bool) -> ChatChunks:
        return ChatChunks(capture_content)

    def asking_for_usage(self, request: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        """A chat stream reports usage only with stream_options={"include_usage": True}: added
        here (merged into the app's own stream_options, in extra_body if the app put them there)
        unless the app asked for usage itself. Left alone: calls through with_raw_response /
        with_streaming_response (the app reads raw bytes, which cannot be filtered), and servers
        that refused stream_options before."""
        headers = request.get("extra_headers")
        if isinstance(headers, Mapping) and _RAW_RESPONSE_HEADER in headers:
            return None
        if _server_model(attributes) in _REFUSING_STREAM_OPTIONS:
            return None
        extra_body = request.get("extra_body")
        if isinstance(extra_body, Mapping) and "stream_options" in extra_body:  # sent over the argument
            asking = _including_usage(extra_body["stream_options"])
            return None if asking is None else {**request, "extra_body": {**extra_body, "stream_options": asking}}
        asking = _including_usage(request.get("stream_options"))
        return None if asking is None else {**request, "stream_options": asking}

    def refuses_usage(self, error: BaseException, attributes: Mapping[str, Any]) -> bool:
        """A 400 or 422 naming stream_options: an OpenAI-compatible server that does not know the
        field. Remembered for that server and model, so only its first stream is sent twice."""
        if not isinstance(error, openai.APIStatusError) or error.status_code not in (400, 422):
            return False
        if "stream_options" not in f"{error} {error.body}":
            return False
        if len(_REFUSING_STREAM_OPTIONS) < _MAX_REFUSING:
            _REFUSING_STREAM_OPTIONS.add(_server_model(attributes))
        return True

    def hides(self, chunk: Any) -> bool:
        """What include_usage adds: a last chunk with no choices, only usage (hidden), and
        `"usage": null` on every other chunk (reset to None and unset, so that `to_json()` and
        `model_dump(exclude_unset=True)` are what they would have been)."""
        if chunk.usage is not None:
            if not chunk.choices:
                return True
            chunk.usage = None
        chunk.model_fields_set.discard("usage")
        return False


def _including_usage(options: Any) -> dict[str, Any] | None:
    """The app's stream_options with include_usage=True; None when they ask for usage already (or
    are not a mapping)."""
    if options is None or isinstance(options, _SENTINELS):
        return {"include_usage": True}
    if not isinstance(options, Mapping) or options.get("include_usage"):
        return None
    return {**options, "include_usage": True}


def _server_model(attributes: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return attributes.get("server.address"), attributes.get("server.port"), attributes.get("gen_ai.request.model")


class ChatChunks:
    """Reads ChatCompletionChunk objects: ids from the first, usage from the last (present when the
    app or the SDK asked for stream_options={"include_usage": True})."""

    __slots__ = ("_capture", "_finish", "_summary", "_texts", "_tools", "_usage")

    def __init__(self, capture_content: bool) -> None:
        self._summary = Summary()
        self._usage: Any = None
        self._capture = capture_content
        self._texts: dict[int, list[str]] = {}
        self._tools: dict[tuple[int, int], dict[str, Any]] = {}
        self._finish: dict[int, str] = {}

    def observe(self, chunk: Any) -> None:
        summary = self._summary
        if summary.response_id is None:
            summary.response_id = chunk.id
            summary.model = chunk.model
        if chunk.usage is not None:
            self._usage = chunk.usage
        for choice in chunk.choices:
            if choice.finish_reason:
                summary.finish_reasons.append(choice.finish_reason)
                self._finish[choice.index] = choice.finish_reason
            if self._capture:
                self._read_delta(choice)

    def _read_delta(self, choice: Any) -> None:
        delta = choice.delta
        if delta is None:
            return
        if delta.content:
            self._texts.setdefault(choice.index, []).append(delta.content)
        for tool_call in delta.tool_calls or []:
            entry = self._tools.setdefault((choice.index, tool_call.index), {"id": None, "name": None, "arguments": ""})
            if tool_call.id:
                entry["id"] = tool_call.id
            function = tool_call.function
            if function is not None:
                if function.name:
                    entry["name"] = function.name
                entry["arguments"] += function.arguments or ""

    def summary(self) -> Summary:
        summary = self._summary
        summary.usage = _chat_usage(self._usage)
        if self._capture:
            indexes = sorted({*self._texts, *self._finish, *(index for index, _ in self._tools)})
            summary.output_messages = []
            for index in indexes:
                parts = [text_part("".join(self._texts[index]))] if index in self._texts else []
                parts += [
                    tool_call_part(entry["id"], entry["name"], entry["arguments"])
                    for (choice, _), entry in sorted(self._tools.items())
                    if choice == index
                ]
                summary.output_messages.append(message("assistant", parts, self._finish.get(index)))
        return summary


# -- responses ----------------------------------------------------------------------------------


def _responses_usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    input_details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    return Usage(
        input_tokens=getattr(usage, "input_tokens", None),
        cache_read=getattr(input_details, "cached_tokens", None),
        cache_creation=getattr(input_details, "cache_write_tokens", None),
        output_tokens=getattr(usage, "output_tokens", None),
        reasoning=getattr(output_details, "reasoning_tokens", None),
    )


def _responses_finish(response: Any) -> list[str]:
    """Responses have a status, not a finish reason: completed -> stop (tool_calls when the
    output asks for a function call), incomplete -> its reason, anything else as is."""
    status = getattr(response, "status", None)
    if status == "completed":
        output = getattr(response, "output", None) or []
        return ["tool_calls" if any(_get(item, "type") == "function_call" for item in output) else "stop"]
    if status == "incomplete":
        return [getattr(getattr(response, "incomplete_details", None), "reason", None) or "incomplete"]
    return [status] if isinstance(status, str) else []


def _responses_item(item: Any) -> dict[str, Any]:
    kind = _get(item, "type")
    if kind == "function_call":
        return message("assistant", [tool_call_part(_get(item, "call_id"), _get(item, "name"), _get(item, "arguments"))])
    if kind == "function_call_output":
        return message("tool", [tool_result_part(_get(item, "call_id"), _get(item, "output"))])
    if kind in (None, "message"):
        return message(_get(item, "role"), _content_parts(_get(item, "content")))
    return message(_get(item, "role") or "assistant", [other_part(kind)])


class ResponsesCreate(StreamingOperation):
    provider = "openai"
    name = "responses"
    sentinels = _SENTINELS
    stream_types = _STREAMS

    def summarize(self, response: Any, capture_content: bool) -> Summary:
        summary = Summary(
            response_id=getattr(response, "id", None),
            model=getattr(response, "model", None),
            finish_reasons=_responses_finish(response),
            usage=_responses_usage(getattr(response, "usage", None)),
        )
        if capture_content:
            output = getattr(response, "output", None) or []
            summary.output_messages = [_responses_item(item) for item in output if _get(item, "type") != "reasoning"]
        return summary

    def request_attributes(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return _sampling(request, request.get("max_output_tokens"))

    def prompt_prefix(self, request: Mapping[str, Any]) -> Any:
        items = request.get("input")
        if isinstance(items, str):
            system, first = [], items
        elif isinstance(items, list | tuple):
            system, first = _leading_system(items)
        else:
            return None
        return {"instructions": request.get("instructions"), "system": system, "tools": request.get("tools"), "first": first}

    def input_messages(self, request: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        messages = []
        instructions = request.get("instructions")
        if isinstance(instructions, str):
            messages.append(message("system", [text_part(instructions)]))
        items = request.get("input")
        if isinstance(items, str):
            messages.append(message("user", [text_part(items)]))
        elif isinstance(items, list | tuple):
            messages += [_responses_item(item) for item in items]
        return messages or None

    def user(self, request: Mapping[str, Any]) -> str | None:
        return request.get("user") or request.get("safety_identifier")

    def accumulator(self, capture_content: bool) -> ResponseEvents:
        return ResponseEvents()


class ResponseEvents:
    """Keeps the last whole Response carried by the events (created, then completed /
    incomplete / failed); the background thread reads it like a non-streamed one."""

    __slots__ = ("_response",)

    def __init__(self) -> None:
        self._response: Any = None

    def observe(self, event: Any) -> None:
        response = getattr(event, "response", None)
        if response is not None:
            self._response = response

    def summary(self) -> Any:
        return self._response if self._response is not None else Summary()


# -- embeddings ---------------------------------------------------------------------------------


class EmbeddingsCreate(Operation):
    provider = "openai"
    name = "embeddings"
    sentinels = _SENTINELS

    def summarize(self, response: Any, capture_content: bool) -> Summary:
        usage = getattr(response, "usage", None)
        tokens = getattr(usage, "prompt_tokens", None)
        return Summary(model=getattr(response, "model", None), usage=Usage(input_tokens=tokens) if usage else None)

    def request_attributes(self, request: Mapping[str, Any]) -> dict[str, Any]:
        dimensions = request.get("dimensions")
        return {"gen_ai.embeddings.dimension.count": dimensions} if isinstance(dimensions, int) else {}

    def user(self, request: Mapping[str, Any]) -> str | None:
        return request.get("user")


CHAT = ChatCompletions()
RESPONSES = ResponsesCreate()
EMBEDDINGS = EmbeddingsCreate()


def handles(client: Any) -> bool:
    return isinstance(client, openai.OpenAI | openai.AsyncOpenAI)


def wrap_client(client: Any) -> Any:
    """Patch this client object's methods in place and return it."""
    is_async = isinstance(client, openai.AsyncOpenAI)
    chat = getattr(client, "chat", None)
    if chat is not None:
        wrap_instance_method(chat.completions, "create", CHAT, is_async=is_async)
    for attribute, operation in (("responses", RESPONSES), ("embeddings", EMBEDDINGS)):
        resource = getattr(client, attribute, None)
        if resource is not None:
            wrap_instance_method(resource, "create", operation, is_async=is_async)
    wrap_copies(client, wrap_client)
    return client


def instrument(patches: ClassPatches) -> None:
    """Patch the resource classes, so that every OpenAI client in the process is observed."""
    for owner, operation, is_async in (
        (Completions, CHAT, False),
        (AsyncCompletions, CHAT, True),
        (Responses, RESPONSES, False),
        (AsyncResponses, RESPONSES, True),
        (Embeddings, EMBEDDINGS, False),
        (AsyncEmbeddings, EMBEDDINGS, True),
    ):
        patches.patch(
            owner,
            "create",
            lambda original, operation=operation, is_async=is_async: wrap_method(original, operation, is_async=is_async),
        )
