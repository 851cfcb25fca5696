"""Dashboard pages: thin views that parse the querystring, read through observatory.dashboard, and render
the page, its body for htmx, or its main table as CSV."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing import services as billing_services
from billing import whatif
from billing.alerting import channel_targets
from billing.forms import GpuPoolForm
from billing.models import Budget, GpuPool, Recommendation
from billing.queries import gpu_cost, spend
from billing.recommendations import route_for, selfhost
from observatory.access import (
    Scope,
    Viewer,
    dashboard_view,
    key_or_404,
    product_or_404,
    team_or_404,
    visible_keys,
    visible_products,
)
from observatory.dashboard import budgets as budget_reads
from observatory.dashboard import calls as call_reads
from observatory.dashboard import gpu as gpu_reads
from observatory.dashboard import latency as latency_reads
from observatory.dashboard import prices as price_reads
from observatory.dashboard import savings, tenancy
from observatory.dashboard import spend as spend_reads
from observatory.dashboard.filters import Period, parse_call_filters, parse_period
from observatory.dashboard.responses import csv_name, csv_response, render_page, wants_csv
from observatory.services import NewApiKey, create_api_key, revoke_api_key

MONEY = Decimal("0.000001")


def _money(value: Decimal | None) -> str:
    return "" if value is None else str(Decimal(value).quantize(MONEY))


def _spend_csv(filename: str, viewer: Viewer, scope: Scope, period: Period, group: str) -> HttpResponse:
    rows = spend_reads.breakdown(scope, period, group, spend_reads.Labels(viewer.organization))
    header = [group, "calls", "errors", "input_tokens", "output_tokens", "cost_usd", "cost_per_1k_calls_usd"]
    return csv_response(filename, header, ([r["label"], r["calls"], r["errors"], r["input_tokens"], r["output_tokens"],
                                        _money(r["cost_usd"]), _money(r["cost_per_1k_calls"])] for r in rows))


@require_GET
@dashboard_view
def overview(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = parse_period(request.GET, "30d", timezone.now())
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
    period = parse_period(request.GET, "30d", timezone.now())
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
    period = parse_period(request.GET, "30d", timezone.now())
    scope = viewer.product_scope(product)
    if wants_csv(request):
        return _spend_csv(csv_name(f"product-{product.slug}", viewer, period), viewer, scope, period, "model")
    report = spend_reads.spend_report(scope, period, viewer.organization, ("team", "feature", "model", "environment"),
                                      ("feature", "model"))
    return render_page(request, "product", viewer, period, {"product": product, "report": report})


@require_GET
@dashboard_view
def latency(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = parse_period(request.GET, "7d", timezone.now())
    scope = viewer.scope
    by_model = latency_reads.by_group(scope, period, "model")
    if wants_csv(request):
        keys = ("p50", "p95", "p99", "ttft_p50", "ttft_p95", "ttft_p99")
        return csv_response(csv_name("latency-by-model", viewer, period), ["model", "calls", *(f"{k}_ms" for k in keys)], (
            [r["model"], r["count"], *("" if r[k] is None else round(r[k], 1) for k in keys)] for r in by_model
        ))
    labels = spend_reads.Labels(viewer.organization)
    by_product = latency_reads.by_group(scope, period, "product")
    for row in by_product:
        row.update(label=labels.name("product", row["key"]), slug=labels.slug("product", row["key"]))
    return render_page(request, "latency", viewer, period, {
        "summary": latency_reads.summary(scope, period), "by_model": by_model, "by_product": by_product,
        "chart": latency_reads.over_time(scope, period), "slowest": latency_reads.slowest_calls(scope, period),
    })


@require_GET
@dashboard_view
def models(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = parse_period(request.GET, "30d", timezone.now())
    scope = viewer.scope
    rows = latency_reads.model_comparison(
        scope, period, [spend_reads.with_rates(row) for row in spend(scope, period.start, period.end, ["provider", "model"])])
    if wants_csv(request):
        header = ["provider", "model", "calls", "cost_usd", "cost_per_1k_calls_usd", "input_tokens_per_call",
                  "output_tokens_per_call", "error_rate_pct", "cache_hit_rate_pct", "p50_ms", "p95_ms", "p99_ms",
                  "ttft_p50_ms", "ttft_p95_ms"]

        def num(value, places=1):
            return "" if value is None else round(value, places)

        return csv_response(csv_name("models", viewer, period), header, (
            [r["provider"], r["model"], r["calls"], _money(r["cost_usd"]), _money(r["cost_per_1k_calls"]),
             num(r["input_per_call"]), num(r["output_per_call"]), num(r["error_pct"], 2), num(r["cache_hit_pct"], 2),
             num(r["p50"]), num(r["p95"]), num(r["p99"]), num(r["ttft_p50"]), num(r["ttft_p95"])] for r in rows
        ))
    return render_page(request, "models", viewer, period, {"rows": rows})


@require_GET
@dashboard_view
def caching(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = parse_period(request.GET, "7d", timezone.now())
    scope = viewer.scope
    labels = spend_reads.Labels(viewer.organization)
    by_model = spend_reads.breakdown(scope, period, "model", labels)
    if wants_csv(request):
        header = ["model", "calls", "input_tokens", "cached_input_tokens", "cache_hit_rate_pct", "cache_read_savings_usd",
                  "app_cache_hits", "cost_avoided_usd"]
        return csv_response(csv_name("caching-by-model", viewer, period), header, (
            [r["label"], r["calls"], r["input_tokens"], r["cached_input_tokens"],
             "" if r["cache_hit_pct"] is None else round(r["cache_hit_pct"], 1), _money(r["cache_read_savings_usd"]),
             r["app_cache_hits"], _money(r["cost_avoided_usd"])] for r in by_model
        ))
    points = spend_reads.series(scope, period)
    return render_page(request, "caching", viewer, period, {
        "total": spend_reads.with_rates(spend_reads.total_of(by_model)), "by_model": by_model,
        "by_product": spend_reads.breakdown(scope, period, "product", labels), "chart": spend_reads.caching_chart(points),
    })


@require_GET
@dashboard_view
def users(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = parse_period(request.GET, "7d", timezone.now())
    scope = viewer.scope
    by = "session" if request.GET.get("by") == "session" else "end_user"
    rows = spend_reads.top_users(scope, period, by)
    if wants_csv(request):
        header = [by, "calls", "errors", "input_tokens", "output_tokens", "cost_usd", "last_seen"]
        return csv_response(csv_name(f"spend-by-{by.replace('_', '-')}", viewer, period), header, (
            [r[by], r["calls"], r["errors"], r["input_tokens"], r["output_tokens"], _money(r["cost_usd"]),
             r["last_seen"].isoformat()] for r in rows
        ))
    return render_page(request, "users", viewer, period, {
        "rows": rows, "by": by, "share": spend_reads.identified_share(scope, period), "limit": spend_reads.USER_LIMIT,
    })


@require_GET
@dashboard_view
def errors(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = parse_period(request.GET, "7d", timezone.now())
    scope = viewer.scope
    labels = spend_reads.Labels(viewer.organization)
    by_model = sorted(spend_reads.breakdown(scope, period, "model", labels), key=lambda r: (-r["errors"], r["label"]))
    if wants_csv(request):
        header = ["model", "calls", "errors", "error_rate_pct", "error_cost_usd"]
        return csv_response(csv_name("errors-by-model", viewer, period), header, (
            [r["label"], r["calls"], r["errors"], "" if r["error_pct"] is None else round(r["error_pct"], 2),
             _money(r["error_cost_usd"])] for r in by_model
        ))
    return render_page(request, "errors", viewer, period, {
        "total": spend_reads.with_rates(spend_reads.total_of(by_model)), "by_model": by_model,
        "by_type": spend_reads.error_types(scope, period),
        "chart": spend_reads.errors_chart(spend_reads.series(scope, period)),
    })


@require_GET
@dashboard_view
def calls(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = parse_period(request.GET, "7d", timezone.now())
    filters = parse_call_filters(request.GET)
    found = call_reads.filtered_calls(viewer.scope, period, filters)
    if wants_csv(request):
        header = ["start_time", "trace_id", "span_id", "team", "product", "model", "status", "error_type", "input_tokens",
                  "cached_input_tokens", "output_tokens", "duration_ms", "ttft_ms", "cost_usd", "cost_status", "user", "session"]
        return csv_response(csv_name("calls", viewer, period), header, (
            [c.start_time.isoformat(), c.trace_id, c.span_id, c.team.slug if c.team else "",
             c.product.slug if c.product else "", c.model, c.status, c.error_type, c.input_tokens, c.cached_input_tokens,
             c.output_tokens, round(c.duration_ms, 1), "" if c.ttft_ms is None else round(c.ttft_ms, 1), _money(c.cost_usd),
             c.cost_status, c.end_user, c.session] for c in found[: call_reads.CSV_LIMIT]
        ))
    return render_page(request, "calls", viewer, period, {
        "filters": filters, "page": call_reads.page_after(found, request.GET.get("cursor", "")),
        "products": visible_products(viewer), "has_calls": spend_reads.has_calls(viewer.scope),
    })


@require_GET
@dashboard_view
def call_detail(request: HttpRequest, viewer: Viewer, trace_id: str, span_id: str) -> HttpResponse:
    scope = viewer.scope
    call = call_reads.call_or_404(scope, trace_id, span_id)
    price = call_reads.price_view(call)
    return render_page(request, "call", viewer, None, {
        "call": call, "trace": call_reads.trace_of(scope, call), "price": price,
        "price_matches": price is not None and price.matches(call.cost_usd), "content": call_reads.content_of(call),
    })


@require_GET
@dashboard_view
def prices(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = parse_period(request.GET, "30d", timezone.now())
    query = request.GET.get("q", "").strip()[: price_reads.MAX_QUERY_LENGTH]
    catalog = price_reads.catalog(query)
    if wants_csv(request):
        header = ["provider", "key", "model", "mode", "input_per_1m", "cached_input_per_1m", "output_per_1m", "effective_from"]
        return csv_response(csv_name("prices", viewer, None), header, (
            [p.provider, p.key, p.model, p.mode, price_reads.per_million(p.input), price_reads.per_million(p.cached_input_read),
             price_reads.per_million(p.output), p.effective_from.date().isoformat()] for p in catalog[:5000]
        ))
    page = Paginator(catalog, price_reads.PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"price": p, "input": price_reads.per_million(p.input), "cached": price_reads.per_million(p.cached_input_read),
             "output": price_reads.per_million(p.output)} for p in page]
    return render_page(request, "prices", viewer, period, {
        "query": query, "page": page, "rows": rows, "overrides": price_reads.overrides(viewer.organization),
        "unknown_models": price_reads.models_needing_a_price(viewer.scope, period),
    })


@require_GET
@dashboard_view
def gpu(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = parse_period(request.GET, "7d", timezone.now())
    pools = gpu_reads.pool_reports(viewer.scope, period, viewer.team_names)
    if wants_csv(request):
        header = ["pool", "gpu_model", "gpus", "hourly_usd_per_gpu", "cost_usd", "idle_usd", "idle_share_pct"]
        return csv_response(csv_name("gpu-pools", viewer, period), header, (
            [r.pool.name, r.pool.gpu_model, r.pool.gpu_count, r.pool.hourly_usd_per_gpu, _money(r.total_usd),
             _money(r.idle_usd), "" if r.idle_share is None else round(r.idle_share, 1)] for r in pools
        ))
    return _gpu_page(request, viewer, period, pools, GpuPoolForm(organization=viewer.organization) if viewer.is_admin else None)


def _gpu_page(request: HttpRequest, viewer: Viewer, period: Period, pools, form, status: int = 200,
              bound: GpuPoolForm | None = None) -> HttpResponse:
    """The GPU page; admins also get the new-pool form and one edit form per pool (`bound`: the one just posted)."""
    editable = GpuPool.objects.filter(organization=viewer.organization).order_by("name") if viewer.is_admin else []
    forms = [(pool, bound if bound is not None and bound.instance.pk == pool.pk else
              GpuPoolForm(instance=pool, organization=viewer.organization, prefix=f"pool{pool.pk}")) for pool in editable]
    return render_page(request, "gpu", viewer, period, {
        "pools": pools, "total": gpu_cost(viewer.scope, period.start, period.end), "form": form, "editable": forms,
    }, status=status)


def _gpu_url(viewer: Viewer) -> str:
    return f"{reverse('gpu')}?org={viewer.organization.slug}"


@require_POST
@dashboard_view
def save_gpu_pool(request: HttpRequest, viewer: Viewer, pool_id: int | None = None) -> HttpResponse:
    """Create (no id) or change a pool; organization admins only."""
    if not viewer.is_admin:
        return HttpResponseForbidden("Only organization admins add and change GPU pools.")
    pool = None
    if pool_id is not None:
        pool = GpuPool.objects.filter(organization=viewer.organization, pk=pool_id).first()
        if pool is None:
            raise Http404("No such pool.")
    form = GpuPoolForm(request.POST, instance=pool, organization=viewer.organization,
                       prefix=f"pool{pool.pk}" if pool else None)
    if not form.is_valid():
        period = parse_period(request.GET, "7d", timezone.now())
        pools = gpu_reads.pool_reports(viewer.scope, period, viewer.team_names)
        if pool is None:
            return _gpu_page(request, viewer, period, pools, form, status=400)
        pool.refresh_from_db()  # the form changed the instance while validating
        return _gpu_page(request, viewer, period, pools, GpuPoolForm(organization=viewer.organization), status=400,
                         bound=form)
    saved = billing_services.save_gpu_pool(viewer, form.save(commit=False))
    messages.success(request, f"GPU pool “{saved.name}” is saved: its cost is split from the next hour on.")
    return redirect(_gpu_url(viewer))


@require_POST
@dashboard_view
def delete_gpu_pool(request: HttpRequest, viewer: Viewer, pool_id: int) -> HttpResponse:
    if not viewer.is_admin:
        return HttpResponseForbidden("Only organization admins delete GPU pools.")
    pool = GpuPool.objects.filter(organization=viewer.organization, pk=pool_id).first()
    if pool is None:
        raise Http404("No such pool.")
    name = pool.name
    billing_services.delete_gpu_pool(viewer, pool)
    messages.success(request, f"GPU pool “{name}” is deleted, with its cost history.")
    return redirect(_gpu_url(viewer))


def _settings_page(request: HttpRequest, viewer: Viewer, form: tenancy.NewKeyForm, new_key: NewApiKey | None = None,
                   status: int = 200) -> HttpResponse:
    response = render_page(request, "settings", viewer, None, {
        "teams": tenancy.teams_with_counts(viewer), "members": tenancy.members(viewer),
        "keys": [{"key": key, "can_revoke": key.is_active and viewer.can_manage_keys(key.default_team_id)}
                 for key in visible_keys(viewer)],
        "rules": tenancy.attribution_rules(viewer), "form": form, "new_key": new_key,
        "can_create_keys": viewer.is_admin or bool(viewer.manageable_teams),
    }, status=status)
    if new_key is not None:
        response["Cache-Control"] = "no-store"  # the plaintext key is in this page, once
    return response


@require_GET
@dashboard_view
def settings_page(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    if wants_csv(request):
        header = ["name", "prefix", "team", "product", "created_by", "created_at", "last_used_at", "revoked_at"]
        return csv_response(csv_name("api-keys", viewer, None), header, (
            [k.name, k.prefix, k.default_team.slug if k.default_team else "", k.default_product.slug if k.default_product else "",
             k.created_by.get_username() if k.created_by else "", k.created_at.isoformat(),
             k.last_used_at.isoformat() if k.last_used_at else "", k.revoked_at.isoformat() if k.revoked_at else ""]
            for k in visible_keys(viewer)
        ))
    # a key created just before (POST /settings/keys/ redirected here): shown on this response only
    new_key = tenancy.pop_new_key(request.session, viewer)
    return _settings_page(request, viewer, tenancy.NewKeyForm(viewer), new_key=new_key)


@require_POST
@dashboard_view
def create_key(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    if not (viewer.is_admin or viewer.manageable_teams):
        return HttpResponseForbidden("Only managers and admins create API keys.")
    form = tenancy.NewKeyForm(viewer, request.POST)
    if not form.is_valid():
        return _settings_page(request, viewer, form, status=400)
    new_key = create_api_key(viewer.organization, form.cleaned_data["name"], team=form.cleaned_data["team"],
                             product=form.cleaned_data["product"], created_by=request.user)
    # post/redirect/get: the settings page shows the plaintext once, and reloading it creates no second key
    tenancy.remember_new_key(request.session, new_key, viewer.organization.id)
    response = redirect(f"{reverse('settings')}?org={viewer.organization.slug}")
    response.status_code = 303  # See Other: the browser follows with a GET
    return response


@require_GET
@dashboard_view
def key_spend(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    """The settings page's "spend per API key" card, loaded after the page (it reads the raw calls of 7 days)."""
    period = parse_period({"range": "7d"}, "7d", timezone.now())
    keys = {key.pk: key for key in visible_keys(viewer)}
    rows = tenancy.spend_per_key(viewer.scope, period, keys)
    return TemplateResponse(request, "observatory/_key_spend.html", {"rows": rows, "period": period})


