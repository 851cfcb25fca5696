"""Recommendation: trim oversized contexts. Two triggers per (feature, provider, model), calls with status other
than error (calls answered from the application's own cache left out; one query over the window's calls):
(a) percentiles: at least MIN_TRIM_CALLS calls, p95 input ≥ P95_OVER_MEDIAN × median and ≥ MIN_P95_INPUT_TOKENS.
    Estimate: every call above TRIM_TO_MEDIAN × median is trimmed to it, so saving = Σ (input − 2 × median)
    over those calls × the model's input price. Confidence low (which tokens could go is a guess).
(b) long-context tier: calls whose input is above a threshold of the model's `tiers` (e.g. gemini-2.5-pro above
    200,000 tokens). Saving = their cost at the tier's prices − the same tokens at the base prices, i.e. what
    keeping each prompt under the threshold is worth, priced per tier (tiered_usage). Confidence medium.
    Fingerprint `context_trimming:tier:…`.
"""

from __future__ import annotations

from decimal import Decimal

from billing.pricing.at_ingest import catalog_cache
from billing.pricing.catalog import PriceSpec
from billing.recommendations.base import Confidence, Finding, Kind, Window, dollars, fetch, per_million, usd
from billing.recommendations.tiered_usage import (
    ZERO,
    Group,
    clamped_tokens,
    priced,
    tier_bucket,
    tier_thresholds,
)

MIN_TRIM_CALLS = 200
P95_OVER_MEDIAN = 4
MIN_P95_INPUT_TOKENS = 2_000
TRIM_TO_MEDIAN = 2


CONTEXT_SQL = """
WITH calls AS ({calls}),
stats AS (
    SELECT feature, provider, model_name, count(*) AS group_calls,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY input_tokens) AS median,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY input_tokens) AS p95
    FROM calls GROUP BY feature, provider, model_name
)
SELECT c.feature, c.provider, c.model_name, c.tier, s.group_calls, s.median, s.p95,
       count(*) AS calls, min(c.team) AS team_min, max(c.team) AS team_max, count(c.team) AS team_n,
       min(c.product) AS product_min, max(c.product) AS product_max, count(c.product) AS product_n,
       sum(c.input_tokens) AS input_tokens, sum(c.cached_read) AS cached_tokens, sum(c.cache_write) AS write_tokens,
       sum(c.output_tokens) AS output_tokens, sum(c.reasoning) AS reasoning_tokens,
       count(*) FILTER (WHERE c.input_tokens > %s * s.median) AS long_calls,
       coalesce(sum(c.input_tokens - round(%s * s.median)::bigint) FILTER (WHERE c.input_tokens > %s * s.median), 0)
           AS excess_tokens
FROM calls c JOIN stats s ON s.feature = c.feature AND s.provider = c.provider AND s.model_name = c.model_name
GROUP BY c.feature, c.provider, c.model_name, c.tier, s.group_calls, s.median, s.p95
"""


def context_trimming(window: Window) -> list[Finding]:
    calls, params = (window.calls.exclude(status="error").exclude(model_name="").filter(app_cache_hit=False)
                     .annotate(tier=tier_bucket(tier_thresholds()), **clamped_tokens())
                     .values("feature", "provider", "model_name", "team", "product", "tier", "input_tokens",
                             "cached_read", "cache_write", "output_tokens", "reasoning")
                     .query.sql_with_params())
    rows = fetch(CONTEXT_SQL.format(calls=calls), [*params, TRIM_TO_MEDIAN, TRIM_TO_MEDIAN, TRIM_TO_MEDIAN])
    by_scope: dict[tuple, list[dict]] = {}
    for row in rows:
        by_scope.setdefault((row["feature"], row["provider"], row["model_name"]), []).append(row)

    findings = []
    for (feature, provider, model), group_rows in by_scope.items():
        spec = catalog_cache.index.lookup(provider, model)
        if spec is None:
            continue
        finding = trim_long_tail(feature, provider, model, spec, group_rows)
        if finding:
            findings.append(finding)
        finding = stay_under_tier(feature, provider, model, spec, group_rows)
        if finding:
            findings.append(finding)
    return findings


