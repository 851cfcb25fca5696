"""Recommendation: move offline work to the batch API.

Per (feature, environment, provider, model) whose catalog entry has a "batch" variant, calls with status other
than error that are not interactive (calls answered from the application's own cache never reached a provider and
are left out; one aggregate query over the window's calls):
(a) marked: the feature or environment contains one of BATCH_WORDS as a word (case-insensitive; a plural "s" or
    "es" is allowed, so "nightly-report", "ETL", "evals" match and "jobseeker" or "evaluate" do not), confidence
    high; or
(b) inferred: no streaming call, at least MIN_BURST_CALLS calls, at least BURST_SHARE of them in the
    BURST_HOURS busiest hours of the day (UTC), and those hours recur: one of them has calls on at least
    MIN_BURST_DAYS different days (a one-off burst on a single day is no schedule). Confidence low.
Saving = what the calls cost at on-demand prices − what the same tokens cost at batch prices, class by class
(uncached input, cached read, cache write, output, reasoning), priced per long-context tier (tiered_usage).
"""

from __future__ import annotations

import re
from datetime import UTC
from decimal import Decimal

from django.db.models import Count, Q
from django.db.models.functions import ExtractHour, TruncDate

from billing.pricing.at_ingest import catalog_cache
from billing.recommendations.base import (
    Confidence,
    Finding,
    Kind,
    Window,
    dollars,
    per_million,
    scope_aggregates,
    usd,
)
from billing.recommendations.tiered_usage import (
    ZERO,
    Group,
    clamped_tokens,
    priced,
    tier_bucket,
    tier_thresholds,
    token_classes,
    usage_sums,
)

BATCH = "batch"
BATCH_WORDS = ("batch", "nightly", "offline", "backfill", "etl", "cron", "eval", "job")
BATCH_WORD = re.compile(r"(?<![a-z])(" + "|".join(BATCH_WORDS) + r")(?:e?s)?(?![a-z])", re.IGNORECASE)
MIN_BURST_CALLS = 500
BURST_HOURS = 3
BURST_SHARE = Decimal("0.8")
MIN_BURST_DAYS = 3


def batch_word(*names: str) -> str | None:
    """The first BATCH_WORDS word found in the names, lower-cased."""
    for name in names:
        match = BATCH_WORD.search(name or "")
        if match:
            return match.group(1).lower()
    return None


def batch_api(window: Window) -> list[Finding]:
    rows = (window.calls.exclude(status="error").exclude(model_name="").filter(app_cache_hit=False)
            .annotate(tier=tier_bucket(tier_thresholds()), hour=ExtractHour("start_time", tzinfo=UTC), **clamped_tokens())
            .values("feature", "environment", "provider", "model_name", "tier", "hour")
            .annotate(**scope_aggregates(), streamed=Count("id", filter=Q(streaming=True)),
                      days=Count(TruncDate("start_time", tzinfo=UTC), distinct=True), **usage_sums()))
    groups: dict[tuple, Group] = {}
    for row in rows:
        groups.setdefault((row["feature"], row["environment"], row["provider"], row["model_name"]), Group()).add(row)

    findings = []
    for (feature, environment, provider, model), group in groups.items():
        spec = catalog_cache.index.lookup(provider, model)
        if spec is None or spec.variant(BATCH) is None:
            continue
        word = batch_word(feature, environment)
        busiest = sorted(group.hours.items(), key=lambda item: (-item[1], item[0]))[:BURST_HOURS]
        busiest_share = Decimal(sum(count for _, count in busiest)) / group.calls
        recurring_days = max(group.hour_days[hour] for hour, _ in busiest)
        bursty = (group.streamed == 0 and group.calls >= MIN_BURST_CALLS and busiest_share >= BURST_SHARE
                  and recurring_days >= MIN_BURST_DAYS)
        if word is None and not bursty:
            continue
        on_demand = [priced(usage, spec, bucket) for bucket, usage in group.buckets.items()]
        batched = [priced(usage, spec, bucket, BATCH) for bucket, usage in group.buckets.items()]
        on_demand_cost = sum((breakdown.total for breakdown in on_demand), ZERO)
        batch_cost = sum((breakdown.total for breakdown in batched), ZERO)
        saving = on_demand_cost - batch_cost
        if saving <= 0:
            continue
        before, after = token_classes(on_demand), token_classes(batched)
        terms = " + ".join(
            f"{name.replace('_', ' ')} {before.get(name, after.get(name, (0, ZERO)))[0]:,} tokens "
            f"({dollars(before.get(name, (0, ZERO))[1])} → {dollars(after.get(name, (0, ZERO))[1])})"
            for name in dict.fromkeys([*before, *after])
        )
        reason = f"marked “{word}”" if word else f"{busiest_share:.0%} of calls in {len(busiest)} hours of the day"
        batch_prices = spec.variant(BATCH).prices
        findings.append(Finding(
            kind=Kind.BATCH_API, fingerprint=f"{Kind.BATCH_API}:{feature}:{environment}:{provider}:{model}",
            title=(f"Send “{feature or 'unnamed feature'}”{f' ({environment})' if environment else ''} "
                   f"through the {model} batch API"),
            window_savings_usd=saving, confidence=Confidence.HIGH if word else Confidence.LOW,
            formula=(f"on-demand − batch prices of the {group.calls:,} calls ({reason}): {terms} "
                     f"= {dollars(on_demand_cost)} − {dollars(batch_cost)}"),
            evidence={"calls": group.calls, "provider": provider, "environment": environment,
                      "reason": "marked" if word else "bursty", "matched_word": word or "",
                      "streaming_calls": group.streamed,
                      "busiest_hours_utc": sorted(hour for hour, _ in busiest),
                      "busiest_hours_share": float(round(busiest_share, 4)), "busiest_hours_days": recurring_days,
                      "input_tokens": group.tokens("input_tokens"), "cached_input_tokens": group.tokens("cached_tokens"),
                      "cache_write_tokens": group.tokens("write_tokens"), "output_tokens": group.tokens("output_tokens"),
                      "on_demand_cost_usd": usd(on_demand_cost), "batch_cost_usd": usd(batch_cost),
                      "on_demand_price_per_million": {"input": per_million(spec.input), "output": per_million(spec.output)},
                      "batch_price_per_million": {"input": per_million(batch_prices.input or spec.input),
                                                  "output": per_million(batch_prices.output or spec.output)}},
            feature=feature, model=model, **group.scope(),
        ))
    return findings
