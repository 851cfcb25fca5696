"""Spend pages: the overview, a team's and a product's page, models, latency, caching, errors and end users, each
with its CSV."""

from __future__ import annotations

from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing.queries import gpu_cost, spend
from billing.tables import Table, csv_response
from observatory.access import (
    Scope,
    Viewer,
    dashboard_view,
    product_or_404,
    team_or_404,
)
from observatory.dashboard import budgets as budget_reads
from observatory.dashboard import gpu as gpu_reads
from observatory.dashboard import latency as latency_reads
from observatory.dashboard import spend as spend_reads
from observatory.dashboard.filters import Period
from observatory.dashboard.responses import EXPORT_CHUNK, csv_name, money_cell, page_period, render_page, wants_csv

LATENCY_PRODUCT_ROWS = 20  # the latency page's per-product table: the busiest products, then a link to all of them


def _spend_csv(filename: str, viewer: Viewer, scope: Scope, period: Period, group: str) -> HttpResponse:
    rows = spend_reads.breakdown(scope, period, group, spend_reads.Labels(viewer.organization))
    header = [group, "calls", "errors", "input_tokens", "output_tokens", "cost_usd", "cost_per_1k_calls_usd"]
    return csv_response(Table(header, (
        {group: r["label"], "calls": r["calls"], "errors": r["errors"], "input_tokens": r["input_tokens"],
         "output_tokens": r["output_tokens"], "cost_usd": money_cell(r["cost_usd"]),
         "cost_per_1k_calls_usd": money_cell(r["cost_per_1k_calls"])} for r in rows
    )), filename)