def trim_long_tail(feature: str, provider: str, model: str, spec: PriceSpec, rows: list[dict]) -> Finding | None:
    first = rows[0]
    calls, median, p95 = first["group_calls"], Decimal(repr(first["median"])), Decimal(repr(first["p95"]))
    if calls < MIN_TRIM_CALLS or median <= 0 or p95 < P95_OVER_MEDIAN * median or p95 < MIN_P95_INPUT_TOKENS:
        return None
    group = Group()
    for row in rows:
        group.add(row)
    long_calls = sum(row["long_calls"] for row in rows)
    excess = sum(int(row["excess_tokens"]) for row in rows)
    saving = excess * spec.input
    if saving <= 0:
        return None
    target = int((TRIM_TO_MEDIAN * median).to_integral_value())
    return Finding(
        kind=Kind.CONTEXT_TRIMMING, fingerprint=f"{Kind.CONTEXT_TRIMMING}:{feature}:{provider}:{model}",
        title=f"Trim the longest prompts of “{feature or 'unnamed feature'}” on {model} to {target:,} tokens",
        window_savings_usd=saving, confidence=Confidence.LOW,
        formula=(f"{excess:,} input tokens above {TRIM_TO_MEDIAN} × the median of {median.normalize():,f} in "
                 f"{long_calls:,} of {calls:,} calls × ${per_million(spec.input)}/M"),
        evidence={"calls": calls, "provider": provider, "median_input_tokens": float(median),
                  "p95_input_tokens": float(p95), "trim_to_tokens": target, "trimmed_calls": long_calls,
                  "trimmed_tokens": excess, "input_price_per_million": per_million(spec.input)},
        feature=feature, model=model, **group.scope(),
    )


def stay_under_tier(feature: str, provider: str, model: str, spec: PriceSpec, rows: list[dict]) -> Finding | None:
    if not spec.tiers:
        return None
    lowest = spec.tiers[0].threshold
    group = Group()
    for row in rows:
        if row["tier"] is not None and row["tier"] >= lowest:
            group.add(row)
    if not group.calls:
        return None
    tiered = [priced(usage, spec, bucket) for bucket, usage in group.buckets.items()]
    base = [priced(usage, spec, None) for usage in group.buckets.values()]
    tier_cost = sum((breakdown.total for breakdown in tiered), ZERO)
    base_cost = sum((breakdown.total for breakdown in base), ZERO)
    saving = tier_cost - base_cost
    if saving <= 0:
        return None
    thresholds = sorted({breakdown.tier_threshold for breakdown in tiered if breakdown.tier_threshold is not None})
    tier = next(tier for tier in spec.tiers if tier.threshold == thresholds[0])
    return Finding(
        kind=Kind.CONTEXT_TRIMMING, fingerprint=f"{Kind.CONTEXT_TRIMMING}:tier:{feature}:{provider}:{model}",
        title=(f"Keep “{feature or 'unnamed feature'}” prompts on {model} under {lowest:,} tokens: "
               f"{group.calls:,} calls paid long-context prices"),
        window_savings_usd=saving, confidence=Confidence.MEDIUM,
        formula=(f"{group.calls:,} calls above {', '.join(f'{t:,}' for t in thresholds)} input tokens "
                 f"({group.tokens('input_tokens'):,} input, {group.tokens('output_tokens'):,} output tokens): "
                 f"{dollars(tier_cost)} at long-context prices (input ${per_million(tier.prices.input or spec.input)}/M, "
                 f"output ${per_million(tier.prices.output or spec.output)}/M) − {dollars(base_cost)} at base prices "
                 f"(input ${per_million(spec.input)}/M, output ${per_million(spec.output)}/M)"),
        evidence={"calls_over_threshold": group.calls, "provider": provider, "threshold_tokens": thresholds[0],
                  "thresholds_exceeded": thresholds, "input_tokens": group.tokens("input_tokens"),
                  "cached_input_tokens": group.tokens("cached_tokens"), "output_tokens": group.tokens("output_tokens"),
                  "tier_cost_usd": usd(tier_cost), "base_cost_usd": usd(base_cost),
                  "tier_price_per_million": {"input": per_million(tier.prices.input or spec.input),
                                             "output": per_million(tier.prices.output or spec.output)},
                  "base_price_per_million": {"input": per_million(spec.input), "output": per_million(spec.output)}},
        feature=feature, model=model, **group.scope(),
    )
