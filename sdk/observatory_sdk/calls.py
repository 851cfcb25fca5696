"""What the hot path records about one model call (`Call`), and the pure mapping the background
thread applies to turn it into a span name and GenAI semantic-convention attributes."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .content import messages_json
from .failures import log_once
from .fingerprints import canonical_text, digest, snapshot
from .settings import Settings

# Request fields that do not change what the model answers: left out of `observatory.request_hash`.
NON_SEMANTIC_FIELDS = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "safety_identifier",
        "metadata",
        "prompt_cache_key",
        "prompt_cache_retention",
        "service_tier",
        "store",
        "extra_headers",
        "extra_query",
        "timeout",
    }
)

_ATTRIBUTION_KEYS = {
    "team": "observatory.team",
    "product": "observatory.product",
    "feature": "observatory.feature",
    "environment": "observatory.environment",
    "user": "user.id",
    "session": "session.id",
}


@dataclass(slots=True)
class Usage:
    """Token counts in the SDK's convention: input includes cached tokens, output includes reasoning."""

    input_tokens: int | None = None
    cache_read: int | None = None
    cache_creation: int | None = None
    output_tokens: int | None = None
    reasoning: int | None = None


@dataclass(slots=True)
class Summary:
    """What a response said, read from a whole response object or gathered from stream chunks."""

    response_id: str | None = None
    model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    usage: Usage | None = None
    output_messages: list[dict[str, Any]] | None = None


