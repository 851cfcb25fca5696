"""Recommendation: provisioned (committed) capacity instead of on-demand for steady volume.

Per (provider, model), the series of total tokens (input + output) in each hour with data — from the hour of the
window's first call to its end, so the days before the organization sent anything are not counted as idle hours —
hours without calls counting as 0 (calls answered from the application's own cache left out; one query over the
window's calls). When its coefficient of variation (population stdev / mean) is at most MAX_CAPACITY_CV and the
window spend (Σ cost_usd) scaled to a month by the days with data (× 30.44 / days, billing.monthly) is at least
MIN_MONTHLY_SPEND_USD, commit to a baseline = the 10th-percentile hour (percentile_disc, zero hours included).
Covered tokens = Σ min(hour tokens, baseline); saving = window spend × covered tokens / all tokens ×
COMMITTED_DISCOUNT, scaled to a month by the same days. Confidence medium when the cv is at most STEADY_CV, else low.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

from billing.monthly import DAYS_PER_MONTH
from billing.recommendations.base import Confidence, Finding, Kind, Window, dollars, fetch, single, usd

MAX_CAPACITY_CV = Decimal("0.5")
STEADY_CV = Decimal("0.3")
MIN_MONTHLY_SPEND_USD = Decimal("1000")
BASELINE_PERCENTILE = 0.1
# The low end of the 30–50% that committed throughput saves against on-demand list prices (Azure OpenAI PTU
# reservations, Amazon Bedrock provisioned throughput with a commitment term, OpenAI Scale Tier).
COMMITTED_DISCOUNT = Decimal("0.30")


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
    start = window.data_since
    hours = math.ceil((window.until - start) / timedelta(hours=1))
    if hours <= 0:
        return []
    min_window_spend = MIN_MONTHLY_SPEND_USD * window.span.days / DAYS_PER_MONTH
    calls, params = (window.calls.exclude(model_name="").filter(app_cache_hit=False)
                     .values("provider", "model_name", "team", "product", "start_time", "input_tokens",
                             "output_tokens", "cost_usd")
                     .query.sql_with_params())
    rows = fetch(CAPACITY_SQL.format(calls=calls),
                 [*params, start, min_window_spend, hours, BASELINE_PERCENTILE])
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
