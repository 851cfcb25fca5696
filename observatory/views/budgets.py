"""Budgets (list, create, change, delete, test alert) and the alerts page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing import services as billing_services
from billing.alerts.delivery import channel_targets
from billing.models import Budget
from observatory.access import (
    Viewer,
    dashboard_view,
)
from observatory.dashboard import budgets as budget_reads
from observatory.dashboard.responses import render_page


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
        "refused": budget_reads.refused_requests(budget) if budget.hard_limit else 0,
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