@require_POST
@dashboard_view
def revoke_key(request: HttpRequest, viewer: Viewer, key_id: int) -> HttpResponse:
    key = key_or_404(viewer, key_id)
    if not viewer.can_manage_keys(key.default_team_id):
        return HttpResponseForbidden("Only the team's managers and admins revoke its keys.")
    revoke_api_key(key)
    messages.success(request, f"Key “{key.name}” ({key.prefix}…) is revoked: requests with it now get 401.")
    return redirect(f"{reverse('settings')}?org={viewer.organization.slug}")


# Budgets and alerts ---------------------------------------------------------------------------------------------

def _budget_url(budget: Budget) -> str:
    return f"{reverse('budget', args=[budget.pk])}?org={budget.organization.slug}"


def _budgets_page(request: HttpRequest, viewer: Viewer, form, status: int = 200) -> HttpResponse:
    return render_page(request, "budgets", viewer, None, {
        "rows": budget_reads.rows(budget_reads.visible_budgets(viewer)), "form": form,
    }, status=status)


@require_http_methods(["GET", "POST"])
@dashboard_view
def budgets(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    may_create = budget_reads.may_create(viewer)
    if request.method == "GET":
        return _budgets_page(request, viewer, budget_reads.budget_form(viewer) if may_create else None)
    if not may_create:
        return HttpResponseForbidden("Only managers and admins create budgets.")
    form = budget_reads.budget_form(viewer, request.POST)
    if not form.is_valid():
        return _budgets_page(request, viewer, form, status=400)
    try:
        budget = billing_services.save_alert_source(viewer, form.save(commit=False))
    except PermissionDenied:
        form.add_error("team", "Managers create budgets for their own teams; only admins budget the whole organization.")
        return _budgets_page(request, viewer, form, status=403)
    messages.success(request, f"Budget “{budget.name}” is created: its alerts are checked every minute.")
    return redirect(_budget_url(budget))


def _budget_page(request: HttpRequest, viewer: Viewer, budget: Budget, form, status: int = 200) -> HttpResponse:
    [row] = budget_reads.rows([budget])
    may_manage = budget_reads.may_manage(viewer, budget)
    return render_page(request, "budgets_detail", viewer, None, {
        "row": row, "budget": budget, "chart": budget_reads.spend_chart(row), "alerts": budget_reads.budget_alerts(budget),
        "form": form if may_manage else None, "may_manage": may_manage, "channels": channel_targets(budget),
    }, status=status)


@require_http_methods(["GET", "POST"])
@dashboard_view
def budget_page(request: HttpRequest, viewer: Viewer, budget_id: int) -> HttpResponse:
    budget = budget_reads.find_budget(viewer, budget_id)
    if budget.organization_id != viewer.organization.id:
        if request.method == "GET" and not request.GET.get("org"):
            return redirect(_budget_url(budget))  # alert messages link here without ?org=
        raise Http404("No such budget.")
    if request.method == "GET":
        return _budget_page(request, viewer, budget, budget_reads.budget_form(viewer, instance=Budget.objects.get(pk=budget.pk)))
    if not budget_reads.may_manage(viewer, budget):
        return HttpResponseForbidden("Only the team's managers and admins change its budgets.")
    form = budget_reads.budget_form(viewer, request.POST, instance=Budget.objects.get(pk=budget.pk))
    if not form.is_valid():
        return _budget_page(request, viewer, budget, form, status=400)
    try:
        budget = billing_services.save_alert_source(viewer, form.save(commit=False))
    except PermissionDenied:
        form.add_error("team", "Managers budget their own teams; only admins budget the whole organization.")
        return _budget_page(request, viewer, budget, form, status=403)
    messages.success(request, f"Budget “{budget.name}” is saved.")
    return redirect(_budget_url(budget))


@require_POST
@dashboard_view
def delete_budget(request: HttpRequest, viewer: Viewer, budget_id: int) -> HttpResponse:
    budget = budget_reads.find_budget(viewer, budget_id)
    if not budget_reads.may_manage(viewer, budget):
        return HttpResponseForbidden("Only the team's managers and admins delete its budgets.")
    organization, name = budget.organization, budget.name
    billing_services.delete_alert_source(viewer, budget)
    messages.success(request, f"Budget “{name}” is deleted, with its alert history.")
    return redirect(f"{reverse('budgets')}?org={organization.slug}")


@require_POST
@dashboard_view
def budget_test_alert(request: HttpRequest, viewer: Viewer, budget_id: int) -> HttpResponse:
    budget = budget_reads.find_budget(viewer, budget_id)
    if not budget_reads.may_manage(viewer, budget):
        return HttpResponseForbidden("Only the team's managers and admins send its test alerts.")
    try:
        results = billing_services.send_test_alert(viewer, budget)
    except billing_services.NoChannel:
        messages.warning(request, "No channel is configured: add an email address or a webhook first.")
        return redirect(_budget_url(budget))
    summary = "; ".join(f"{channel}: {outcome}" for channel, outcome in results.items())
    if all(outcome == "sent" for outcome in results.values()):
        messages.success(request, f"Test alert sent — {summary}.")
    else:
        messages.warning(request, f"Test alert — {summary}.")
    return redirect(_budget_url(budget))


@require_GET
@dashboard_view
def alerts(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    return render_page(request, "budgets_alerts", viewer, None, {"alerts": budget_reads.visible_alerts(viewer)})


# Savings: recommendations and the what-if calculator ------------------------------------------------------------

def _recommendations_url(viewer: Viewer, status: str = "") -> str:
    return f"{reverse('recommendations')}?org={viewer.organization.slug}" + (f"&status={status}" if status else "")


@require_GET
@dashboard_view
def recommendations(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    visible = savings.visible_recommendations(viewer)
    kind, status = request.GET.get("kind", ""), request.GET.get("status", "open")
    shown = savings.filtered(visible, kind, status)
    if wants_csv(request):
        header = ["id", "kind", "title", "team", "product", "feature", "model", "monthly_savings_usd", "confidence",
                  "status", "formula", "dismissed_reason", "updated_at"]
        return csv_response(csv_name("recommendations", viewer, None), header, (
            [r.id, r.kind, r.title, r.team.slug if r.team else "", r.product.slug if r.product else "", r.feature, r.model,
             _money(r.monthly_savings_usd), r.confidence, r.status, r.formula, r.dismissed_reason, r.updated_at.isoformat()]
            for r in shown
        ))
    today = timezone.now().date()
    return render_page(request, "recommendations", viewer, None, {
        "rows": savings.rows(viewer, shown), "summary": savings.summary(visible), "kind": kind, "status": status,
        "kinds": Recommendation.Kind.choices, "statuses": Recommendation.Status.choices,
        "may_refresh": savings.may_refresh(viewer), "months": savings.export_months(today),
    })


@require_POST
@dashboard_view
def recommendation_status(request: HttpRequest, viewer: Viewer, rec_id: int) -> HttpResponse:
    rec = savings.find_recommendation(viewer, rec_id)
    if rec is None:
        raise Http404("No such recommendation.")
    if not savings.may_act(viewer, rec):
        return HttpResponseForbidden("Only admins, and managers of its team, accept or dismiss a recommendation.")
    status, previous = request.POST.get("status", ""), rec.status
    try:
        billing_services.set_recommendation_status(viewer, rec, status, request.POST.get("reason", ""))
    except ValueError:
        messages.error(request, "Choose open, accepted or dismissed.")
        return redirect(_recommendations_url(viewer))
    verb = {"open": "reopened", "accepted": "accepted", "dismissed": "dismissed"}[status]
    extra = " It comes back only if its evidence doubles." if status == Recommendation.Status.DISMISSED else ""
    messages.success(request, f"“{rec.title}” is {verb}.{extra}")
    return redirect(_recommendations_url(viewer, previous))


@require_POST
@dashboard_view
def refresh_recommendations(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    if not savings.may_refresh(viewer):
        return HttpResponseForbidden("Only managers and admins recompute recommendations.")
    try:
        billing_services.refresh_recommendations(viewer)
    except billing_services.BrokerUnavailable as error:
        messages.error(request, f"Could not queue the job: the task broker is unavailable ({error}). "
                                "The nightly run still happens once the worker is back.")
    else:
        messages.success(request, "Recomputing from the last 30 days of calls: reload this page in a minute.")
    return redirect(_recommendations_url(viewer))


@require_GET
@dashboard_view
def what_if(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = parse_period(request.GET, "30d", timezone.now())
    models = whatif.model_usage(viewer.scope, period.start, period.end)
    days = Decimal((period.end - period.start).total_seconds()) / 86400
    form = savings.WhatIfForm(request.GET, model_keys=[m.key for m in models])
    scenario = whatif.Scenario()
    if form.is_valid():
        data = form.cleaned_data
        try:
            scenario = whatif.Scenario(from_model=data["from_model"], to_model=data["to_model"].strip(),
                                       move_share=data["move_share"], cache_hit_rate=data["cache_hit_rate"],
                                       batch_share=data["batch_share"])
            result = whatif.what_if(models, days, scenario)
        except ValueError as error:
            form.add_error(None, str(error))
            result = whatif.what_if(models, days, whatif.Scenario())
    else:
        result = whatif.what_if(models, days, whatif.Scenario())
    scale = Decimal(30) / days
    model_rows = [{"usage": m, "monthly_usd": m.cost_usd * scale, "route": route_for(m.model),
                   "batch": m.price is not None and m.price.variant("batch") is not None} for m in models]
    sh_form, crossover = _self_host_calculator(request, models, scale)
    return render_page(request, "what_if", viewer, period, {
        "form": form, "result": result, "model_rows": model_rows, "scenario": scenario, "sh_form": sh_form,
        "crossover": crossover, "crossover_chart": selfhost.chart_of(crossover) if crossover else None,
        "crossover_formula": selfhost.formula_of(crossover) if crossover else "",
    }, status=200 if not (form.errors or sh_form.errors) else 400)


def _self_host_calculator(request: HttpRequest, models: list, scale: Decimal):
    """The self-host form and its result: the API side from the chosen model's traffic unless typed in."""
    defaults = selfhost.DEFAULT_ASSUMPTIONS
    form = savings.CrossoverForm(request.GET, model_keys=[m.key for m in models], defaults=defaults)
    if not form.is_valid():
        return form, None
    data = form.cleaned_data
    chosen = next((m for m in models if m.key == data["model"]), models[0] if models else None)
    traffic = {}
    if chosen is not None:
        traffic = {"api_monthly_usd": (chosen.cost_usd * scale).quantize(Decimal("0.01")),
                   "monthly_input_tokens": int(chosen.input_tokens * scale),
                   "monthly_output_tokens": int(chosen.output_tokens * scale)}
        for name, value in traffic.items():
            form.fields[name].widget.attrs["placeholder"] = str(value)
    figures = {name: data[name] if data[name] is not None else traffic.get(name) for name in
               ("api_monthly_usd", "monthly_input_tokens", "monthly_output_tokens")}
    if None in figures.values():
        return form, None
    try:
        return form, selfhost.crossover(**figures, assumptions=form.assumptions(defaults),
                                        horizon_months=data["horizon_months"] or 36)
    except ValueError as error:
        form.add_error(None, str(error))
        return form, None
