"""Writes of the gateway's configuration: allowed upstream hosts and provider accounts (keys encrypted), cache
policies and routing rules. Each write empties the in-process cache it affects; other gateway processes see it
within gateway.upstreams.CACHE_SECONDS or gateway.rulebook.RULES_SECONDS."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from gateway import vault
from gateway.models import Provider, ProviderAccount, UpstreamHost
from gateway.rulebook import rulebooks
from gateway.rules import CachePolicy, RoutingRule
from gateway.upstreams import host_allowed, normalize_host, upstream_cache
from observatory.models import Organization, Product, Team


def _allowed_hosts(organization: Organization) -> frozenset[str]:
    return frozenset(UpstreamHost.objects.filter(organization=organization).values_list("host", flat=True))


def allow_upstream_host(organization: Organization, host: str, user=None) -> UpstreamHost:
    """Add `host` (or `host:port`) to the organization's allow-list; raises ValueError when it is not a host."""
    entry, _ = UpstreamHost.objects.get_or_create(organization=organization, host=normalize_host(host),
                                                  defaults={"created_by": user})
    upstream_cache.clear()
    rulebooks.clear()  # a fallback base URL on this host may now be called
    return entry


def remove_upstream_host(organization: Organization, host: str) -> int:
    removed, _ = UpstreamHost.objects.filter(organization=organization, host=normalize_host(host)).delete()
    upstream_cache.clear()
    rulebooks.clear()  # nor a fallback base URL on it
    return removed


def set_provider_account(
    organization: Organization, provider: str, *, api_key: str | None = None, base_url: str | None = None
) -> ProviderAccount:
    """Create or change where the organization's `provider` calls go. `api_key` None keeps the stored key, "" removes
    it (clients then pass their own); `base_url` None keeps it, "" means the public API. Raises ValueError for a
    provider the gateway does not serve or a base URL whose host is not on the allow-list."""
    if provider not in Provider.values:
        raise ValueError(f"unknown provider {provider!r}: use one of {', '.join(Provider.values)}")
    with transaction.atomic():
        account, _ = ProviderAccount.objects.select_for_update().get_or_create(organization=organization,
                                                                               provider=provider)
        if base_url is not None:
            if base_url and not host_allowed(base_url, _allowed_hosts(organization)):
                raise ValueError(f"{base_url!r} is not on the gateway's allow-list: allow its host first")
            account.base_url = base_url.rstrip("/")
        if api_key is not None:
            account.encrypted_api_key = vault.encrypt(api_key) if api_key else ""
            account.key_hint = api_key[-4:] if api_key else ""
        account.updated_at = timezone.now()
        account.save()
    upstream_cache.clear()
    return account


def add_cache_policy(organization: Organization, *, team: Team | None, product: Product | None, feature: str,
                     ttl_seconds: int, enabled: bool = True, user=None) -> CachePolicy:
    """Answer identical requests of the scope's calls from the response cache for `ttl_seconds`."""
    policy = CachePolicy.objects.create(organization=organization, team=team, product=product, feature=feature,
                                        ttl_seconds=ttl_seconds, enabled=enabled, created_by=user)
    rulebooks.clear()
    return policy


def set_cache_policy_enabled(policy: CachePolicy, enabled: bool) -> CachePolicy:
    policy.enabled = enabled
    policy.updated_at = timezone.now()
    policy.save(update_fields=["enabled", "updated_at"])
    rulebooks.clear()
    return policy


def delete_cache_policy(policy: CachePolicy) -> None:
    """Calls are no longer cached under it; answers already cached expire with their TTL, unread."""
    policy.delete()
    rulebooks.clear()


def add_routing_rule(organization: Organization, *, team: Team | None, product: Product | None, feature: str,
                     name: str, from_model: str, to_model: str, share_percent: Decimal, split: str,
                     fallback_model: str, fallback_base_url: str, status: str, fallback_provider: str = "",
                     user=None) -> RoutingRule:
    """A rule the gateway applies within RULES_SECONDS. Raises ValueError when the fallback base URL's host is not on
    the allow-list (the gateway would never call it)."""
    if fallback_base_url and not host_allowed(fallback_base_url, _allowed_hosts(organization)):
        raise ValueError(f"{fallback_base_url!r} is not on the gateway's allow-list: allow its host first")
    rule = RoutingRule.objects.create(
        organization=organization, team=team, product=product, feature=feature, name=name, from_model=from_model,
        to_model=to_model, share_percent=share_percent, split=split, fallback_model=fallback_model,
        fallback_base_url=fallback_base_url.rstrip("/"), fallback_provider=fallback_provider, status=status,
        created_by=user)
    rulebooks.clear()
    return rule


def delete_routing_rule(rule: RoutingRule) -> None:
    """The rule stops applying (its canary page goes with it); the calls it routed keep its id in their attributes."""
    rule.delete()
    rulebooks.clear()
