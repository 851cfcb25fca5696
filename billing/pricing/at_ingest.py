"""Pricing a call the moment it is ingested, from the catalog version in force at its start time
(`price_for_ingest`, which billing registers with ingest at start-up: see billing/apps.py).

A process-wide cache holds the catalog index; it is rebuilt when prices change (checked at most
every few seconds), so ingest never queries prices per call.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fnmatch import fnmatchcase

from django.db.models import Max

from billing.models import Price, PriceOverride
from billing.pricing.calls import TOTAL_QUANTUM, CallUsage, PriceIndex, apply_override, implausibility, price_call
from billing.pricing.calls import PriceOverride as OverrideTerms
from billing.pricing.catalog import PriceSpec
from billing.pricing.rows import spec_from_price
from ingest.models import CostStatus
from ingest.records import CallFields, IngestCost

REFRESH_SECONDS = 5.0
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class _Version:
    price_id: int
    effective_from: datetime
    effective_to: datetime | None
    spec: PriceSpec


class CatalogCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._checked = 0.0
        self.index = PriceIndex([])
        self._versions: dict[tuple[str, str], list[_Version]] = {}
        self._overrides: dict[int, list[PriceOverride]] = {}
        self._override_memo: dict[tuple, PriceSpec] = {}

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < REFRESH_SECONDS:
            return
        stamp = (
            Price.objects.aggregate(n=Max("id"), u=Max("updated_at"), e=Max("effective_to")).values(),
            PriceOverride.objects.aggregate(n=Max("id")).values(),
        )
        stamp = (tuple(stamp[0]), tuple(stamp[1]), Price.objects.count(), PriceOverride.objects.count())
        self._checked = now
        if stamp == self._stamp and not force:
            return
        versions: dict[tuple[str, str], list[_Version]] = {}
        current = []
        for row in Price.objects.order_by("effective_from"):
            spec = spec_from_price(row)
            versions.setdefault((row.provider, row.key), []).append(
                _Version(row.pk, row.effective_from, row.effective_to, spec)
            )
            if row.effective_to is None:
                current.append(spec)
        overrides: dict[int, list[PriceOverride]] = {}
        for override in PriceOverride.objects.all():
            overrides.setdefault(override.organization_id, []).append(override)
        with self._lock:
            self.index = PriceIndex(current)
            self._versions = versions
            self._overrides = overrides
            self._override_memo = {}
            self._stamp = stamp

    def version_at(self, spec: PriceSpec, when: datetime) -> _Version | None:
        history = self._versions.get((spec.provider, spec.key), [])
        for version in reversed(history):
            if version.effective_from <= when and (version.effective_to is None or when < version.effective_to):
                return version
        return history[0] if history and when < history[0].effective_from else None

    def with_override(self, organization_id: int, version: _Version, when: datetime) -> PriceSpec:
        overrides = self._overrides.get(organization_id)
        if not overrides:
            return version.spec
        for override in overrides:
            if override.provider and override.provider != version.spec.provider:
                continue
            pattern = override.model_pattern
            if not (fnmatchcase(version.spec.model, pattern) or fnmatchcase(version.spec.key, pattern)):
                continue
            if not (override.effective_from <= when and (override.effective_to is None or when < override.effective_to)):
                continue
            memo_key = (override.pk, version.price_id)
            spec = self._override_memo.get(memo_key)
            if spec is None:
                spec = apply_override(version.spec, override_terms(override))
                self._override_memo[memo_key] = spec
            return spec
        return version.spec


def override_terms(override: PriceOverride) -> OverrideTerms:
    return OverrideTerms(
        discount_percent=override.discount_percent,
        input=override.input,
        cached_input_read=override.cached_input_read,
        cache_write=override.cache_write,
        cache_write_1h=override.cache_write_1h,
        output=override.output,
        reasoning=override.reasoning,
    )


catalog_cache = CatalogCache()


def usage_of(call) -> CallUsage:
    """CallUsage from a CallFields or an LLMCall, clamping inconsistent counts instead of failing."""
    input_tokens = call.input_tokens
    cached = min(call.cached_input_tokens, input_tokens)
    write = min(call.cache_write_tokens, input_tokens - cached)
    return CallUsage(
        input_tokens=input_tokens,
        output_tokens=call.output_tokens,
        cached_input_tokens=cached,
        cache_write_tokens=write,
        reasoning_tokens=min(call.reasoning_tokens, call.output_tokens),
        status=call.status,
    )


def quick_total(call, price: PriceSpec) -> Decimal | None:
    """The same total as price_call for the common case (standard prices, below any long-context tier),
    without building a breakdown; None when the full price_call is needed."""
    if price.tiers and call.input_tokens > min(tier.threshold for tier in price.tiers):
        return None
    cached = min(call.cached_input_tokens, call.input_tokens)
    write = min(call.cache_write_tokens, call.input_tokens - cached)
    reasoning = min(call.reasoning_tokens, call.output_tokens)
    total = (call.input_tokens - cached - write) * price.input
    if cached:
        total += cached * (price.cached_input_read if price.cached_input_read is not None else price.input)
    if write:
        total += write * (price.cache_write if price.cache_write is not None else price.input)
    if price.reasoning is not None and reasoning:
        total += (call.output_tokens - reasoning) * price.output + reasoning * price.reasoning
    else:
        total += call.output_tokens * price.output
    return total.quantize(TOTAL_QUANTUM, rounding=ROUND_HALF_EVEN)


def usage_missing(call) -> bool:
    """A successful call that reports no tokens at all was not free: its usage never reached us (typically an
    OpenAI stream without `stream_options={"include_usage": True}`). It gets its own status, never a $0 "priced"."""
    return (call.status == "ok" and not call.app_cache_hit and call.input_tokens == 0 and call.output_tokens == 0
            and call.provided_cost_usd is None)


def cost_of(organization_id: int, call, when: datetime) -> IngestCost:
    """Cost of one call at the prices in force at `when` (pure apart from the cached catalog)."""
    spec = catalog_cache.index.resolve(call.provider, call.response_model, call.request_model)
    version = catalog_cache.version_at(spec, when) if spec is not None else None
    if implausibility(call.input_tokens, call.output_tokens, call.duration_ms, version.spec if version else None):
        return IngestCost(None, CostStatus.IMPLAUSIBLE, version.price_id if version else None)
    if usage_missing(call):
        return IngestCost(None, CostStatus.USAGE_MISSING, version.price_id if version else None)
    if version is None:
        if call.provided_cost_usd is not None:
            return IngestCost(call.provided_cost_usd, CostStatus.PROVIDED, None)
        if call.input_tokens == 0 and call.output_tokens == 0:
            return IngestCost(ZERO, CostStatus.FREE, None)
        return IngestCost(None, CostStatus.UNKNOWN_MODEL, None)
    priced = catalog_cache.with_override(organization_id, version, when)
    total = quick_total(call, priced)
    if total is None:
        total = price_call(usage_of(call), priced).total
    if call.app_cache_hit:
        return IngestCost(ZERO, CostStatus.FREE, version.price_id, cost_avoided_usd=total)
    return IngestCost(total, CostStatus.PRICED, version.price_id)


def price_for_ingest(organization_id: int, call: CallFields) -> IngestCost:
    catalog_cache.refresh()
    return cost_of(organization_id, call, call.start_time)
