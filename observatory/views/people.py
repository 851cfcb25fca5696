"""Settings actions on teams, products and people (plain POSTs answered by a redirect to the settings page, or by the
page with the form's errors beside their fields), and the invitation link's page, where an invitee sets a password."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from observatory import services
from observatory.access import (
    Viewer,
    dashboard_view,
    invitation_for_token,
    invitation_or_404,
    membership_or_404,
    product_by_id_or_404,
    require_manage_team,
    team_by_id_or_404,
)
from observatory.dashboard import people
from observatory.dashboard.tenancy import claim_form_token
from observatory.views.tenancy import settings_response


def _back(viewer: Viewer, anchor: str) -> HttpResponse:
    return redirect(f"{reverse('settings')}?org={viewer.organization.slug}#{anchor}")


def _again(request: HttpRequest, viewer: Viewer, form) -> HttpResponse:
    return settings_response(request, viewer, bound={form.prefix: form}, status=400)


def _taken(form, field: str, noun: str):
    form.add_error(field, f"Another {noun} took this name or slug a moment ago: pick another.")
    return form


@require_POST
@dashboard_view
def create_team(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    require_manage_team(viewer, None)
    form = people.NewTeamForm(viewer.organization, request.POST, prefix="new-team")
    if not form.is_valid():
        return _again(request, viewer, form)
    try:
        team = services.create_team(viewer.organization, form.cleaned_data["name"], form.cleaned_data["slug"])
    except IntegrityError:
        return _again(request, viewer, _taken(form, "slug", "team"))
    messages.success(request, f"Team “{team.name}” is created: calls that send team={team.slug} count for it.")
    return _back(viewer, "teams")


@require_POST
@dashboard_view
def rename_team(request: HttpRequest, viewer: Viewer, team_id: int) -> HttpResponse:
    team = team_by_id_or_404(viewer, team_id)
    require_manage_team(viewer, team.id)
    form = people.TeamForm(viewer.organization, request.POST, instance=team, prefix=f"team{team.id}")
    if not form.is_valid():
        return _again(request, viewer, form)
    services.rename_team(team, form.cleaned_data["name"])
    messages.success(request, f"The team is renamed “{team.name}” (its slug stays {team.slug}).")
    return _back(viewer, "teams")


@require_POST
@dashboard_view
def create_product(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    if not viewer.may_manage_people:
        raise PermissionDenied("only organization admins and team admins create products.")
    form = people.NewProductForm(viewer, request.POST, prefix="new-product")
    if not form.is_valid():
        return _again(request, viewer, form)
    try:
        product = services.create_product(viewer.organization, form.cleaned_data["name"], form.cleaned_data["slug"],
                                          form.cleaned_data["team"])
    except IntegrityError:
        return _again(request, viewer, _taken(form, "slug", "product"))
    messages.success(request, f"Product “{product.name}” is created: calls that send product={product.slug} count "
                              "for it.")
    return _back(viewer, "products")


@require_POST
@dashboard_view
def change_product(request: HttpRequest, viewer: Viewer, product_id: int) -> HttpResponse:
    product = product_by_id_or_404(viewer, product_id)
    require_manage_team(viewer, product.team_id)
    form = people.ProductForm(viewer, request.POST, instance=product, prefix=f"product{product.id}")
    if not form.is_valid():
        return _again(request, viewer, form)
    services.change_product(product, form.cleaned_data["name"], form.cleaned_data["team"])
    messages.success(request, f"Product “{product.name}” is saved.")
    return _back(viewer, "products")


@require_POST
@dashboard_view
def invite(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    if not viewer.may_manage_people:
        raise PermissionDenied("only organization admins and team admins invite people.")
    form = people.InviteForm(viewer, request.POST, prefix="invite")
    if not form.is_valid():
        return _again(request, viewer, form)
    if not claim_form_token(request.session, form.cleaned_data["once"]):  # the same form sent again (a reload)
        messages.warning(request, "That invitation was already sent. If its link was not copied, revoke it and "
                                  "invite again.")
        return _back(viewer, "people")
    new = services.invite(viewer.organization, form.cleaned_data["email"], form.cleaned_data["role"],
                          form.cleaned_data["where"], invited_by=request.user)
    problem = services.email_invitation(new)
    # the link is in this answer only (no-store) and in the email: the database keeps a hash of its token
    return settings_response(request, viewer, new_invitation=new, email_problem=problem, status=201)


@require_POST
@dashboard_view
def revoke_invitation(request: HttpRequest, viewer: Viewer, invitation_id: int) -> HttpResponse:
    invitation = invitation_or_404(viewer, invitation_id)
    require_manage_team(viewer, invitation.team_id)
    services.revoke_invitation(invitation)
    messages.success(request, f"The invitation of {invitation.email} is revoked: its link no longer works.")
    return _back(viewer, "people")


@require_POST
@dashboard_view
def change_role(request: HttpRequest, viewer: Viewer, membership_id: int) -> HttpResponse:
    membership = membership_or_404(viewer, membership_id)
    require_manage_team(viewer, membership.team_id)
    form = people.RoleForm(request.POST, prefix=f"member{membership.id}")
    if not form.is_valid():
        return _again(request, viewer, form)
    try:
        services.change_role(membership, form.cleaned_data["role"])
    except services.LastAdminError as exc:
        form.add_error("role", str(exc))
        return _again(request, viewer, form)
    where = membership.team.name if membership.team else "all teams"
    messages.success(request, f"{membership.user.get_username()} is now {form.cleaned_data['role']} of {where}.")
    return _back(viewer, "people")


@require_POST
@dashboard_view
def remove_member(request: HttpRequest, viewer: Viewer, membership_id: int) -> HttpResponse:
    membership = membership_or_404(viewer, membership_id)
    require_manage_team(viewer, membership.team_id)
    try:
        services.remove_membership(membership)
    except services.LastAdminError as exc:
        form = people.RoleForm({f"member{membership.id}-role": membership.role}, prefix=f"member{membership.id}")
        form.is_valid()
        form.add_error(None, str(exc))
        return _again(request, viewer, form)
    where = membership.team.name if membership.team else "the organization"
    messages.success(request, f"{membership.user.get_username()} is removed from {where}.")
    return _back(viewer, "people")


# The invitation link ----------------------------------------------------------------------------------------------

UNUSABLE = {
    "used": "This invitation link was already used. Log in with the password you set, or ask for a new invitation.",
    "revoked": "This invitation was revoked. Ask whoever invited you for a new one.",
    "expired": "This invitation link has expired. Ask whoever invited you for a new one.",
}


def _unusable(request: HttpRequest, why: str | None) -> HttpResponse:
    message = UNUSABLE.get(why, "This invitation link is not valid: check that it was copied whole.")
    return render(request, "observatory/invite_unusable.html", {"message": message, "why": why},
                  status=404 if why is None else 410)


@require_http_methods(["GET", "POST"])
def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """A new account sets its password here and is signed in; an existing account (the invited email is its own)
    signs in first and then joins."""
    invitation = invitation_for_token(services.hash_key(token))
    if invitation is None:
        return _unusable(request, None)
    why = services.why_unusable(invitation)
    if why:
        return _unusable(request, why)
    account = people.existing_account(invitation.email)
    signed_in_as_invitee = account is not None and request.user.is_authenticated and request.user.pk == account.pk
    user = account if account is not None else get_user_model()(username=invitation.email, email=invitation.email)
    form = SetPasswordForm(user, request.POST if request.method == "POST" and account is None else None)
    if request.method == "POST" and (signed_in_as_invitee or (account is None and form.is_valid())):
        if account is None:
            user = form.save(commit=False)
        try:
            services.accept_invitation(invitation, user)
        except services.InvitationUnusable as exc:
            return _unusable(request, str(exc))
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to {invitation.organization.name}.")
        return redirect(f"{reverse('home')}?org={invitation.organization.slug}")
    response = render(request, "observatory/invite_accept.html", {
        "invitation": invitation, "form": form, "account": account, "signed_in_as_invitee": signed_in_as_invitee,
        "login_url": f"{reverse('login')}?next={request.path}",
    }, status=400 if request.method == "POST" and account is None else 200)
    response["Cache-Control"] = "no-store"  # the token is in this page's URL (Referrer-Policy same-origin: not sent away)
    return response
