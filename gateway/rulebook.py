"""An organization's cache policies and routing rules as the gateway matches them: plain data, loaded from the
database at most every RULES_SECONDS per process, so matching a call costs no round trip. A change made in the web
app reaches every gateway process within RULES_SECONDS.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from gateway.models import UpstreamHost
from gateway.rules import CachePolicy, RoutingRule
from gateway.upstreams import host_allowed
from ingest.model_names import normalize_model_name

RULES_SECONDS = 5.0


@dataclass(frozen=True)
class Match:
    """team and product as slugs and names (lower case), feature as given; empty matches any."""

    team: frozenset[str] = frozenset()
    product: frozenset[str] = frozenset()
    feature: str = ""

    def takes(self, team: str, product: str, feature: str) -> bool:
        return ((not self.team or team.lower() in self.team) and (not self.product or product.lower() in self.product)
                and (not self.feature or feature == self.feature))


@dataclass(frozen=True)
class Policy:
    match: Match
    ttl_seconds: int


@dataclass(frozen=True)
class Rule:
    id: int
    match: Match
    from_model: str
    to_model: str
    share_percent: Decimal
    split: str
    fallback_model: str
    fallback_base_url: str  # "" or a base URL whose host was allowed when the rules were loaded
    fallback_provider: str = ""  # "" keeps the call's provider; "openai" / "anthropic" retries there, translated

    def takes_model(self, model: str) -> bool:
        return not self.from_model or self.from_model.lower() in normalize_model_name(model)


@dataclass(frozen=True)
class Rulebook:
    policies: tuple[Policy, ...] = ()
    rules: tuple[Rule, ...] = ()


def _match(row) -> Match:
    team = frozenset({row.team.slug.lower(), row.team.name.lower()}) if row.team_id else frozenset()
    product = frozenset({row.product.slug.lower(), row.product.name.lower()}) if row.product_id else frozenset()
    return Match(team, product, row.feature)


def load(organization_id: int) -> Rulebook:
    """The organization's enabled cache policies and active routing rules (newest rule first: it wins)."""
    policies = tuple(Policy(_match(p), p.ttl_seconds) for p in CachePolicy.objects.filter(
        organization_id=organization_id, enabled=True).select_related("team", "product"))
    hosts = frozenset(UpstreamHost.objects.filter(organization_id=organization_id).values_list("host", flat=True))
    rules = []
    for rule in RoutingRule.objects.filter(organization_id=organization_id).exclude(
            status=RoutingRule.Status.ROLLED_BACK).select_related("team", "product").order_by("-created_at", "-id"):
        fallback_url = rule.fallback_base_url.rstrip("/")
        if fallback_url and not host_allowed(fallback_url, hosts):
            fallback_url = ""  # a host taken off the allow-list is never called
        rules.append(Rule(rule.id, _match(rule), rule.from_model, rule.to_model, rule.share_percent, rule.split,
                          rule.fallback_model, fallback_url, rule.fallback_provider))
    return Rulebook(policies, tuple(rules))


def fallback_host(url: str) -> str:
    return urlsplit(url).netloc


class RulebookCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[float, Rulebook]] = {}

    def peek(self, organization_id: int) -> Rulebook | None:
        hit = self._entries.get(organization_id)
        if hit is not None and time.monotonic() - hit[0] < RULES_SECONDS:
            return hit[1]
        return None

    def load(self, organization_id: int) -> Rulebook:
        book = load(organization_id)
        with self._lock:
            self._entries[organization_id] = (time.monotonic(), book)
        return book

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


rulebooks = RulebookCache()


def call_scope(exchange) -> tuple[str, str, str]:
    """(team, product, feature) of a call as the gateway sees it: the headers, else the key's defaults."""
    key = exchange.api_key
    team = exchange.attribution.get("team") or (key.default_team.slug if key.default_team_id else "")
    product = exchange.attribution.get("product") or (key.default_product.slug if key.default_product_id else "")
    return team, product, exchange.attribution.get("feature", "")
