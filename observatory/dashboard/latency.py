"""Latency reads: p50/p95/p99 and time to first token from the rollups' histograms, and the slowest calls."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from billing.models import HourlyModelLatency, HourlyRollup, HourlySlowCall
from billing.queries import busiest, histograms, percentile_rows
from billing.rollups import merge_buckets, percentiles_from_buckets
from ingest.models import LLMCall
from observatory.access import ProductScope, Scope
from observatory.dashboard.charts import chart
from observatory.dashboard.filters import Period

QUANTILES = (0.5, 0.95, 0.99)


def scoped_histograms(scope: Scope, period: Period, group: str | None = None, only: list | None = None
                      ) -> dict[str, dict]:
    """billing.queries.histograms by `group` (or none), of the groups `only` names if given. A product scope always
    groups by product as well: the org-wide shortcut reads per-model histograms that know nothing of products (one
    product: the same groups)."""
    group_by = (group,) if group else ()
    if isinstance(scope, ProductScope) and group != "product":
        found = histograms(scope, period.start, period.end, ("product", *group_by))
        return {metric: _merged_by(rows, lambda key: key[1:]) for metric, rows in found.items()}
    return histograms(scope, period.start, period.end, group_by, only=only)


def _merged_by(rows: dict[tuple, dict[int, int]], key_of) -> dict[tuple, dict[int, int]]:
    merged: dict[tuple, dict[int, int]] = {}
    for key, buckets in rows.items():
        target = merged.setdefault(key_of(key), {})
        for bucket, count in buckets.items():
            target[bucket] = target.get(bucket, 0) + count
    return merged


def _summary_of(found: dict[str, dict]) -> dict[str, Any] | None:
    """The summary row from histograms of any grouping: every group's merged into one."""
    latency = percentile_rows((), _merged_by(found["latency"], lambda key: ()))
    if not latency:
        return None
    row = {**latency[0]}
    ttft = percentile_rows((), _merged_by(found["ttft"], lambda key: ()))
    if ttft:
        row.update({f"ttft_{name}": ttft[0][name] for name in ("p50", "p95", "p99", "count")})
    return row


def summary(scope: Scope, period: Period) -> dict[str, Any] | None:
    """Overall latency and TTFT percentiles (ms), or None without calls."""
    return _summary_of(scoped_histograms(scope, period))


def _rows_of(found: dict[str, dict], group: str) -> list[dict[str, Any]]:
    key = f"{group}_id" if group in ("team", "product") else group
    ttft = {row[key]: row for row in percentile_rows((key,), found["ttft"])}
    rows = []
    for row in percentile_rows((key,), found["latency"]):
        extra = ttft.get(row[key], {})
        rows.append({**row, "key": row[key], **{f"ttft_{name}": extra.get(name) for name in ("p50", "p95", "p99", "count")}})
    return rows


def by_group(scope: Scope, period: Period, group: str) -> list[dict[str, Any]]:
    """Latency and TTFT percentiles per model or product, busiest first."""
    return _rows_of(scoped_histograms(scope, period, group), group)


def busiest_products(scope: Scope, period: Period, limit: int | None) -> tuple[list[dict], int]:
    """Percentile rows of the `limit` products with the most calls (all with None), busiest first, and how many
    products had calls. Org-wide, only the histograms of the products shown are read: an organization with a hundred
    products reads a fifth of them for the 20 shown; some teams' rows (few products) are read in one pass."""
    if scope.team_ids is not None or type(scope) is not Scope:
        rows = by_group(scope, period, "product")
        return (rows if limit is None else rows[:limit]), len(rows)
    keys, count = busiest(scope, period.start, period.end, "product", limit or 10**9)
    if not keys:
        return [], 0
    rows = _rows_of(scoped_histograms(scope, period, "product", only=None if limit is None else keys), "product")
    return rows, count