class Operation:
    """One instrumented API method; integrations subclass it to read their request and response shapes."""

    provider = ""
    name = ""
    sentinels: tuple[type, ...] = ()

    def summarize(self, response: Any, capture_content: bool) -> Summary:
        """Read a whole (non-streamed) response object."""
        return Summary()

    def request_attributes(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def prompt_prefix(self, request: Mapping[str, Any]) -> Any:
        """The static leading part of the prompt to hash, or None when the operation has none."""
        return None

    def input_messages(self, request: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        return None

    def user(self, request: Mapping[str, Any]) -> str | None:
        """The end-user id sent to the provider, used when no `attribute(user=...)` is active."""
        return None


class Call:
    """One model call as the hot path records it: timestamps, attributes already read off the
    request, a snapshot of the request (taken when the call starts, so changing `messages`
    afterwards changes nothing; hashed by the worker) and a `Summary` read off the response
    (turned into attributes by the worker). It keeps no reference to the request or response
    objects: kept alive in a queue until the worker gets to them, they would make Python's garbage
    collector work harder than the SDK itself."""

    __slots__ = (
        "attributes",
        "attribution",
        "context",
        "duration_ns",
        "error_type",
        "first_chunk_ns",
        "operation",
        "request",
        "start_ns",
        "status_code",
        "summary",
    )

    def __init__(
        self,
        operation: Operation,
        start_ns: int,
        attributes: dict[str, Any],
        attribution: Mapping[str, str],
        context: Any,
    ) -> None:
        self.operation = operation
        self.start_ns = start_ns
        self.attributes = attributes
        self.attribution = attribution
        self.context = context
        self.duration_ns = 0
        self.first_chunk_ns: int | None = None
        self.error_type: str | None = None
        self.status_code: int | None = None
        self.request: Any = None
        """A snapshot of the request (`read_request`); hashed by the worker."""
        self.summary: Summary | None = None
        """What the response said; turned into attributes by the worker."""

    def fail(self, error: BaseException) -> None:
        self.error_type = type(error).__name__
        status = getattr(error, "status_code", None)
        self.status_code = status if isinstance(status, int) else None


def app_context() -> Any:
    """The app's current OpenTelemetry context (the parent of the call's span) when the app has
    loaded OpenTelemetry, else None; looked up in `sys.modules` so that the SDK never loads it."""
    context = sys.modules.get("opentelemetry.context")
    return None if context is None else context.get_current()


_servers: weakref.WeakKeyDictionary[Any, tuple[str | None, int | None]] = weakref.WeakKeyDictionary()


def _server(client: Any) -> tuple[str | None, int | None]:
    """Host and port of the client's base URL, remembered per client (reading it is not free)."""
    if client is None:
        return None, None
    try:
        return _servers[client]
    except (KeyError, TypeError):
        pass
    url = getattr(client, "base_url", None)
    server = (getattr(url, "host", None) or None, getattr(url, "port", None)) if url is not None else (None, None)
    try:
        _servers[client] = server
    except TypeError:  # a client type without weak references: just not remembered
        pass
    return server


_heads: dict[tuple[str, str], str] = {}


def _request_head(operation: Operation) -> str:
    key = (operation.provider, operation.name)
    head = _heads.get(key)
    if head is None:
        head = _heads[key] = "d3:" + "".join(
            f"s{len(name)}:{name}" + (f"s{len(value)}:{value}" if value is not None else "")
            for name, value in (("operation", operation.name), ("provider", operation.provider), ("request", None))
        )
    return head


def read_request(operation: Operation, kwargs: Mapping[str, Any], client: Any, settings: Settings) -> tuple[dict[str, Any], Any]:
    """On the app's thread when the call starts: the attributes read off the request (the call's
    keyword arguments), and a snapshot of the request for the export thread to hash
    (`request_hashes`), so that changing `messages` afterwards changes nothing."""
    request = {key: value for key, value in kwargs.items() if not isinstance(value, operation.sentinels)}
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": operation.provider,
        "gen_ai.operation.name": operation.name,
        "gen_ai.request.stream": request.get("stream") is True,
    }
    model = request.get("model")
    if isinstance(model, str):
        attributes["gen_ai.request.model"] = model
    attributes.update(operation.request_attributes(request))
    host, port = _server(client)
    if host:
        attributes["server.address"] = host
        if port:
            attributes["server.port"] = port
    user = operation.user(request)
    if isinstance(user, str) and user:
        attributes["user.id"] = user
    if settings.capture_content:
        messages = operation.input_messages(request)
        if messages:
            attributes["gen_ai.input.messages"] = messages_json(messages, settings.max_content_chars)
    return attributes, snapshot(request)


PREFIX_HASHES_KEPT = 256
_prefix_hashes: dict[str, str] = {}
"""Prompt-prefix hashes by canonical text: an app sends the same few prefixes (system prompts, tools) again and
again, so most calls look theirs up instead of hashing it. Whichever thread builds spans uses it: each dict
operation is atomic, and an entry lost to a concurrent clear() costs one hash."""


def request_hashes(operation: Operation, request: Mapping[str, Any]) -> dict[str, str]:
    """`observatory.prompt_prefix_hash` and `observatory.request_hash` of a request snapshot (see
    `read_request`); runs on the export thread, many calls in a row."""
    hashes: dict[str, str] = {}
    prefix = operation.prompt_prefix(request)
    seen: dict[int, str] = {}
    if prefix is not None:
        prefix_text = canonical_text(prefix, seen)
        if prefix_text is not None:
            prefix_hash = _prefix_hashes.get(prefix_text)
            if prefix_hash is None:
                if len(_prefix_hashes) >= PREFIX_HASHES_KEPT:
                    _prefix_hashes.clear()
                prefix_hash = _prefix_hashes[prefix_text] = digest(prefix_text)
            hashes["observatory.prompt_prefix_hash"] = prefix_hash
    if NON_SEMANTIC_FIELDS.isdisjoint(request):  # the usual case: nothing to leave out, no copy
        semantic = request
    else:
        semantic = {key: value for key, value in request.items() if key not in NON_SEMANTIC_FIELDS}
    request_text = canonical_text(semantic, seen, depth=1)  # one level down, under "request"
    if request_text is not None:
        # The canonical form of {"provider": ..., "operation": ..., "request": the request}, keys
        # sorted, written without building that mapping.
        hashes["observatory.request_hash"] = digest(_request_head(operation) + request_text)
    return hashes


def response_attributes(summary: Summary, settings: Settings) -> dict[str, Any]:
    """Attributes read off the response (or the stream) when the call ends."""
    attributes: dict[str, Any] = {}
    if summary.response_id:
        attributes["gen_ai.response.id"] = summary.response_id
    if summary.model:
        attributes["gen_ai.response.model"] = summary.model
    if summary.finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = tuple(summary.finish_reasons)
    usage = summary.usage
    if usage is not None:
        for key, value in (
            ("gen_ai.usage.input_tokens", usage.input_tokens),
            ("gen_ai.usage.cache_read.input_tokens", usage.cache_read),
            ("gen_ai.usage.cache_creation.input_tokens", usage.cache_creation),
            ("gen_ai.usage.output_tokens", usage.output_tokens),
            ("gen_ai.usage.reasoning.output_tokens", usage.reasoning),
        ):
            if value is not None:
                attributes[key] = value
    if settings.capture_content and summary.output_messages:
        attributes["gen_ai.output.messages"] = messages_json(summary.output_messages, settings.max_content_chars)
    return attributes


def span_name(call: Call) -> str:
    model = call.attributes.get("gen_ai.request.model")
    return f"{call.operation.name} {model}" if model else call.operation.name


def span_attributes(call: Call, settings: Settings) -> dict[str, Any]:
    """All span attributes of a finished call: what the hot path read off the request and the
    response, plus attribution (the init() defaults under the active `attribute()` values), time
    to first chunk and the error.
    Runs on the worker, which owns the call by then, so the call's own dict is completed."""
    attributes = call.attributes
    if call.request is not None:
        try:
            attributes.update(request_hashes(call.operation, call.request))
        except Exception:  # the span goes out without its hashes
            log_once("hash", "observatory_sdk: could not hash a request", exc_info=True)
        call.request = None
    if call.summary is not None:
        attributes.update(response_attributes(call.summary, settings))
    for key, value in {**settings.default_attribution, **call.attribution}.items():
        attributes[_ATTRIBUTION_KEYS[key]] = value
    if call.first_chunk_ns is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = call.first_chunk_ns / 1e9
    if call.error_type is not None:
        attributes["error.type"] = call.error_type
        if call.status_code is not None:
            attributes["http.response.status_code"] = call.status_code
    return attributes
