"""Anthropic integration: messages.create (streaming included) and the messages.stream(...)
context-manager helper on `Anthropic` / `AsyncAnthropic` clients."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import anthropic
from anthropic.lib.streaming import AsyncMessageStreamManager, MessageStreamManager
from anthropic.resources.messages import AsyncMessages, Messages

from .. import pipeline
from ..calls import Summary, Usage
from ..content import message, other_part, text_part, tool_call_part, tool_result_part
from ..failures import log_once
from ..fingerprints import omit
from ..patching import (
    MARK,
    ClassPatches,
    StreamingOperation,
    finish_call,
    finish_result,
    is_wrapped,
    start_call,
    wrap_copies,
    wrap_instance_method,
    wrap_method,
)

# Where the stream managers keep the pending request (name-mangled private attributes).
_SYNC_REQUEST = "_MessageStreamManager__api_request"
_ASYNC_REQUEST = "_AsyncMessageStreamManager__api_request"
_SENTINELS: tuple[type, ...] = (anthropic.NotGiven, anthropic.Omit)
omit(*_SENTINELS)


def _get(value: Any, name: str) -> Any:
    """A field of a request dict (TypedDict) or of a response / pydantic object."""
    if type(value) is dict or isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _usage(input_tokens: Any, cache_read: Any, cache_creation: Any, output_tokens: Any) -> Usage:
    """Anthropic's input_tokens leave out cached tokens; the SDK's input total includes them."""
    counts = [value for value in (input_tokens, cache_read, cache_creation) if isinstance(value, int)]
    return Usage(
        input_tokens=sum(counts) if counts else None,
        cache_read=cache_read,
        cache_creation=cache_creation,
        output_tokens=output_tokens,
    )


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    if not isinstance(content, list | tuple):  # a one-shot iterable is the client's to read
        return [other_part("unknown")]
    parts = []
    for block in content:
        kind = _get(block, "type")
        if kind == "text":
            parts.append(text_part(_get(block, "text")))
        elif kind == "tool_use":
            parts.append(tool_call_part(_get(block, "id"), _get(block, "name"), _get(block, "input")))
        elif kind == "tool_result":
            result = _get(block, "content")
            text = result if isinstance(result, str) else [part["content"] for part in _blocks(result) if "content" in part]
            parts.append(tool_result_part(_get(block, "tool_use_id"), text))
        else:
            parts.append(other_part(kind))
    return parts


class MessagesCreate(StreamingOperation):
    provider = "anthropic"
    name = "chat"
    record_kind = 2  # the C module reads its usual call (calls.record_attributes)
    sentinels = _SENTINELS
    response_paths = (
        ("id",),
        ("model",),
        ("stop_reason",),
        ("usage", "input_tokens"),
        ("usage", "cache_read_input_tokens"),
        ("usage", "cache_creation_input_tokens"),
        ("usage", "output_tokens"),
    )
    stream_types = (anthropic.Stream, anthropic.AsyncStream)

    def summarize(self, response: Any, capture_content: bool) -> Summary:
        usage = getattr(response, "usage", None)
        stop_reason = getattr(response, "stop_reason", None)
        summary = Summary(
            response_id=getattr(response, "id", None),
            model=getattr(response, "model", None),
            finish_reasons=[stop_reason] if stop_reason else [],
            usage=_usage(
                getattr(usage, "input_tokens", None),
                getattr(usage, "cache_read_input_tokens", None),
                getattr(usage, "cache_creation_input_tokens", None),
                getattr(usage, "output_tokens", None),
            )
            if usage is not None
            else None,
        )
        if capture_content:
            blocks = _blocks(getattr(response, "content", None))
            summary.output_messages = [message("assistant", blocks, stop_reason)]
        return summary

    def response_values(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        response_id, model, stop_reason, *counts = values
        reasons = [stop_reason] if stop_reason else []
        if all(count is None for count in counts):
            return response_id, model, reasons
        usage = _usage(*counts)
        return response_id, model, reasons, usage.input_tokens, usage.cache_read, usage.cache_creation, usage.output_tokens

    def request_attributes(self, request: Mapping[str, Any]) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        max_tokens = request.get("max_tokens")
        if isinstance(max_tokens, int):
            attributes["gen_ai.request.max_tokens"] = max_tokens
        for field in ("temperature", "top_p"):
            value = request.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[f"gen_ai.request.{field}"] = float(value)
        if isinstance(request.get("top_k"), int):
            attributes["gen_ai.request.top_k"] = float(request["top_k"])
        return attributes

    def prompt_prefix(self, request: Mapping[str, Any]) -> Any:
        messages = request.get("messages")
        if not isinstance(messages, list | tuple):
            return None
        first = messages[0] if messages else None
        return {"system": request.get("system"), "tools": request.get("tools"), "first": first}

    def input_messages(self, request: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        messages = []
        system = request.get("system")
        if system:
            messages.append(message("system", _blocks(system)))
        items = request.get("messages")
        if isinstance(items, list | tuple):
            messages += [message(_get(item, "role"), _blocks(_get(item, "content"))) for item in items]
        return messages or None

    def user(self, request: Mapping[str, Any]) -> str | None:
        return _get(request.get("metadata"), "user_id")

    def accumulator(self, capture_content: bool) -> MessageEvents:
        return MessageEvents(capture_content)


class MessageEvents:
    """Reads raw stream events: ids and input usage from message_start; stop reason and the
    cumulative output count from message_delta (not added to message_start's count)."""

    __slots__ = ("_blocks", "_capture", "_stop", "_summary", "_tokens")

    def __init__(self, capture_content: bool) -> None:
        self._summary = Summary()
        self._tokens: dict[str, Any] = {}
        self._capture = capture_content
        self._blocks: dict[int, dict[str, Any]] = {}
        self._stop: str | None = None

    def _take_usage(self, usage: Any) -> None:
        for field in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens"):
            value = getattr(usage, field, None)
            if value is not None:
                self._tokens[field] = value

    def observe(self, event: Any) -> None:
        kind = event.type
        if kind == "message_start":
            started = event.message
            self._summary.response_id = started.id
            self._summary.model = started.model
            self._take_usage(started.usage)
        elif kind == "message_delta":
            if event.delta.stop_reason:
                self._stop = event.delta.stop_reason
            self._take_usage(event.usage)
        elif self._capture:
            self._read_content(event)

    def _read_content(self, event: Any) -> None:
        kind = event.type
        if kind == "content_block_start":
            block = event.content_block
            self._blocks[event.index] = {
                "type": block.type,
                "text": "",
                "id": getattr(block, "id", None),
                "name": getattr(block, "name", None),
            }
        elif kind == "content_block_delta":
            entry = self._blocks.get(event.index)
            delta = event.delta
            if entry is not None:
                entry["text"] += getattr(delta, "text", None) or getattr(delta, "partial_json", None) or ""

    def summary(self) -> Summary:
        summary = self._summary
        if self._stop:
            summary.finish_reasons.append(self._stop)
        tokens = self._tokens
        if tokens:
            summary.usage = _usage(
                tokens.get("input_tokens"),
                tokens.get("cache_read_input_tokens"),
                tokens.get("cache_creation_input_tokens"),
                tokens.get("output_tokens"),
            )
        if self._capture:
            parts = []
            for _, block in sorted(self._blocks.items()):
                if block["type"] == "text":
                    parts.append(text_part(block["text"]))
                elif block["type"] == "tool_use":
                    parts.append(tool_call_part(block["id"], block["name"], block["text"]))
                else:
                    parts.append(other_part(block["type"]))
            summary.output_messages = [message("assistant", parts, self._stop)]
        return summary


MESSAGES = MessagesCreate()


def _observe_manager(active: pipeline.Pipeline, manager: Any, kwargs: dict[str, Any], client: Any) -> None:
    """Make the manager's pending request observed: the call starts when the `with` block is
    entered, and the raw event stream it opens gets the usual stream observer."""
    request = {**kwargs, "stream": True}
    if isinstance(manager, AsyncMessageStreamManager):
        pending = getattr(manager, _ASYNC_REQUEST)

        async def observed_async() -> Any:
            call, began = start_call(active, MESSAGES, request, client)
            try:
                raw_stream = await pending
            except BaseException as error:
                finish_call(call, began, None, error)
                raise
            return finish_result(call, began, raw_stream)

        setattr(manager, _ASYNC_REQUEST, observed_async())
        return
    send = getattr(manager, _SYNC_REQUEST)

    def observed() -> Any:
        call, began = start_call(active, MESSAGES, request, client)
        try:
            raw_stream = send()
        except BaseException as error:
            finish_call(call, began, None, error)
            raise
        return finish_result(call, began, raw_stream)

    setattr(manager, _SYNC_REQUEST, observed)


def _wrap_stream_helper(original: Callable[..., Any], resource: Any = None) -> Callable[..., Any]:
    bound = resource is not None

    @functools.wraps(original)
    def stream(*args: Any, **kwargs: Any) -> Any:
        manager = original(*args, **kwargs)
        active = pipeline.current
        if active is None:
            return manager
        try:
            client = getattr(resource if bound else args[0], "_client", None)
            if isinstance(manager, MessageStreamManager | AsyncMessageStreamManager):
                _observe_manager(active, manager, kwargs, client)
        except Exception:  # an unobserved stream is better than a broken one
            log_once("anthropic-stream-helper", "observatory_sdk: cannot observe messages.stream()", exc_info=True)
        return manager

    setattr(stream, MARK, MESSAGES)
    return stream


def handles(client: Any) -> bool:
    return isinstance(client, anthropic.Anthropic | anthropic.AsyncAnthropic)


def wrap_client(client: Any) -> Any:
    """Patch this client object's methods in place and return it."""
    messages = client.messages
    wrap_instance_method(messages, "create", MESSAGES, is_async=isinstance(client, anthropic.AsyncAnthropic))
    if not is_wrapped(messages.stream):
        messages.stream = _wrap_stream_helper(messages.stream, messages)
    wrap_copies(client, wrap_client)
    return client


def instrument(patches: ClassPatches) -> None:
    """Patch the resource classes, so that every Anthropic client in the process is observed."""
    for owner, is_async in ((Messages, False), (AsyncMessages, True)):
        patches.patch(owner, "create", lambda original, is_async=is_async: wrap_method(original, MESSAGES, is_async=is_async))
        patches.patch(owner, "stream", _wrap_stream_helper)
