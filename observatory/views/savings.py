"""Savings: recommendations (accept, dismiss, reopen, recompute), the chargeback and FOCUS downloads, and the what-if
and self-host calculators."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from billing import exports, whatif
from billing import services as billing_services
from billing.models import Recommendation
from billing.monthly import DAYS_PER_MONTH, data_span
from billing.recommendations import route_for, selfhost
from billing.tables import Table, csv_response, xlsx_response
from observatory.access import (
    Viewer,
    dashboard_view,
)
from observatory.canary import suggested_model
from observatory.dashboard import canary as canary_reads
from observatory.dashboard import prices as price_reads
from observatory.dashboard import savings
from observatory.dashboard.responses import EXPORT_CHUNK, csv_name, money_cell, page_period, render_page, wants_csv


def _recommendations_url(viewer: Viewer, status: str = "") -> str:
    return f"{reverse('recommendations')}?org={viewer.organization.slug}" + (f"&status={status}" if status else "")


@require_GET
@dashboard_view
def recommendations(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    visible = savings.visible_recommendations(viewer)
    kind, status = request.GET.get("kind", ""), request.GET.get("status", "open")
    shown = savings.filtered(visible, kind, status)
    if wants_csv(request):
        header = ["id", "kind", "title", "team", "product", "feature", "model", "monthly_savings_usd",
                  "window_savings_usd", "days_with_data", "data_start", "data_end", "confidence", "status", "formula",
                  "dismissed_reason", "updated_at"]
        return csv_response(Table(header, (
            {"id": r.id, "kind": r.kind, "title": r.title, "team": r.team.slug if r.team else "",
             "product": r.product.slug if r.product else "", "feature": r.feature, "model": r.model,
             "monthly_savings_usd": money_cell(r.monthly_savings_usd), "window_savings_usd": money_cell(r.evidence_value),
             "days_with_data": r.data_span.days.quantize(Decimal("0.0001")) if r.data_span else "",
             "data_start": r.data_start or "", "data_end": r.data_end or "", "confidence": r.confidence,
             "status": r.status, "formula": r.formula, "dismissed_reason": r.dismissed_reason, "updated_at": r.updated_at}
            for r in shown.select_related("team", "product").iterator(chunk_size=EXPORT_CHUNK)
        )), csv_name("recommendations", viewer, None))
    today = timezone.now().date()
    rows = savings.rows(viewer, shown)
    running = canary_reads.canaries_by_recommendation(viewer)  # "Apply as a canary", or a link to the running one
    for row in rows:
        row["canary"], row["suggested_model"] = running.get(row["rec"].id), suggested_model(row["rec"])
    return render_page(request, "recommendations", viewer, None, {
        "rows": rows, "summary": savings.summary(visible), "kind": kind, "status": status,
        "baseline": savings.spend_baseline(viewer),
        "kinds": Recommendation.Kind.choices, "statuses": Recommendation.Status.choices,
        "may_refresh": savings.may_refresh(viewer), "months": savings.export_months(today),
    })


EXPORTS = {"chargeback": exports.chargeback, "focus": exports.focus}


@require_GET
@dashboard_view
def download_export(request: HttpRequest, viewer: Viewer, kind: str) -> HttpResponse:
    """The Savings page's chargeback and FOCUS downloads (`?month=YYYY-MM&format=csv|xlsx`), scoped to the viewer:
    the same tables as /api/v1/exports/<kind>, behind the page's login."""
    if kind not in EXPORTS:
        raise Http404("No such export.")
    try:
        month = exports.parse_month(request.GET.get("month"))
    except ValueError as error:
        return HttpResponseBadRequest(str(error))
    table = EXPORTS[kind](viewer.scope, month)
    name = f"{kind}-{month:%Y-%m}"
    if request.GET.get("format") == "xlsx":
        return xlsx_response(table, f"{name}.xlsx", sheet=f"{kind} {month:%Y-%m}")
    return csv_response(table, f"{name}.csv")


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
    extra = " It comes back only if its monthly saving doubles." if status == Recommendation.Status.DISMISSED else ""
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
    period = page_period(request)
    models = whatif.model_usage(viewer.scope, period.start, period.end)
    span = data_span(viewer.scope.q(), period.start, period.end)
    days = span.days
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
    scale = DAYS_PER_MONTH / days
    model_rows = [{"usage": m, "monthly_usd": m.cost_usd * scale, "route": route_for(m.model),
                   "batch": m.price is not None and m.price.variant("batch") is not None} for m in models]
    sh_form, crossover = _self_host_calculator(request, models, scale)
    return render_page(request, "what_if", viewer, period, {
        "form": form, "data_span": span, "suggestions": price_reads.model_suggestions(form.data.get("to_model", "")),
        "result": result,
        "model_rows": model_rows, "scenario": scenario, "sh_form": sh_form,
        "crossover": crossover, "crossover_chart": selfhost.chart_of(crossover) if crossover else None,
        "crossover_formula": selfhost.formula_of(crossover) if crossover else "",
    }, status=200 if not (form.errors or sh_form.errors) else 400)


@require_GET
@dashboard_view
def what_if_models(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    """The what-if's target model suggestions: <option>s of the catalog's model names containing what was typed."""
    names = price_reads.model_suggestions(request.GET.get("to_model", ""))
    return TemplateResponse(request, "observatory/_model_options.html", {"names": names})


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
