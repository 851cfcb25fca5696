"""What the hot path records about one model call (`Call`), and the pure mapping the background
thread applies to turn it into a span name and GenAI semantic-convention attributes."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .accelerator import speedups
from .content import messages_json
from .failures import log_once
from .fingerprints import OMITTED, canonical_text, digest, snapshot
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
    response_paths: tuple[tuple[str, ...], ...] = ()
    """What the hot path reads off a whole response when content is not captured: attribute paths
    (`pluck`), turned into attributes (`response_values`, `write_response`) when the span is built. Empty: `summarize`
    runs on the hot path instead."""

    record_kind = 0
    """Which of the C module's readers builds the attributes of this operation's usual call (`_speedups.c`,
    RECORD_*: 1 reads as integrations/openai.ChatCompletions, 2 as integrations/anthropic.MessagesCreate); 0: none,
    the Python code does."""

    def summarize(self, response: Any, capture_content: bool) -> Summary:
        """Read a whole (non-streamed) response object."""
        return Summary()

    def response_values(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """The arguments of `write_response` after the attributes (response id, model, finish reasons, token
        counts) from the values `pluck` read along `response_paths`."""
        return (None, None, None)

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
    """One model call as the hot path records it: timestamps, a snapshot of the request (taken when
    the call starts, so changing `messages` afterwards changes nothing), and a `Summary` read off
    the response. The request's attributes are read off the snapshot, and the snapshot hashed, when
    the span is built (`span_attributes`, calls in a row, with the code warm); a stream's are read
    when it starts (its handling needs them), and so are all of them when content is captured (the
    snapshot keeps only the sampled items of a long list). It keeps no reference to the request or
    response objects: kept alive in a queue until spans are built, they would make Python's garbage
    collector work harder than the SDK itself."""

    __slots__ = (
        "attributes",
        "attribution",
        "client",
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
        attributes: dict[str, Any] | None,
        attribution: Mapping[str, str],
        context: Any,
        client: Any = None,
    ) -> None:
        self.operation = operation
        self.start_ns = start_ns
        self.attributes = attributes
        """None until the span is built when only the request snapshot was taken (see the class docstring)."""
        self.client = client
        """The client that made the call, while its server address is still to be read (with `attributes`)."""
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


STAR = "*"
"""In a response path: each item of a list or tuple (its values come back as a tuple)."""


def _follow(value: Any, path: tuple[str, ...], start: int) -> Any:
    for index in range(start, len(path)):
        if value is None:
            return None
        name = path[index]
        if name == STAR:
            if not isinstance(value, list | tuple):
                return None
            return tuple([_follow(item, path, index + 1) for item in value])
        value = getattr(value, name, None)
    return value


def pluck_py(response: Any, paths: tuple[tuple[str, ...], ...]) -> tuple[Any, ...]:
    """The value at the end of each attribute path of `paths` from `response` (None where an
    attribute is missing or None on the way; STAR maps the rest of the path over a list)."""
    return tuple([_follow(response, path, 0) for path in paths])


pluck = speedups.pluck if speedups is not None else pluck_py
"""`pluck_py`, in C when the C module is built."""


def app_context() -> Any:
    """The app's current OpenTelemetry context (the parent of the call's span) when the app has
    loaded OpenTelemetry, else None; looked up in `sys.modules` so that the SDK never loads it."""
    context = sys.modules.get("opentelemetry.context")
    return None if context is None else context.get_current()


_SERVERS_KEPT = 256
_servers: dict[int, tuple[Any, tuple[str | None, int | None]]] = {}
"""(weak reference to the client, its host and port) by the client's id: the reference tells a reused id apart."""


def _server(client: Any) -> tuple[str | None, int | None]:
    """Host and port of the client's base URL, remembered per client (reading it is not free)."""
    if client is None:
        return None, None
    entry = _servers.get(id(client))
    if entry is not None and entry[0]() is client:
        return entry[1]
    url = getattr(client, "base_url", None)
    server = (getattr(url, "host", None) or None, getattr(url, "port", None)) if url is not None else (None, None)
    try:
        reference = weakref.ref(client)
    except TypeError:  # a client type without weak references: just not remembered
        return server
    if len(_servers) >= _SERVERS_KEPT:
        _servers.clear()
    _servers[id(client)] = (reference, server)
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
    """The attributes read off a request (the call's keyword arguments) and a snapshot of it for the
    hashes (`request_hashes`), so that changing `messages` afterwards changes nothing. Calls that
    neither stream nor capture content take only the snapshot when they start (`snapshot`) and read
    the attributes off it when the span is built (`span_attributes`)."""
    request = {key: value for key, value in kwargs.items() if not isinstance(value, operation.sentinels)}
    attributes = request_attributes(operation, request, client)
    if settings.capture_content:
        messages = operation.input_messages(request)
        if messages:
            attributes["gen_ai.input.messages"] = messages_json(messages, settings.max_content_chars)
    return attributes, snapshot(request)