@require_GET
@dashboard_view
def overview(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = page_period(request)
    scope = viewer.scope
    if wants_csv(request):
        return _spend_csv(csv_name("spend-by-team", viewer, period), viewer, scope, period, "team")
    report = spend_reads.spend_report(scope, period, viewer.organization, ("team", "model"), ("team", "model"))
    unattributed = None
    if viewer.whole_organization:
        unattributed = next((r["cost_usd"] for r in report.breakdowns["team"] if r["key"] is None), Decimal(0))
    return render_page(request, "overview", viewer, period, {
        "report": report, "calendar": spend_reads.calendar(scope, timezone.now()), "unattributed_usd": unattributed,
        "has_calls": report.total["calls"] > 0 or spend_reads.has_calls(scope), "teams": viewer.teams,
        "budgets": budget_reads.overview_budgets(viewer),
    })


@require_GET
@dashboard_view
def team_page(request: HttpRequest, viewer: Viewer, team_slug: str) -> HttpResponse:
    team = team_or_404(viewer, team_slug)
    period = page_period(request)
    scope = viewer.team_scope(team)
    if wants_csv(request):
        return _spend_csv(csv_name(f"team-{team.slug}", viewer, period), viewer, scope, period, "model")
    report = spend_reads.spend_report(scope, period, viewer.organization, ("product", "feature", "model", "environment"),
                                      ("product", "model"))
    return render_page(request, "team", viewer, period, {
        "team": team, "report": report, "gpu_usd": gpu_cost(scope, period.start, period.end)["total_usd"],
        "pools": gpu_reads.pool_reports(scope, period, viewer.team_names), "role": viewer.role_for(team.id),
    })


@require_GET
@dashboard_view
def product_page(request: HttpRequest, viewer: Viewer, product_slug: str) -> HttpResponse:
    product = product_or_404(viewer, product_slug, spend_reads.product_used_by)
    period = page_period(request)
    scope = viewer.product_scope(product)
    if wants_csv(request):
        return _spend_csv(csv_name(f"product-{product.slug}", viewer, period), viewer, scope, period, "model")
    report = spend_reads.spend_report(scope, period, viewer.organization, ("team", "feature", "model", "environment"),
                                      ("feature", "model"))
    return render_page(request, "product", viewer, period, {"product": product, "report": report})


@require_GET
@dashboard_view
def latency(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = page_period(request)
    scope = viewer.scope
    all_products = request.GET.get("products") == "all"
    summary, by_model, by_product, products = latency_reads.page_figures(
        scope, period, None if all_products else LATENCY_PRODUCT_ROWS)
    if wants_csv(request):
        keys = ("p50", "p95", "p99", "ttft_p50", "ttft_p95", "ttft_p99")
        return csv_response(Table(["model", "calls", *(f"{k}_ms" for k in keys)], (
            {"model": r["model"], "calls": r["count"], **{f"{k}_ms": None if r[k] is None else round(r[k], 1) for k in keys}}
            for r in by_model
        )), csv_name("latency-by-model", viewer, period))
    labels = spend_reads.Labels(viewer.organization)
    for row in by_product:
        row.update(label=labels.name("product", row["key"]), slug=labels.slug("product", row["key"]))
    return render_page(request, "latency", viewer, period, {
        "summary": summary, "by_model": by_model, "by_product": by_product, "products": products,
        "all_products": all_products, "products_toggle": _toggled(request, "products", "all"),
        "chart": latency_reads.over_time(scope, period), "slowest": latency_reads.slowest_calls(scope, period),
    })


@require_GET
@dashboard_view
def models(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = page_period(request)
    scope = viewer.scope
    rows = latency_reads.model_comparison(
        scope, period, [spend_reads.with_rates(row) for row in spend(scope, period.start, period.end, ["provider", "model"])])
    if wants_csv(request):
        header = ["provider", "model", "calls", "cost_usd", "cost_per_1k_calls_usd", "input_tokens_per_call",
                  "output_tokens_per_call", "error_rate_pct", "cache_hit_rate_pct", "p50_ms", "p95_ms", "p99_ms",
                  "ttft_p50_ms", "ttft_p95_ms"]

        def num(value, places=1):
            return None if value is None else round(value, places)

        return csv_response(Table(header, (
            {"provider": r["provider"], "model": r["model"], "calls": r["calls"], "cost_usd": money_cell(r["cost_usd"]),
             "cost_per_1k_calls_usd": money_cell(r["cost_per_1k_calls"]), "input_tokens_per_call": num(r["input_per_call"]),
             "output_tokens_per_call": num(r["output_per_call"]), "error_rate_pct": num(r["error_pct"], 2),
             "cache_hit_rate_pct": num(r["cache_hit_pct"], 2), "p50_ms": num(r["p50"]), "p95_ms": num(r["p95"]),
             "p99_ms": num(r["p99"]), "ttft_p50_ms": num(r["ttft_p50"]), "ttft_p95_ms": num(r["ttft_p95"])} for r in rows
        )), csv_name("models", viewer, period))
    return render_page(request, "models", viewer, period, {"rows": rows})


@require_GET
@dashboard_view
def caching(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = page_period(request)
    scope = viewer.scope
    labels = spend_reads.Labels(viewer.organization)
    by_model = spend_reads.breakdown(scope, period, "model", labels)
    if wants_csv(request):
        header = ["model", "calls", "input_tokens", "cached_input_tokens", "cache_hit_rate_pct", "cache_read_savings_usd",
                  "app_cache_hits", "cost_avoided_usd"]
        return csv_response(Table(header, (
            {"model": r["label"], "calls": r["calls"], "input_tokens": r["input_tokens"],
             "cached_input_tokens": r["cached_input_tokens"],
             "cache_hit_rate_pct": None if r["cache_hit_pct"] is None else round(r["cache_hit_pct"], 1),
             "cache_read_savings_usd": money_cell(r["cache_read_savings_usd"]), "app_cache_hits": r["app_cache_hits"],
             "cost_avoided_usd": money_cell(r["cost_avoided_usd"])} for r in by_model
        )), csv_name("caching-by-model", viewer, period))
    points = spend_reads.series(scope, period, spend_reads.CACHING_SERIES)
    return render_page(request, "caching", viewer, period, {
        "total": spend_reads.with_rates(spend_reads.total_of(by_model)), "by_model": by_model,
        "by_product": spend_reads.breakdown(scope, period, "product", labels), "chart": spend_reads.caching_chart(points),
    })


@require_GET
@dashboard_view
def users(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = page_period(request)
    scope = viewer.scope
    by = "session" if request.GET.get("by") == "session" else "end_user"
    if wants_csv(request):
        header = [by, "calls", "errors", "input_tokens", "output_tokens", "cost_usd", "last_seen"]
        return csv_response(Table(header, (
            {**{name: r[name] for name in header}, "cost_usd": money_cell(r["cost_usd"])}
            for r in spend_reads.users_by_spend(scope, period, by).iterator(chunk_size=EXPORT_CHUNK)
        )), csv_name(f"spend-by-{by.replace('_', '-')}", viewer, period))
    rows = spend_reads.top_users(scope, period, by)
    return render_page(request, "users", viewer, period, {
        "rows": rows, "by": by, "share": spend_reads.identified_share(scope, period), "limit": spend_reads.USER_LIMIT,
    })


@require_GET
@dashboard_view
def errors(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = page_period(request)
    scope = viewer.scope
    labels = spend_reads.Labels(viewer.organization)
    by_model = sorted(spend_reads.breakdown(scope, period, "model", labels), key=lambda r: (-r["errors"], r["label"]))
    if wants_csv(request):
        header = ["model", "calls", "errors", "error_rate_pct", "error_cost_usd"]
        return csv_response(Table(header, (
            {"model": r["label"], "calls": r["calls"], "errors": r["errors"],
             "error_rate_pct": None if r["error_pct"] is None else round(r["error_pct"], 2),
             "error_cost_usd": money_cell(r["error_cost_usd"])} for r in by_model
        )), csv_name("errors-by-model", viewer, period))
    return render_page(request, "errors", viewer, period, {
        "total": spend_reads.with_rates(spend_reads.total_of(by_model)), "by_model": by_model,
        "by_type": spend_reads.error_types(scope, period),
        "chart": spend_reads.errors_chart(spend_reads.series(scope, period, spend_reads.ERRORS_SERIES)),
    })


def _toggled(request: HttpRequest, name: str, value: str) -> str:
    """This page's querystring with `name`=`value` added, or removed when it is there."""
    params = request.GET.copy()
    if params.get(name) == value:
        params.pop(name)
    else:
        params[name] = value
    return f"?{params.urlencode()}"
