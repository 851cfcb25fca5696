"""Routing rules at work on a call (the rules themselves: gateway.rules.RoutingRule, loaded by gateway.rulebook).

Before the upstream call the newest active rule matching the call's team / product / feature and model picks the
arm: `share_percent` of calls take the rule's `to_model` (arm "canary"), the rest keep theirs (arm "control"). The
split is by request id when the client sends one (`x-observatory-request-id`, `x-request-id` or
`idempotency-key`: the same id always takes the same arm) and otherwise random. The call record says which rule and
arm served it, and the model the client asked for (attributes `observatory.route.rule`, `observatory.route.arm`,
`observatory.request_model`).

After it, a provider's 429, 5xx or timeout is retried once on the rule's fallback model and/or base URL; the failed
attempt is recorded as the failed call it was, the retry with `observatory.route.fallback_from`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import httpx

from gateway.pipeline import Exchange, Pipeline
from gateway.rulebook import Rule, call_scope, fallback_host, rulebooks
from gateway.upstreams import Upstream

REQUEST_ID_HEADERS = ("x-observatory-request-id", "x-request-id", "idempotency-key")
RULE, ARM, REQUEST_MODEL, FALLBACK_FROM = ("observatory.route.rule", "observatory.route.arm",
                                           "observatory.request_model", "observatory.route.fallback_from")
CANARY, CONTROL = "canary", "control"


@dataclass(frozen=True)
class Fallback:
    model: str  # "" keeps the model
    upstream: Upstream | None  # None keeps the upstream


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
        if rule.fallback_model or rule.fallback_base_url:
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
                        error_type_of: Callable[[int, bytes], str]) -> httpx.Response | UpstreamFailure:
    """The upstream's answer, or the fallback's when the first failed in a way a fallback can help with. The failed
    attempt goes to the after-hooks (the recorder) as a failed call of its own."""
    fallback = exchange.fallback
    if not isinstance(fallback, Fallback) or not retryable(outcome):
        return outcome
    exchange.fallback = None  # once
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
    if fallback.upstream is not None:
        exchange.upstream = fallback.upstream
    if fallback.model and fallback.model != exchange.model:
        exchange.rewrite(model=fallback.model)
    return await send()