_FIXED_KEPT = 256
_fixed: dict[tuple[str, str, str | None, int | None], dict[str, Any]] = {}
"""The attributes every call of one operation to one server shares, made once."""


def _fixed_attributes(operation: Operation, client: Any) -> dict[str, Any]:
    """The attributes every call of the operation to the client's server shares (one dict: copy it)."""
    host, port = _server(client)
    key = (operation.provider, operation.name, host, port)
    fixed = _fixed.get(key)
    if fixed is None:
        fixed = {"gen_ai.provider.name": operation.provider, "gen_ai.operation.name": operation.name}
        if host:
            fixed["server.address"] = host
            if port:
                fixed["server.port"] = port
        if len(_fixed) >= _FIXED_KEPT:
            _fixed.clear()
        _fixed[key] = fixed
    return fixed


def request_attributes(operation: Operation, request: Mapping[str, Any], client: Any) -> dict[str, Any]:
    """The span attributes read off a request (or its snapshot) and the client's base URL."""
    attributes = _fixed_attributes(operation, client).copy()
    attributes["gen_ai.request.stream"] = request.get("stream") is True
    model = request.get("model")
    if isinstance(model, str):
        attributes["gen_ai.request.model"] = model
    attributes.update(operation.request_attributes(request))
    user = operation.user(request)
    if isinstance(user, str) and user:
        attributes["user.id"] = user
    return attributes


def _without_omitted(request: Any) -> Any:
    """A request snapshot without the client's "not given" sentinels (`OMITTED` in it)."""
    if type(request) is dict and OMITTED in request.values():
        return {key: value for key, value in request.items() if value is not OMITTED}
    return request


def _read_snapshot(call: Call) -> dict[str, Any]:
    """The attributes of a call that took only its request snapshot (`Call.attributes` None), read
    as `read_request` would have read the request."""
    request = call.request = _without_omitted(call.request)
    attributes = call.attributes = request_attributes(call.operation, request, call.client)
    call.client = None
    return attributes


def record_attributes_py(record: tuple[Any, ...], settings: Settings) -> dict[str, Any]:
    """All span attributes of a record the hot path queued as a tuple (patching.wrap_method): (operation, start ns,
    duration ns, request snapshot, attribution, context, client, the values plucked off the response). What
    `span_attributes` gives the same call as a Call, without making one. The reference of `record_attributes`."""
    operation, _, _, request, attribution, _, client, values = record
    request = _without_omitted(request)
    attributes = request_attributes(operation, request, client)
    _add_hashes(attributes, operation, request)
    write_response(attributes, *operation.response_values(values))
    attributes.update(_attribution_items(settings, attribution))
    return attributes



def _record_attributes_c(record: tuple[Any, ...], settings: Settings) -> dict[str, Any]:
    """`record_attributes_py` in one C call for the operations the C module reads (`Operation.record_kind`), and
    for the requests and responses of the usual shapes; anything else (the C code declines) goes the Python way."""
    operation, _, _, request, attribution, _, client, values = record
    kind = operation.record_kind
    if kind:
        attributes = speedups.record_attributes(  # type: ignore[union-attr]
            kind, _fixed_attributes(operation, client), request, values, _request_head(operation), _prefix_hashes,
            PREFIX_HASHES_KEPT, _attribution_items(settings, attribution),
        )
        if attributes is not None:
            return attributes
    return record_attributes_py(record, settings)

def _add_hashes(attributes: dict[str, Any], operation: Operation, request: Any) -> None:
    try:
        prefix_hash, request_hash = _hash_pair(operation, request)
    except Exception:  # the span goes out without its hashes
        log_once("hash", "observatory_sdk: could not hash a request", exc_info=True)
        return
    if prefix_hash is not None:
        attributes["observatory.prompt_prefix_hash"] = prefix_hash
    if request_hash is not None:
        attributes["observatory.request_hash"] = request_hash


_ATTRIBUTION_KEPT = 256
_attribution_cache: dict[int, tuple[Mapping[str, str], Mapping[str, str], tuple[tuple[str, str], ...]]] = {}
"""Span attributes of an attribution, by the identity of the `attribute()` mapping (one object for all the calls
of a block); kept with the mapping itself, so an id reused by another object never matches."""


