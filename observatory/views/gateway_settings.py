"""Settings → Gateway: how clients reach the gateway, and organization admins' changes to its provider accounts,
allowed upstream hosts, response cache policies and routing rules (plain POSTs answered by a redirect to the page, or
by the page with the form's errors beside their fields). Provider keys are never rendered back, nor kept in error
reports."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from gateway import services
from gateway.models import Provider
from observatory.access import (
    Viewer,
    cache_policy_or_404,
    dashboard_view,
    require_gateway_admin,
    routing_rule_or_404,
    upstream_host_or_404,
    visible_provider_accounts,
    visible_upstream_hosts,
)
from observatory.dashboard import gateway_settings as page
from observatory.dashboard.responses import render_page


def gateway_response(request: HttpRequest, viewer: Viewer, bound: dict | None = None, status: int = 200) -> HttpResponse:
    return render_page(request, "gateway", viewer, None, page.gateway_context(viewer, bound), status=status)


def _back(viewer: Viewer, anchor: str) -> HttpResponse:
    return redirect(f"{reverse('gateway-settings')}?org={viewer.organization.slug}#{anchor}")


def _again(request: HttpRequest, viewer: Viewer, form) -> HttpResponse:
    return gateway_response(request, viewer, bound={form.prefix: form}, status=400)


def _provider_label(provider: str) -> str:
    if provider not in Provider.values:
        raise Http404("No such provider.")
    return Provider(provider).label


@require_GET
@dashboard_view
def gateway_settings(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    return gateway_response(request, viewer)


@require_POST
@sensitive_post_parameters(*(f"{provider}-api_key" for provider in Provider.values))
@dashboard_view
def save_provider_account(request: HttpRequest, viewer: Viewer, provider: str) -> HttpResponse:
    require_gateway_admin(viewer)
    label = _provider_label(provider)
    form = page.ProviderAccountForm(request.POST, prefix=provider)
    if not form.is_valid():
        return _again(request, viewer, form)
    try:
        account = services.set_provider_account(viewer.organization, provider, base_url=form.cleaned_data["base_url"],
                                                api_key=form.cleaned_data["api_key"] or None)
    except ValueError as exc:
        form.add_error("base_url", f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
        return _again(request, viewer, form)
    where = account.base_url or "the public API"
    key = f"the stored key ends with …{account.key_hint}" if account.key_hint else "clients pass their own key"
    messages.success(request, f"{label} calls go to {where}; {key}.")
    return _back(viewer, f"provider-{provider}")


@require_POST
@dashboard_view
def remove_provider_key(request: HttpRequest, viewer: Viewer, provider: str) -> HttpResponse:
    require_gateway_admin(viewer)
    label = _provider_label(provider)
    account = visible_provider_accounts(viewer).filter(provider=provider).first()
    if account is None or not account.encrypted_api_key:
        messages.warning(request, f"No {label} key is stored.")
        return _back(viewer, f"provider-{provider}")
    services.set_provider_account(viewer.organization, provider, api_key="")
    messages.success(request, f"The stored {label} key is removed: clients now pass theirs in x-upstream-api-key.")
    return _back(viewer, f"provider-{provider}")


@require_POST
@dashboard_view
def add_upstream_host(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    require_gateway_admin(viewer)
    allowed = frozenset(visible_upstream_hosts(viewer).values_list("host", flat=True))
    form = page.UpstreamHostForm(request.POST, allowed=allowed, prefix="new-host")
    if not form.is_valid():
        return _again(request, viewer, form)
    entry = services.allow_upstream_host(viewer.organization, form.cleaned_data["host"], user=request.user)
    messages.success(request, f"{entry.host} is allowed: a provider account or a fallback may now send calls there.")
    return _back(viewer, "hosts")


@require_POST
@dashboard_view
def remove_upstream_host(request: HttpRequest, viewer: Viewer, host_id: int) -> HttpResponse:
    require_gateway_admin(viewer)
    entry = upstream_host_or_404(viewer, host_id)
    services.remove_upstream_host(viewer.organization, entry.host)
    messages.success(request, f"{entry.host} is no longer allowed: calls to it are refused with 403.")
    return _back(viewer, "hosts")


@require_POST
@dashboard_view
def add_cache_policy(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    require_gateway_admin(viewer)
    form = page.CachePolicyForm(viewer, request.POST, prefix="new-policy")
    if not form.is_valid():
        return _again(request, viewer, form)
    data = form.cleaned_data
    policy = services.add_cache_policy(viewer.organization, team=data["team"], product=data["product"],
                                       feature=data["feature"], ttl_seconds=data["ttl_seconds"], enabled=data["enabled"],
                                       user=request.user)
    state = "" if policy.enabled else " (paused)"
    messages.success(request, f"Identical requests of {policy.scope_label} are answered from the cache for "
                              f"{page.ttl_label(policy.ttl_seconds)}{state}.")
    return _back(viewer, "cache-policies")


@require_POST
@dashboard_view
def change_cache_policy(request: HttpRequest, viewer: Viewer, policy_id: int) -> HttpResponse:
    """Pause or enable a policy (`enabled`: 1 or 0)."""
    require_gateway_admin(viewer)
    policy = cache_policy_or_404(viewer, policy_id)
    enabled = request.POST.get("enabled") == "1"
    services.set_cache_policy_enabled(policy, enabled)
    messages.success(request, f"Caching {policy.scope_label} is {'enabled' if enabled else 'paused'}.")
    return _back(viewer, "cache-policies")


@require_POST
@dashboard_view
def delete_cache_policy(request: HttpRequest, viewer: Viewer, policy_id: int) -> HttpResponse:
    require_gateway_admin(viewer)
    policy = cache_policy_or_404(viewer, policy_id)
    services.delete_cache_policy(policy)
    messages.success(request, f"The cache policy of {policy.scope_label} is deleted.")
    return _back(viewer, "cache-policies")


@require_POST
@dashboard_view
def add_routing_rule(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    require_gateway_admin(viewer)
    form = page.RoutingRuleForm(viewer, request.POST, prefix="new-rule")
    if not form.is_valid():
        return _again(request, viewer, form)
    try:
        rule = services.add_routing_rule(viewer.organization, user=request.user, **form.cleaned_data)
    except ValueError as exc:
        form.add_error("fallback_base_url", f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
        return _again(request, viewer, form)
    messages.success(request, f"Routing rule “{rule}” is saved: the gateway applies it within seconds.")
    return _back(viewer, "routing-rules")


@require_POST
@dashboard_view
def delete_routing_rule(request: HttpRequest, viewer: Viewer, rule_id: int) -> HttpResponse:
    require_gateway_admin(viewer)
    rule = routing_rule_or_404(viewer, rule_id)
    name = str(rule)
    services.delete_routing_rule(rule)
    messages.success(request, f"Routing rule “{name}” is deleted: calls go where they asked.")
    return _back(viewer, "routing-rules")
