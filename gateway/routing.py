"""Routing rules at work on a call (the rules themselves: gateway.rules.RoutingRule, loaded by gateway.rulebook).

Before the upstream call the newest active rule matching the call's team / product / feature and model picks the
arm: `share_percent` of calls take the rule's `to_model` (arm "canary"), the rest keep theirs (arm "control"). The
split is by request id when the client sends one (`x-observatory-request-id`, `x-request-id` or
`idempotency-key`: the same id always takes the same arm) and otherwise random. The call record says which rule and
arm served it, and the model the client asked for (attributes `observatory.route.rule`, `observatory.route.arm`,
`observatory.request_model`).

After it, a provider's 429, 5xx or timeout is retried once on the rule's fallback model and/or base URL; the failed
attempt is recorded as the failed call it was, the retry with `observatory.route.fallback_from`. A rule whose
fallback names the other provider retries a chat call on that provider's chat API — the organization's upstream for
it, with its stored key — the request translated and the answer translated back (gateway.translate); the retry is
recorded as a call to the provider that served it. Without a stored key for that provider there is no retry: the
client gets the first failure, and the gateway log says why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import httpx
import orjson

from gateway.pipeline import Exchange, Pipeline
from gateway.routes import route_for
from gateway.rulebook import Rule, call_scope, fallback_host, rulebooks
from gateway.translate import Translation
from gateway.upstreams import Upstream, UpstreamRefused, upstream_cache

log = logging.getLogger(__name__)

REQUEST_ID_HEADERS = ("x-observatory-request-id", "x-request-id", "idempotency-key")
RULE, ARM, REQUEST_MODEL, FALLBACK_FROM = ("observatory.route.rule", "observatory.route.arm",
                                           "observatory.request_model", "observatory.route.fallback_from")
CANARY, CONTROL = "canary", "control"


@dataclass(frozen=True)
class Fallback:
    model: str  # "" keeps the model
    upstream: Upstream | None  # None keeps the upstream
    provider: str = ""  # the other provider's chat API, translated both ways; "" keeps the provider


@dataclass(frozen=True)
class UpstreamFailure:
    """The provider could not be reached (502) or did not answer in time (504)."""

    status: int
    error_type: str
    message: str


def bucket(rule_id: int, request_id: str) -> Decimal:
    """Where a request id falls in [0, 100): the same id and rule always give the same point, ids spread evenly."""
    digest = hashlib.sha256(f"{rule_id}:{request_id}".encode()).digest()
    return Decimal(int.from_bytes(digest[:8], "big") % 10_000) / 100


def takes_canary(rule: Rule, request_id: str | None, draw: Callable[[], float] = random.random) -> bool:
    if rule.share_percent >= 100:
        return True
    if rule.share_percent <= 0:
        return False
    if rule.split == "request_id" and request_id:
        return bucket(rule.id, request_id) < rule.share_percent
    return Decimal(str(draw() * 100)) < rule.share_percent


def rule_for(rules: tuple[Rule, ...], team: str, product: str, feature: str, model: str) -> Rule | None:
    return next((r for r in rules if r.match.takes(team, product, feature) and r.takes_model(model)), None)


class Router:
    """The before-hook choosing a call's arm; `in_db_thread` runs the (rare) rulebook load off the event loop."""

    def __init__(self, in_db_thread: Callable[..., Awaitable]) -> None:
        self.in_db_thread = in_db_thread

    async def __call__(self, exchange: Exchange) -> None:
        organization_id = exchange.api_key.organization_id
        book = rulebooks.peek(organization_id)
        if book is None:
            try:
                book = await self.in_db_thread(rulebooks.load, organization_id)
            except Exception:  # rules unreadable (database away): the call goes as the client sent it
                return None
        if not book.rules:
            return None
        rule = rule_for(book.rules, *call_scope(exchange), exchange.model)
        if rule is None:
            return None
        request_id = next((exchange.headers.get(h) for h in REQUEST_ID_HEADERS if exchange.headers.get(h)), None)
        canary = bool(rule.to_model) and takes_canary(rule, request_id)
        exchange.attributes.update({RULE: str(rule.id), ARM: CANARY if canary else CONTROL,
                                    REQUEST_MODEL: exchange.model})
        if canary and rule.to_model != exchange.model:
            exchange.rewrite(model=rule.to_model)
        route = exchange.route
        if rule.fallback_provider and rule.fallback_provider != route.provider:
            if route.operation == "chat" and rule.fallback_model:  # chat is the one operation both providers share
                exchange.fallback = Fallback(rule.fallback_model, None, rule.fallback_provider)
        elif rule.fallback_model or rule.fallback_base_url:
            upstream = None
            if rule.fallback_base_url:
                current = exchange.upstream
                upstream = Upstream(rule.fallback_base_url, fallback_host(rule.fallback_base_url), current.api_key)
            exchange.fallback = Fallback(rule.fallback_model, upstream)
        return None


