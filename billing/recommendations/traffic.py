"""Recommendations read from the calls themselves: waste patterns found in an organization's recent calls, each with its evidence,
the formula behind the estimate, and a monthly saving.

Every kind is one aggregate query over LLMCall in the window [now - window_days, now). Savings found in the
window are scaled to a month by its days with data (billing.recommendations). Prices come from the catalog
(billing.pricing.at_ingest.catalog_cache); an organization's negotiated overrides are not applied.

Kinds:
- model_routing: per (feature, provider, model) with ≥ MIN_ROUTING_CALLS calls, median input ≤ 1,000 and median
  output ≤ 100 tokens, when ROUTES names a smaller chat model of the same provider that the catalog prices.
  Saving = Σ input tokens × (large − small input price) + Σ output tokens × (large − small output price).
- prompt_caching: per (prompt_prefix_hash, provider, model) with ≥ MIN_PREFIX_CALLS calls whose cached input is
  below 20% of input. Estimate: half the input tokens are the shared prefix (PREFIX_SHARE), so
  saving = PREFIX_SHARE × Σ input tokens × (input − cached read price).
- response_cache: per feature, calls whose request_hash was already seen earlier in the window
  (all but the first of each hash). Saving = their cost_usd.
- failed_calls: per error_type, the cost_usd of calls with status "error".
Only findings worth at least MIN_MONTHLY_SAVINGS_USD a month are kept.

generate() upserts by fingerprint (kind + scope): see billing.recommendations.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connection
from django.db.models import Max, Min, Sum
from django.db.models.functions import Coalesce

from billing.pricing.at_ingest import catalog_cache
from billing.recommendations.base import (
    Confidence,
    Finding,
    Kind,
    Median,
    Window,
    per_million,
    scope_aggregates,
    single,
    usd,
)
from ingest.model_names import normalize_model_name
from ingest.models import LLMCall

MIN_ROUTING_CALLS = 1000
MAX_ROUTING_MEDIAN_INPUT = 1000
MAX_ROUTING_MEDIAN_OUTPUT = 100
MIN_PREFIX_CALLS = 100
MAX_CACHED_SHARE = Decimal("0.2")
PREFIX_SHARE = Decimal("0.5")

# large model → smaller chat model of the same provider; a prefix ending in "*" matches any version
ROUTES: dict[str, str] = {
    "gpt-4o": "gpt-4o-mini",
    "gpt-4.1": "gpt-4.1-mini",
    "gpt-4-turbo": "gpt-4o-mini",
    "o1": "o3-mini",
    "claude-sonnet-4-5": "claude-haiku-4-5",
    "claude-sonnet-4": "claude-haiku-4-5",
    "claude-3-5-sonnet": "claude-3-5-haiku",
    "claude-opus-*": "claude-sonnet-4-5",
}


def route_for(model: str) -> str | None:
    """The smaller model ROUTES names for `model`, if any: the reported name and its undated / unprefixed forms
    (gpt-4o-2024-08-06 → gpt-4o, openai/gpt-4o → gpt-4o), exact names first, then "prefix*" entries."""
    names = normalize_model_name(model)
    for name in names:
        if name in ROUTES:
            return ROUTES[name]
    for name in names:
        for pattern, target in ROUTES.items():
            if pattern.endswith("*") and name.startswith(pattern[:-1]):
                return target
    return None


def model_routing(window: Window) -> list[Finding]:
    rows = (window.calls.filter(status="ok").exclude(model_name="")
            .values("feature", "provider", "model_name")
            .annotate(**scope_aggregates(), median_input=Median("input_tokens"), median_output=Median("output_tokens"),
                      input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"))
            .filter(calls__gte=MIN_ROUTING_CALLS, median_input__lte=MAX_ROUTING_MEDIAN_INPUT,
                    median_output__lte=MAX_ROUTING_MEDIAN_OUTPUT))
    findings = []
    for row in rows:
        target = route_for(row["model_name"])
        if target is None:
            continue
        large = catalog_cache.index.lookup(row["provider"], row["model_name"])
        small = catalog_cache.index.lookup(row["provider"], target)
        if large is None or small is None or small.provider != large.provider or small.mode != "chat":
            continue
        saving = row["input_tokens"] * (large.input - small.input) + row["output_tokens"] * (large.output - small.output)
        if saving <= 0:
            continue
        findings.append(Finding(
            kind=Kind.MODEL_ROUTING, fingerprint=f"{Kind.MODEL_ROUTING}:{row['feature']}:{row['provider']}:{row['model_name']}",
            title=f"Route “{row['feature'] or 'unnamed feature'}” from {row['model_name']} to {small.model}",
            window_savings_usd=saving, confidence=Confidence.MEDIUM,
            formula=(f"{row['input_tokens']:,} input tokens × (${per_million(large.input)} − ${per_million(small.input)})/M"
                     f" + {row['output_tokens']:,} output tokens × (${per_million(large.output)} − "
                     f"${per_million(small.output)})/M"),
            evidence={"calls": row["calls"], "median_input_tokens": row["median_input"],
                      "median_output_tokens": row["median_output"], "input_tokens": row["input_tokens"],
                      "output_tokens": row["output_tokens"], "provider": row["provider"], "suggested_model": small.model,
                      "large_price_per_million": {"input": per_million(large.input), "output": per_million(large.output)},
                      "small_price_per_million": {"input": per_million(small.input), "output": per_million(small.output)}},
            team_id=single(row, "team"), product_id=single(row, "product"), feature=row["feature"], model=row["model_name"],
        ))
    return findings


def prompt_caching(window: Window) -> list[Finding]:
    rows = (window.calls.exclude(prompt_prefix_hash="").exclude(model_name="")
            .values("prompt_prefix_hash", "provider", "model_name")
            .annotate(**scope_aggregates(), input_tokens=Sum("input_tokens"), cached_tokens=Sum("cached_input_tokens"),
                      feature_min=Min("feature"), feature_max=Max("feature"))
            .filter(calls__gte=MIN_PREFIX_CALLS, input_tokens__gt=0))
    findings = []
    for row in rows:
        if Decimal(row["cached_tokens"]) / Decimal(row["input_tokens"]) >= MAX_CACHED_SHARE:
            continue
        price = catalog_cache.index.lookup(row["provider"], row["model_name"])
        if price is None or price.cached_input_read is None or price.cached_input_read >= price.input:
            continue
        cacheable = PREFIX_SHARE * row["input_tokens"]
        saving = cacheable * (price.input - price.cached_input_read)
        feature = row["feature_min"] if row["feature_min"] == row["feature_max"] else ""
        findings.append(Finding(
            kind=Kind.PROMPT_CACHING,
            fingerprint=f"{Kind.PROMPT_CACHING}:{row['prompt_prefix_hash']}:{row['provider']}:{row['model_name']}",
            title=f"Cache the prompt prefix shared by {row['calls']:,} {row['model_name']} calls",
            window_savings_usd=saving, confidence=Confidence.LOW,
            formula=(f"{PREFIX_SHARE} × {row['input_tokens']:,} input tokens × (${per_million(price.input)} − "
                     f"${per_million(price.cached_input_read)} cached read)/M"),
            evidence={"calls": row["calls"], "prompt_prefix_hash": row["prompt_prefix_hash"],
                      "input_tokens": row["input_tokens"], "cached_input_tokens": row["cached_tokens"],
                      "cacheable_tokens_estimate": str(cacheable), "prefix_share_assumed": str(PREFIX_SHARE)},
            team_id=single(row, "team"), product_id=single(row, "product"), feature=feature, model=row["model_name"],
        ))
    return findings


DUPLICATES_SQL = """
SELECT feature, count(*) AS calls, min(team_id) AS team_min, max(team_id) AS team_max, count(team_id) AS team_n,
       min(product_id) AS product_min, max(product_id) AS product_max, count(product_id) AS product_n,
       coalesce(sum(cost_usd), 0) AS cost, count(DISTINCT request_hash) AS hashes