def page_figures(scope: Scope, period: Period, product_limit: int | None = None
                 ) -> tuple[dict[str, Any] | None, list[dict], list[dict], int]:
    """The latency page's summary, per-model rows, the `product_limit` busiest products' rows (all with None) and
    how many products had calls: the summary is the per-model histograms merged, so the page reads them once."""
    by_model = scoped_histograms(scope, period, "model")
    by_product, products = busiest_products(scope, period, product_limit)
    return _summary_of(by_model), _rows_of(by_model, "model"), by_product, products


def over_time(scope: Scope, period: Period) -> dict:
    """A chart of p50/p95/p99 duration and p95 time to first token per hour (24h) or per day, from the same histograms
    (per day: merged by PostgreSQL, each day's rows read once)."""
    histograms_at: dict[str, dict] = {"latency": {}, "ttft": {}}
    if period.interval == "hour":
        org_wide = scope.team_ids is None and not isinstance(scope, ProductScope)
        rows = HourlyModelLatency.objects.filter(organization_id=scope.organization_id) if org_wide else \
            HourlyRollup.objects.filter(scope.q())
        for moment, latency, ttft in rows.filter(hour__gte=period.start, hour__lt=period.end).values_list(
                "hour", "latency_buckets", "ttft_buckets"):
            histograms_at["latency"].setdefault(moment, []).append(latency)
            histograms_at["ttft"].setdefault(moment, []).append(ttft)
        merged = {metric: {moment: merge_buckets(found) for moment, found in by_moment.items()}
                  for metric, by_moment in histograms_at.items()}
    else:
        found = histograms(scope, period.start, period.end, (), per_day=True)
        merged = {metric: {key[0]: buckets for key, buckets in rows.items()} for metric, rows in found.items()}
    lines: dict[str, list] = {"p50": [], "p95": [], "p99": [], "TTFT p95": []}
    for slot in period.slots:
        latency = percentiles_from_buckets(merged["latency"].get(slot, {}), QUANTILES)
        ttft = percentiles_from_buckets(merged["ttft"].get(slot, {}), (0.95,))
        for name, value in (("p50", latency[0.5]), ("p95", latency[0.95]), ("p99", latency[0.99]), ("TTFT p95", ttft[0.95])):
            lines[name].append(None if value is None else round(value))
    return chart("line", period.slots, lines, unit="ms", scale="log", axis="milliseconds (log scale)")


def slowest_calls(scope: Scope, period: Period, limit: int = 10) -> list[LLMCall]:
    """The range's slowest calls, from the rollup job's per hour × team × product top N (HourlySlowCall), so no
    scan of the raw calls; calls not rolled up yet (the last minute) are not among them."""
    candidates = list(
        HourlySlowCall.objects.filter(scope.q(), hour__gte=period.start, hour__lt=period.end)
        .order_by("-duration_ms", "span_id").values_list("trace_id", "span_id", "start_time")[: limit * 2]
    )
    if not candidates:
        return []
    keys = Q()
    for trace_id, span_id, start_time in candidates:
        keys |= Q(trace_id=trace_id, span_id=span_id, start_time=start_time)
    calls = (LLMCall.objects.filter(scope.q(), keys, start_time__gte=period.start, start_time__lt=period.end)
             .select_related("team", "product").order_by("-duration_ms", "span_id"))
    return list(calls[:limit])




def model_comparison(scope: Scope, period: Period, spend_rows: list[dict]) -> list[dict]:
    """One row per model: its spend figures (spend() by model) with its latency and TTFT percentiles, biggest
    spend first — the models page's side-by-side view."""
    timing = {row["key"]: row for row in by_group(scope, period, "model")}
    rows = []
    for row in spend_rows:
        calls = row["calls"] or 0
        merged = {**row, **{k: timing.get(row["model"], {}).get(k) for k in
                            ("p50", "p95", "p99", "ttft_p50", "ttft_p95", "ttft_p99")}}
        merged["output_per_call"] = (row["output_tokens"] / calls) if calls else None
        merged["input_per_call"] = (row["input_tokens"] / calls) if calls else None
        rows.append(merged)
    return rows