def retryable(outcome: httpx.Response | UpstreamFailure) -> bool:
    if isinstance(outcome, UpstreamFailure):
        return True
    return outcome.status_code == 429 or outcome.status_code >= 500


async def with_fallback(exchange: Exchange, outcome: httpx.Response | UpstreamFailure,
                        send: Callable[[], Awaitable[httpx.Response | UpstreamFailure]], pipeline: Pipeline,
                        error_type_of: Callable[[int, bytes], str],
                        in_db_thread: Callable[..., Awaitable]) -> httpx.Response | UpstreamFailure:
    """The upstream's answer, or the fallback's when the first failed in a way a fallback can help with. The failed
    attempt goes to the after-hooks (the recorder) as a failed call of its own."""
    fallback = exchange.fallback
    if not isinstance(fallback, Fallback) or not retryable(outcome):
        return outcome
    exchange.fallback = None  # once
    other = None
    if fallback.provider:
        other = await provider_upstream(exchange.api_key.organization_id, fallback.provider, in_db_thread)
        if other is None:
            return outcome
    if isinstance(outcome, UpstreamFailure):
        status, error_type = outcome.status, outcome.error_type
    else:
        try:
            body = await outcome.aread()
        except httpx.HTTPError:
            body = b""
        finally:
            await outcome.aclose()
        status, error_type = outcome.status_code, error_type_of(outcome.status_code, body)
    failed = dataclasses.replace(exchange, attributes=dict(exchange.attributes), capture=None, cache_key="",
                                 usage=dataclasses.replace(exchange.usage))
    failed.finished(status, error_type)
    pipeline.after(failed)
    exchange.attributes[FALLBACK_FROM] = exchange.model
    if other is not None:
        cross(exchange, fallback.provider, other, fallback.model)
        return await send()
    if fallback.upstream is not None:
        exchange.upstream = fallback.upstream
    if fallback.model and fallback.model != exchange.model:
        exchange.rewrite(model=fallback.model)
    return await send()


async def provider_upstream(organization_id: int, provider: str,
                            in_db_thread: Callable[..., Awaitable]) -> Upstream | None:
    """The organization's upstream for `provider` with its stored key, for a fallback to it; None (and a log line
    saying why) when there is none to use — the client's own key is for the other provider, so it cannot serve."""
    upstream = upstream_cache.peek(organization_id, provider)
    if upstream is None:
        try:
            upstream = await in_db_thread(upstream_cache.load, organization_id, provider)
        except Exception as exc:  # the database is away: no fallback, the first failure stands
            upstream = UpstreamRefused(f"its settings could not be read ({type(exc).__name__})")
    if isinstance(upstream, UpstreamRefused):
        reason = str(upstream)
    elif not upstream.api_key:
        reason = f"the organization stores no {provider} API key for the gateway"
    else:
        return upstream
    log.warning("gateway: no fallback to %s for organization %s: %s", provider, organization_id, reason)
    return None


def cross(exchange: Exchange, provider: str, upstream: Upstream, model: str) -> None:
    """Move a chat call to `provider`'s chat API: the body translated, the answer to be translated back. The answer
    is not kept by the response cache: a hit would be recorded as a call to the client's provider."""
    translation = Translation(exchange.route.provider, provider,
                              include_usage=exchange.streaming and not exchange.hidden_usage)
    exchange.body = translation.request({**exchange.body, "model": model})
    exchange.raw, exchange.model = orjson.dumps(exchange.body), model
    exchange.route, exchange.upstream, exchange.translation = route_for(provider, "chat"), upstream, translation
    exchange.hidden_usage = False  # the translator gives the client the usage chunk it asked for, or none
    exchange.cache_key, exchange.capture = "", None