FROM (
    SELECT feature, team_id, product_id, cost_usd, request_hash,
           row_number() OVER (PARTITION BY request_hash ORDER BY start_time, id) AS seen
    FROM {table}
    WHERE organization_id = %s AND start_time >= %s AND start_time < %s AND request_hash <> '' AND NOT app_cache_hit
) ranked
WHERE seen > 1
GROUP BY feature
"""


def response_cache(window: Window) -> list[Finding]:
    with connection.cursor() as cursor:
        cursor.execute(DUPLICATES_SQL.format(table=LLMCall._meta.db_table),
                       [window.organization_id, window.since, window.until])
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    findings = []
    for row in rows:
        if row["cost"] <= 0:
            continue
        findings.append(Finding(
            kind=Kind.RESPONSE_CACHE, fingerprint=f"{Kind.RESPONSE_CACHE}:{row['feature']}",
            title=f"Cache responses of “{row['feature'] or 'unnamed feature'}”: {row['calls']:,} repeated requests",
            window_savings_usd=row["cost"], confidence=Confidence.MEDIUM,
            formula=f"cost of the {row['calls']:,} repeats of {row['hashes']:,} request hashes (all but the first of each)",
            evidence={"duplicate_calls": row["calls"], "distinct_request_hashes": row["hashes"],
                      "duplicate_cost_usd": usd(row["cost"])},
            team_id=single(row, "team"), product_id=single(row, "product"), feature=row["feature"],
        ))
    return findings


def failed_calls(window: Window) -> list[Finding]:
    rows = (window.calls.filter(status="error").values("error_type")
            .annotate(**scope_aggregates(), cost=Coalesce(Sum("cost_usd"), Decimal(0))))
    findings = []
    for row in rows:
        if row["cost"] <= 0:
            continue
        label = row["error_type"] or "unknown error"
        findings.append(Finding(
            kind=Kind.FAILED_CALLS, fingerprint=f"{Kind.FAILED_CALLS}:{row['error_type']}",
            title=f"{row['calls']:,} failed calls ({label}) were billed", window_savings_usd=row["cost"],
            confidence=Confidence.HIGH, formula=f"Σ cost_usd of the {row['calls']:,} calls with status error ({label})",
            evidence={"failed_calls": row["calls"], "error_type": row["error_type"], "cost_usd": usd(row["cost"])},
            team_id=single(row, "team"), product_id=single(row, "product"),
        ))
    return findings