def _attribution_items(settings: Settings, attribution: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The attribution attributes: the init() defaults under the active `attribute()` values."""
    defaults = settings.default_attribution
    entry = _attribution_cache.get(id(attribution))
    if entry is not None and entry[0] is attribution and entry[1] is defaults:
        return entry[2]
    items = tuple((_ATTRIBUTION_KEYS[key], value) for key, value in {**defaults, **attribution}.items())
    if len(_attribution_cache) >= _ATTRIBUTION_KEPT:
        _attribution_cache.clear()
    _attribution_cache[id(attribution)] = (attribution, defaults, items)
    return items


PREFIX_HASHES_KEPT = 256
_prefix_hashes: dict[str, str] = {}
"""Prompt-prefix hashes by canonical text: an app sends the same few prefixes (system prompts, tools) again and
again, so most calls look theirs up instead of hashing it. Whichever thread builds spans uses it: each dict
operation is atomic, and an entry lost to a concurrent clear() costs one hash."""


def request_hashes(operation: Operation, request: Mapping[str, Any]) -> dict[str, str]:
    """`observatory.prompt_prefix_hash` and `observatory.request_hash` of a request snapshot (see
    `read_request`); run when spans are built, many calls in a row."""
    prefix_hash, request_hash = _hash_pair(operation, request)
    hashes: dict[str, str] = {}
    if prefix_hash is not None:
        hashes["observatory.prompt_prefix_hash"] = prefix_hash
    if request_hash is not None:
        hashes["observatory.request_hash"] = request_hash
    return hashes


def _hash_pair_py(operation: Operation, request: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(prompt-prefix hash, request hash) of a request snapshot, each None when it cannot be written: the
    reference, and what runs when the C module (`_speedups.request_digests`) is not built."""
    prefix_hash = None
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
    request_text = canonical_text(_semantic(request), seen, depth=1)  # one level down, under "request"
    # The canonical form of {"provider": ..., "operation": ..., "request": the request}, keys sorted, written
    # without building that mapping.
    return prefix_hash, None if request_text is None else digest(_request_head(operation) + request_text)


def _semantic(request: Mapping[str, Any]) -> Mapping[str, Any]:
    if NON_SEMANTIC_FIELDS.isdisjoint(request):  # the usual case: nothing to leave out, no copy
        return request
    return {key: value for key, value in request.items() if key not in NON_SEMANTIC_FIELDS}


def _hash_pair_c(operation: Operation, request: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """`_hash_pair_py`, its texts written and hashed in one C call."""
    return speedups.request_digests(  # type: ignore[union-attr]
        operation.prompt_prefix(request), _semantic(request), _request_head(operation), _prefix_hashes, PREFIX_HASHES_KEPT
    )


def _hash_pair_in_use() -> Any:
    """The C pair when the C module is built and the canonical texts are written in C (see fingerprints)."""
    from . import fingerprints

    return _hash_pair_c if speedups is not None and fingerprints._c_text is not None else _hash_pair_py


_hash_pair = _hash_pair_in_use()
if _hash_pair is _hash_pair_c:
    speedups.configure_records(NON_SEMANTIC_FIELDS, OMITTED)  # type: ignore[union-attr]
    record_attributes = _record_attributes_c
else:
    record_attributes = record_attributes_py


def write_response(
    attributes: dict[str, Any],
    response_id: Any,
    model: Any,
    finish_reasons: Any,
    input_tokens: Any = None,
    cache_read: Any = None,
    cache_creation: Any = None,
    output_tokens: Any = None,
    reasoning: Any = None,
) -> None:
    """Add the attributes read off a response (or a stream): its id, model, finish reasons and token counts (in
    the SDK's convention, see Usage); what is None or empty is left out."""
    if response_id:
        attributes["gen_ai.response.id"] = response_id
    if model:
        attributes["gen_ai.response.model"] = model
    if finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = tuple(finish_reasons)
    if input_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = input_tokens
    if cache_read is not None:
        attributes["gen_ai.usage.cache_read.input_tokens"] = cache_read
    if cache_creation is not None:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = cache_creation
    if output_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = output_tokens
    if reasoning is not None:
        attributes["gen_ai.usage.reasoning.output_tokens"] = reasoning


def response_attributes(summary: Summary, settings: Settings) -> dict[str, Any]:
    """Attributes read off the response (or the stream) when the call ends."""
    attributes: dict[str, Any] = {}
    usage = summary.usage
    counts = (
        ()
        if usage is None
        else (usage.input_tokens, usage.cache_read, usage.cache_creation, usage.output_tokens, usage.reasoning)
    )
    write_response(attributes, summary.response_id, summary.model, summary.finish_reasons, *counts)
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
    Runs on whichever thread builds spans, which owns the call by then, so the call's own dict is completed."""
    attributes = call.attributes
    if attributes is None:
        attributes = _read_snapshot(call)
    if call.request is not None:
        _add_hashes(attributes, call.operation, call.request)
        call.request = None
    if call.summary is not None:
        attributes.update(response_attributes(call.summary, settings))
    attributes.update(_attribution_items(settings, call.attribution))
    if call.first_chunk_ns is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = call.first_chunk_ns / 1e9
    if call.error_type is not None:
        attributes["error.type"] = call.error_type
        if call.status_code is not None:
            attributes["http.response.status_code"] = call.status_code
    return attributes
