"""Settings: the page (teams, products, people, API keys, attribution rules, background jobs) and its API key actions
(create once-shown, revoke, spend per key); the people actions are in observatory.views.people."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from billing.tables import Table, csv_response
from observatory.access import (
    Viewer,
    dashboard_view,
    key_or_404,
    visible_keys,
)
from observatory.dashboard import people, tenancy
from observatory.dashboard.filters import parse_period
from observatory.dashboard.responses import csv_name, render_page, wants_csv
from observatory.services import NewApiKey, NewInvitation, create_api_key, revoke_api_key


def settings_response(request: HttpRequest, viewer: Viewer, form: tenancy.NewKeyForm | None = None,
                      new_key: NewApiKey | None = None, status: int = 200, bound: dict | None = None,
                      new_invitation: NewInvitation | None = None, email_problem: str | None = None) -> HttpResponse:
    """The settings page; `bound` holds a people form just posted with errors (observatory.dashboard.people), shown
    in its place; a new key or invitation link is in this answer only (no-store)."""
    form = form if form is not None else tenancy.NewKeyForm(viewer)
    response = render_page(request, "settings", viewer, None, {
        **people.people_context(viewer, bound, request.GET.get("edit", "")),
        "new_invitation": new_invitation, "email_problem": email_problem,
        "teams": tenancy.teams_with_counts(viewer), "members": tenancy.members(viewer),
        "keys": [{"key": key, "can_revoke": key.is_active and viewer.can_manage_keys(key.default_team_id)}
                 for key in visible_keys(viewer)],
        "rules": tenancy.attribution_rules(viewer), "form": form, "new_key": new_key,
        "can_create_keys": viewer.is_admin or bool(viewer.manageable_teams), "jobs": tenancy.background_jobs(viewer),
    }, status=status)
    if new_key is not None or new_invitation is not None:
        response["Cache-Control"] = "no-store"  # the plaintext key, or the invitation link, is in this page, once
    return response


@require_GET
@dashboard_view
def settings_page(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    if wants_csv(request):
        header = ["name", "prefix", "team", "product", "created_by", "created_at", "last_used_at", "revoked_at"]
        return csv_response(Table(header, (
            {"name": k.name, "prefix": k.prefix, "team": k.default_team.slug if k.default_team else "",
             "product": k.default_product.slug if k.default_product else "",
             "created_by": k.created_by.get_username() if k.created_by else "", "created_at": k.created_at,
             "last_used_at": k.last_used_at, "revoked_at": k.revoked_at} for k in visible_keys(viewer)
        )), csv_name("api-keys", viewer, None))
    return settings_response(request, viewer, tenancy.NewKeyForm(viewer))


@require_POST
@dashboard_view
def create_key(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    if not (viewer.is_admin or viewer.manageable_teams):
        return HttpResponseForbidden("Only managers and admins create API keys.")
    form = tenancy.NewKeyForm(viewer, request.POST)
    if not form.is_valid():
        return settings_response(request, viewer, form, status=400)
    if not tenancy.claim_form_token(request.session, form.cleaned_data["once"]):
        # the same form sent again (a reload of the page that showed the key): no second key
        messages.warning(request, "That key was already created and its value shown once. If it was not copied, "
                                  "revoke it and create another.")
        return redirect(f"{reverse('settings')}?org={viewer.organization.slug}")
    new_key = create_api_key(viewer.organization, form.cleaned_data["name"], team=form.cleaned_data["team"],
                             product=form.cleaned_data["product"], created_by=request.user)
    # the plaintext is in this response only (no-store), never in the session or the database
    return settings_response(request, viewer, tenancy.NewKeyForm(viewer), new_key=new_key, status=201)


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
