"""The call explorer, one call with its trace and price, and the price catalog page."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from billing.tables import Table, csv_response
from observatory.access import (
    Viewer,
    dashboard_view,
    visible_products,
)
from observatory.dashboard import calls as call_reads
from observatory.dashboard import prices as price_reads
from observatory.dashboard import spend as spend_reads
from observatory.dashboard.filters import parse_call_filters
from observatory.dashboard.responses import EXPORT_CHUNK, csv_name, money_cell, page_period, render_page, wants_csv


@require_GET
@dashboard_view
def calls(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = page_period(request)
    filters = parse_call_filters(request.GET)
    found = call_reads.filtered_calls(viewer.scope, period, filters)
    if wants_csv(request):
        header = ["start_time", "trace_id", "span_id", "team", "product", "model", "response_model", "status", "error_type",
                  "input_tokens", "cached_input_tokens", "output_tokens", "duration_ms", "ttft_ms", "cost_usd", "cost_status",
                  "user", "session"]
        return csv_response(Table(header, (
            {"start_time": c.start_time, "trace_id": c.trace_id, "span_id": c.span_id, "team": c.team.slug if c.team else "",
             "product": c.product.slug if c.product else "", "model": c.model_name, "response_model": c.response_model,
             "status": c.status, "error_type": c.error_type,
             "input_tokens": c.input_tokens, "cached_input_tokens": c.cached_input_tokens, "output_tokens": c.output_tokens,
             "duration_ms": round(c.duration_ms, 1), "ttft_ms": None if c.ttft_ms is None else round(c.ttft_ms, 1),
             "cost_usd": money_cell(c.cost_usd), "cost_status": c.cost_status, "user": c.end_user, "session": c.session}
            for c in found.iterator(chunk_size=EXPORT_CHUNK)
        )), csv_name("calls", viewer, period))
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
        "call": call, "trace": call_reads.trace_of(viewer, call), "spans_outside": call_reads.spans_outside(viewer, call),
        "price": price,
        "implausible": call_reads.implausible_values(call, price),
        "price_matches": price is not None and price.matches(call.cost_usd), "content": call_reads.content_of(call),
    })


@require_GET
@dashboard_view
def prices(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = page_period(request)
    query = request.GET.get("q", "").strip()[: price_reads.MAX_QUERY_LENGTH]
    catalog = price_reads.catalog(query, price_reads.calls_per_price(viewer.scope, period))
    if wants_csv(request):
        header = ["provider", "key", "model", "mode", "input_per_1m", "cached_input_per_1m", "output_per_1m",
                  "effective_from", "source", "calls_in_range"]
        return csv_response(Table(header, (
            {"provider": p.provider, "key": p.key, "model": p.model, "mode": p.mode,
             "input_per_1m": price_reads.per_million(p.input),
             "cached_input_per_1m": price_reads.per_million(p.cached_input_read),
             "output_per_1m": price_reads.per_million(p.output),
             "effective_from": since.date() if (since := price_reads.effective_date(p)) else None, "source": p.source,
             "calls_in_range": p.calls_in_range}
            for p in catalog.iterator(chunk_size=EXPORT_CHUNK)
        )), csv_name("prices", viewer, None))
    page = Paginator(catalog, price_reads.PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"price": p, "input": price_reads.per_million(p.input), "cached": price_reads.per_million(p.cached_input_read),
             "output": price_reads.per_million(p.output), "since": price_reads.effective_date(p)} for p in page]
    return render_page(request, "prices", viewer, period, {
        "query": query, "page": page, "rows": rows, "overrides": price_reads.overrides(viewer.organization),
        "unknown_models": price_reads.models_needing_a_price(viewer.scope, period),
    })
