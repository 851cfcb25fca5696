"""Canaries: a model-routing recommendation applied as a canary (POST from the Savings page), its page with the two
arms side by side and the realized saving, and its widen / keep / roll back buttons."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from observatory import canary as canaries
from observatory.access import Viewer, dashboard_view, routing_rule_or_404
from observatory.dashboard import canary as canary_reads
from observatory.dashboard import savings
from observatory.dashboard.responses import render_page


def _canary_url(viewer: Viewer, rule_id: int) -> str:
    return f"{reverse('canary', args=[rule_id])}?org={viewer.organization.slug}"


@require_POST
@dashboard_view
def apply_canary(request: HttpRequest, viewer: Viewer, rec_id: int) -> HttpResponse:
    rec = savings.find_recommendation(viewer, rec_id)
    if rec is None:
        raise Http404("No such recommendation.")
    if not savings.may_act(viewer, rec):
        return HttpResponseForbidden("Only admins, and managers of its team, apply a recommendation.")
    try:
        share = canaries.parse_share(request.POST.get("share", canaries.DEFAULT_SHARE))
        rule = canaries.apply_as_canary(rec, share, user=request.user)
    except ValueError as error:
        messages.error(request, f"Could not start a canary: {error}.")
        return redirect(f"{reverse('recommendations')}?org={viewer.organization.slug}")
    messages.success(request, f"Canary started: {rule.share_percent.normalize():f}% of {rule.from_model} calls "
                              f"({rule.scope_label}) now go to {rule.to_model} through the gateway.")
    return redirect(_canary_url(viewer, rule.id))


@require_GET
@dashboard_view
def canary_page(request: HttpRequest, viewer: Viewer, rule_id: int) -> HttpResponse:
    rule = routing_rule_or_404(viewer, rule_id)
    return render_page(request, "canary", viewer, None, {
        "canary": canary_reads.canary_of(viewer, rule), "rule": rule, "next_share": canaries.next_share(rule),
        "may_change": viewer.may_change(rule.team, rule.product),
    })


@require_POST
@dashboard_view
def change_canary(request: HttpRequest, viewer: Viewer, rule_id: int) -> HttpResponse:
    rule = routing_rule_or_404(viewer, rule_id)
    if not viewer.may_change(rule.team, rule.product):
        return HttpResponseForbidden("Only admins, and managers of its team, change a canary.")
    action = request.POST.get("action", "")
    try:
        if action == "widen":
            canaries.set_share(rule, canaries.parse_share(request.POST.get("share", "")))
            messages.success(request, f"{rule.share_percent.normalize():f}% of the calls now go to {rule.to_model}.")
        elif action == "keep":
            canaries.keep(rule)
            messages.success(request, f"Kept: {rule.share_percent.normalize():f}% of the calls stay on {rule.to_model}.")
        elif action == "rollback":
            canaries.roll_back(rule)
            messages.success(request, f"Rolled back: every call goes to {rule.from_model} again.")
        else:
            messages.error(request, "Choose widen, keep or roll back.")
    except ValueError as error:
        messages.error(request, f"{str(error)[:1].upper()}{str(error)[1:]}.")
    return redirect(_canary_url(viewer, rule.id))
