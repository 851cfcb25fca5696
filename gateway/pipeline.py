"""One call through the gateway, as plain data (`Exchange`), and the hooks around the upstream request.

`before_upstream` hooks run once the call is authenticated and parsed, in order; one may answer in place of the
provider (a budget refusing, a cache hit) by returning a response, or change the exchange (a routing rule rewriting
the model). `after_upstream` hooks run once the answer is complete — the whole body sent, or the stream ended or
cut — off the response path; the recorder is one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import orjson

from gateway.routes import Route
from gateway.translate import Translation
from gateway.upstreams import Upstream
from gateway.usage import Usage
from observatory.models import ApiKey

ATTRIBUTION_HEADERS = {
    "x-observatory-team": "team",
    "x-observatory-product": "product",
    "x-observatory-feature": "feature",
    "x-observatory-user": "end_user",
    "x-observatory-session": "session",
    "x-observatory-environment": "environment",
}


@dataclass
class Exchange:
    api_key: ApiKey
    route: Route
    upstream: Upstream
    body: dict
    raw: bytes  # the body as sent upstream: the client's own bytes unless something was rewritten
    model: str
    streaming: bool
    hidden_usage: bool = False  # the gateway asked for stream usage the client did not: its chunk is held back
    attribution: dict[str, str] = field(default_factory=dict)
    started_ns: int = field(default_factory=time.time_ns)  # wall clock: the call's start time
    started: float = field(default_factory=time.perf_counter)
    ttft_ms: float | None = None
    duration_ms: float = 0.0
    http_status: int | None = None
    error_type: str = ""
    usage: Usage = field(default_factory=Usage)
    # routing and the response cache (gateway.routing, gateway.cache) -------------------------------------------
    headers: Mapping[str, str] = field(default_factory=dict)  # the client's request headers
    attributes: dict[str, object] = field(default_factory=dict)  # recorded with the call: the rule and arm that served it
    fallback: object | None = None  # gateway.routing.Fallback: where a 429, 5xx or timeout is retried once
    translation: Translation | None = None  # a fallback to the other provider: `route` is now that provider's
    cache_key: str = ""  # set on a cache miss the response cache will fill
    cache_ttl: int = 0
    capture: list[bytes] | None = None  # the answer's bytes as the client got them, while the cache wants them
    cache_hit: bool = False  # answered from the response cache: recorded as an app-cache hit, cost avoided

    def rewrite(self, **fields: object) -> None:
        """Change fields of the request body before it goes upstream (a routing rule's model, stream options)."""
        self.body.update(fields)
        if "model" in fields:
            self.model = str(fields["model"])
        self.raw = orjson.dumps(self.body)

    @property
    def client_provider(self) -> str:
        """Whose shape the client's library reads: the route's provider, unless another provider took the call."""
        return self.translation.client if self.translation is not None else self.route.provider

    def first_byte(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000

    def finished(self, http_status: int, error_type: str = "") -> None:
        self.duration_ms = (time.perf_counter() - self.started) * 1000
        self.http_status = http_status
        self.error_type = error_type


def attribution_from(headers) -> dict[str, str]:
    """team / product / feature / end user / session / environment named by `x-observatory-*` headers."""
    found = {}
    for header, name in ATTRIBUTION_HEADERS.items():
        value = headers.get(header, "").strip()
        if value:
            found[name] = value[:200]
    return found


BeforeHook = Callable[[Exchange], Awaitable[object | None]]  # a response to answer with, or None to go on
AfterHook = Callable[[Exchange], None]


@dataclass
class Pipeline:
    before_upstream: list[BeforeHook] = field(default_factory=list)
    after_upstream: list[AfterHook] = field(default_factory=list)

    async def before(self, exchange: Exchange) -> object | None:
        for hook in self.before_upstream:
            answer = await hook(exchange)
            if answer is not None:
                return answer
        return None

    def after(self, exchange: Exchange) -> None:
        for hook in self.after_upstream:
            hook(exchange)
