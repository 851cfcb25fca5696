"""Recommendations about how the traffic is bought: the batch API, long contexts, and committed capacity.

Every kind reads the window [now - window_days, now) of one organization's calls in PostgreSQL (one aggregate query
over the calls per kind; calls answered from the application's own cache never reached a provider and are left
out). Savings found in the window are scaled to a month: monthly = window figure × 30 / window_days. Prices come
from the catalog (billing.pricing_at_ingest.catalog_cache) and are applied with billing.pricing.price_call, so
cached reads, cache writes, reasoning tokens, service variants and long-context tiers cost what they cost when a
call is priced: `input_tokens` includes cached reads and cache writes, a class without a price of its own falls
back to the next layer (tier of the variant, tier, variant, standard), and above a long-context threshold the
whole call is billed at the tier's prices. Calls are summed per price tier (TierBucket) so that this stays exact.
An organization's negotiated overrides are not applied.

Kinds:
- batch_api: per (feature, environment, provider, model) whose catalog entry has a "batch" variant, calls with
  status other than error that are not interactive:
  (a) marked: the feature or environment contains one of BATCH_WORDS as a word (case-insensitive; a plural "s" or
      "es" is allowed, so "nightly-report", "ETL", "evals" match and "jobseeker" or "evaluate" do not), confidence
      high; or
  (b) inferred: no streaming call, at least MIN_BURST_CALLS calls, at least BURST_SHARE of them in the
      BURST_HOURS busiest hours of the day (UTC), and those hours recur: one of them has calls on at least
      MIN_BURST_DAYS different days (a one-off burst on a single day is no schedule). Confidence low.
  Saving = what the calls cost at on-demand prices − what the same tokens cost at batch prices, class by class
  (uncached input, cached read, cache write, output, reasoning).
- context_trimming, two triggers per (feature, provider, model), calls with status other than error:
  (a) percentiles: at least MIN_TRIM_CALLS calls, p95 input ≥ P95_OVER_MEDIAN × median and ≥ MIN_P95_INPUT_TOKENS.
      Estimate: every call above TRIM_TO_MEDIAN × median is trimmed to it, so saving = Σ (input − 2 × median)
      over those calls × the model's input price. Confidence low (which tokens could go is a guess).
  (b) long-context tier: calls whose input is above a threshold of the model's `tiers` (e.g. gemini-2.5-pro above
      200,000 tokens). Saving = their cost at the tier's prices − the same tokens at the base prices, i.e. what
      keeping each prompt under the threshold is worth. Confidence medium. Fingerprint `context_trimming:tier:…`.
- provisioned_capacity: per (provider, model), the series of total tokens (input + output) in each hour of the
  window, hours without calls counting as 0. When its coefficient of variation (population stdev / mean) is at
  most MAX_CAPACITY_CV and the window spend (Σ cost_usd) scaled to a month is at least MIN_MONTHLY_SPEND_USD,
  commit to a baseline = the 10th-percentile hour (percentile_disc, zero hours included). Covered tokens =
  Σ min(hour tokens, baseline); saving = window spend × covered tokens / all tokens × COMMITTED_DISCOUNT.
  Confidence medium when the cv is at most STEADY_CV, else low.
Only findings worth at least MIN_MONTHLY_SAVINGS_USD a month are kept (see billing.recommendations).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import BigIntegerField, Case, Count, F, Q, Sum, Value, When
from django.db.models.functions import ExtractHour, Least, TruncDate

from billing.catalog import PriceSpec
from billing.models import Price
from billing.pricing import STANDARD, CallUsage, PriceBreakdown, price_call
from billing.pricing_at_ingest import catalog_cache
from billing.recommendations.base import (
    Confidence,
    Finding,
    Kind,
    Window,
    per_million,
    scope_aggregates,
    single,
    usd,
)

# batch_api
BATCH = "batch"
BATCH_WORDS = ("batch", "nightly", "offline", "backfill", "etl", "cron", "eval", "job")
BATCH_WORD = re.compile(r"(?<![a-z])(" + "|".join(BATCH_WORDS) + r")(?:e?s)?(?![a-z])", re.IGNORECASE)
MIN_BURST_CALLS = 500
BURST_HOURS = 3
BURST_SHARE = Decimal("0.8")
MIN_BURST_DAYS = 3

# context_trimming
MIN_TRIM_CALLS = 200
P95_OVER_MEDIAN = 4
MIN_P95_INPUT_TOKENS = 2_000
TRIM_TO_MEDIAN = 2

# provisioned_capacity
MAX_CAPACITY_CV = Decimal("0.5")
STEADY_CV = Decimal("0.3")
MIN_MONTHLY_SPEND_USD = Decimal("1000")
BASELINE_PERCENTILE = 0.1
# The low end of the 30–50% that committed throughput saves against on-demand list prices (Azure OpenAI PTU
# reservations, Amazon Bedrock provisioned throughput with a commitment term, OpenAI Scale Tier).
COMMITTED_DISCOUNT = Decimal("0.30")

ZERO = Decimal(0)


# Shared: long-context tiers and pricing summed usage --------------------------------------------------------------

THRESHOLDS_SQL = """
SELECT DISTINCT (threshold #>> '{{}}')::bigint AS threshold FROM (
    SELECT jsonb_path_query(tiers, '$[*].threshold') AS threshold FROM {table} WHERE effective_to IS NULL
    UNION ALL
    SELECT jsonb_path_query(variants, '$[*].tiers[*].threshold') FROM {table} WHERE effective_to IS NULL
) thresholds
ORDER BY 1
"""


def tier_thresholds() -> list[int]:
    """Every long-context threshold of a price in force (standard or variant tiers), ascending."""
    with connection.cursor() as cursor:
        cursor.execute(THRESHOLDS_SQL.format(table=Price._meta.db_table))
        return [row[0] for row in cursor.fetchall()]


def tier_bucket(thresholds: list[int]) -> Case:
    """The largest catalog threshold a call's input is above (NULL below all): calls in one bucket share a price
    tier whatever their model, so their summed tokens can be priced at once."""
    whens = [When(input_tokens__gt=threshold, then=Value(threshold)) for threshold in sorted(thresholds, reverse=True)]
    return Case(*whens, default=Value(None), output_field=BigIntegerField())


def clamped_tokens() -> dict:
    """Per-call token classes clamped the way billing.pricing_at_ingest.usage_of does."""
    cached = Least(F("cached_input_tokens"), F("input_tokens"))
    return {"cached_read": cached, "cache_write": Least(F("cache_write_tokens"), F("input_tokens") - cached),
            "reasoning": Least(F("reasoning_tokens"), F("output_tokens"))}


def usage_sums() -> dict:
    """Token sums of a grouped queryset annotated with clamped_tokens() before grouping."""
    return {"input_tokens": Sum("input_tokens"), "cached_tokens": Sum("cached_read"), "write_tokens": Sum("cache_write"),
            "output_tokens": Sum("output_tokens"), "reasoning_tokens": Sum("reasoning")}


TOKEN_KEYS = ("input_tokens", "cached_tokens", "write_tokens", "output_tokens", "reasoning_tokens")


def at_tier(spec: PriceSpec, bucket: int | None) -> PriceSpec:
    """The spec with only the tiers a call in `bucket` is above: price_call then picks the same tier for the bucket's
    summed usage as for each of its calls (every call in the bucket has more input tokens than `bucket`)."""

    def kept(tiers):
        return tuple(tier for tier in tiers if bucket is not None and tier.threshold <= bucket)

    return replace(spec, tiers=kept(spec.tiers),
                   variants=tuple(replace(variant, tiers=kept(variant.tiers)) for variant in spec.variants))


def priced(usage: dict, spec: PriceSpec, bucket: int | None, variant: str = STANDARD) -> PriceBreakdown:
    """price_call over the summed tokens of one tier bucket."""
    return price_call(CallUsage(input_tokens=usage["input_tokens"], cached_input_tokens=usage["cached_tokens"],
                                cache_write_tokens=usage["write_tokens"], output_tokens=usage["output_tokens"],
                                reasoning_tokens=usage["reasoning_tokens"]),
                      at_tier(spec, bucket), variant)


@dataclass
class Group:
    """Rows of one scope (one per tier bucket, or per hour too) merged: scope counts, tokens by bucket, hours."""

    calls: int = 0
    team_min: int | None = None
    team_max: int | None = None
    team_n: int = 0
    product_min: int | None = None
    product_max: int | None = None
    product_n: int = 0
    streamed: int = 0
    buckets: dict = field(default_factory=dict)
    hours: Counter = field(default_factory=Counter)
    # hour of the day → distinct UTC dates with calls in it (the most of its tier rows: a lower bound when one hour's
    # calls fall in several price tiers)
    hour_days: dict = field(default_factory=dict)

    def add(self, row: dict) -> None:
        self.calls += row["calls"]
        for name in ("team", "product"):
            low, high = row[f"{name}_min"], row[f"{name}_max"]
            if low is not None:
                current_low, current_high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
                setattr(self, f"{name}_min", low if current_low is None else min(current_low, low))
                setattr(self, f"{name}_max", high if current_high is None else max(current_high, high))
            setattr(self, f"{name}_n", getattr(self, f"{name}_n") + row[f"{name}_n"])
        self.streamed += row.get("streamed", 0)
        usage = self.buckets.setdefault(row["tier"], dict.fromkeys(TOKEN_KEYS, 0))
        for key in TOKEN_KEYS:
            usage[key] += int(row[key] or 0)
        if "hour" in row:
            self.hours[row["hour"]] += row["calls"]
            self.hour_days[row["hour"]] = max(self.hour_days.get(row["hour"], 0), row["days"])

    def scope(self) -> dict:
        return {"team_id": single(vars(self), "team"), "product_id": single(vars(self), "product")}

    def tokens(self, key: str) -> int:
        return sum(usage[key] for usage in self.buckets.values())


def fetch(sql: str, params: list) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def dollars(value: Decimal) -> str:
    """$1,800.00, $0.0125: a figure for a formula, to the micro-dollar without trailing zeros beyond the cents."""
    places = max(2, -Decimal(value).quantize(Decimal("0.000001")).normalize().as_tuple().exponent)
    return f"${Decimal(value):,.{places}f}"


def token_classes(breakdowns: list[PriceBreakdown]) -> dict[str, tuple[int, Decimal]]:
    """Tokens and amount per token class over several breakdowns."""
    totals: dict[str, tuple[int, Decimal]] = {}
    for breakdown in breakdowns:
        for line in breakdown.lines:
            tokens, amount = totals.get(line.token_class, (0, ZERO))
            totals[line.token_class] = (tokens + line.tokens, amount + line.amount)
    return totals


# batch_api ---------------------------------------------------------------------------------------------------------


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


# context_trimming --------------------------------------------------------------------------------------------------

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


# provisioned_capacity ----------------------------------------------------------------------------------------------

CAPACITY_SQL = """
WITH raw AS ({calls}),
calls AS (
    SELECT provider, model_name, team, product, cost_usd, input_tokens + output_tokens AS tokens,
           floor(extract(epoch FROM start_time - %s) / 3600)::int AS hour
    FROM raw
),
groups AS (
    SELECT provider, model_name, count(*) AS calls, min(team) AS team_min, max(team) AS team_max,
           count(team) AS team_n, min(product) AS product_min, max(product) AS product_max, count(product) AS product_n,
           coalesce(sum(cost_usd), 0) AS cost, sum(tokens) AS tokens
    FROM calls GROUP BY provider, model_name
    HAVING coalesce(sum(cost_usd), 0) >= %s AND sum(tokens) > 0
),
hourly AS (
    SELECT provider, model_name, hour, sum(tokens) AS tokens FROM calls GROUP BY provider, model_name, hour
),
series AS (
    SELECT g.provider, g.model_name, coalesce(h.tokens, 0) AS tokens
    FROM groups g CROSS JOIN generate_series(0, %s - 1) AS n(hour)
    LEFT JOIN hourly h ON h.provider = g.provider AND h.model_name = g.model_name AND h.hour = n.hour
),
stats AS (
    SELECT provider, model_name, count(*) AS hours, avg(tokens) AS mean, stddev_pop(tokens) AS stdev,
           percentile_disc(%s) WITHIN GROUP (ORDER BY tokens) AS baseline
    FROM series GROUP BY provider, model_name
),
covered AS (
    SELECT s.provider, s.model_name, sum(least(s.tokens, t.baseline)) AS covered
    FROM series s JOIN stats t ON t.provider = s.provider AND t.model_name = s.model_name
    GROUP BY s.provider, s.model_name
)
SELECT g.*, t.hours, t.mean, t.stdev, t.baseline, c.covered
FROM groups g
JOIN stats t ON t.provider = g.provider AND t.model_name = g.model_name
JOIN covered c ON c.provider = g.provider AND c.model_name = g.model_name
"""


def provisioned_capacity(window: Window) -> list[Finding]:
    span = window.until - window.since
    window_days = Decimal(repr(span.total_seconds())) / 86400
    hours = math.ceil(span / timedelta(hours=1))
    if hours <= 0:
        return []
    min_window_spend = MIN_MONTHLY_SPEND_USD * window_days / 30
    calls, params = (window.calls.exclude(model_name="").filter(app_cache_hit=False)
                     .values("provider", "model_name", "team", "product", "start_time", "input_tokens",
                             "output_tokens", "cost_usd")
                     .query.sql_with_params())
    rows = fetch(CAPACITY_SQL.format(calls=calls),
                 [*params, window.since, min_window_spend, hours, BASELINE_PERCENTILE])
    findings = []
    for row in rows:
        mean, stdev = Decimal(row["mean"]), Decimal(row["stdev"])
        if mean <= 0:
            continue
        cv = stdev / mean
        baseline, covered, tokens, cost = int(row["baseline"]), int(row["covered"]), int(row["tokens"]), row["cost"]
        if cv > MAX_CAPACITY_CV or baseline <= 0:
            continue
        share = Decimal(covered) / Decimal(tokens)
        saving = cost * share * COMMITTED_DISCOUNT
        if saving <= 0:
            continue
        model = row["model_name"]
        findings.append(Finding(
            kind=Kind.PROVISIONED_CAPACITY,
            fingerprint=f"{Kind.PROVISIONED_CAPACITY}:{row['provider']}:{model}",
            title=f"Commit to {baseline:,} tokens an hour of {model}: its traffic is steady",
            window_savings_usd=saving, confidence=Confidence.MEDIUM if cv <= STEADY_CV else Confidence.LOW,
            formula=(f"{dollars(cost)} spent × {covered:,} of {tokens:,} tokens within a baseline of {baseline:,} "
                     f"tokens an hour (the 10th-percentile hour of {row['hours']:,}; cv {cv:.2f}) "
                     f"× {COMMITTED_DISCOUNT} committed-use discount"),
            evidence={"provider": row["provider"], "calls": row["calls"], "hours": row["hours"], "cv": float(round(cv, 4)),
                      "mean_hourly_tokens": float(round(mean, 2)), "p10_hourly_tokens": baseline,
                      "covered_tokens": covered, "total_tokens": tokens, "covered_share": float(round(share, 4)),
                      "window_spend_usd": usd(cost), "committed_discount": str(COMMITTED_DISCOUNT)},
            team_id=single(row, "team"), product_id=single(row, "product"), model=model,
        ))
    return findings
