"""Writes of the gateway's configuration: allowed upstream hosts and provider accounts (keys encrypted)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from gateway import vault
from gateway.models import Provider, ProviderAccount, UpstreamHost
from gateway.upstreams import host_allowed, normalize_host, upstream_cache
from observatory.models import Organization


def allow_upstream_host(organization: Organization, host: str, user=None) -> UpstreamHost:
    """Add `host` (or `host:port`) to the organization's allow-list; raises ValueError when it is not a host."""
    entry, _ = UpstreamHost.objects.get_or_create(organization=organization, host=normalize_host(host),
                                                  defaults={"created_by": user})
    upstream_cache.clear()
    return entry


def remove_upstream_host(organization: Organization, host: str) -> int:
    removed, _ = UpstreamHost.objects.filter(organization=organization, host=normalize_host(host)).delete()
    upstream_cache.clear()
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
            hosts = frozenset(UpstreamHost.objects.filter(organization=organization).values_list("host", flat=True))
            if base_url and not host_allowed(base_url, hosts):
                raise ValueError(f"{base_url!r} is not on the gateway's allow-list: allow its host first")
            account.base_url = base_url.rstrip("/")
        if api_key is not None:
            account.encrypted_api_key = vault.encrypt(api_key) if api_key else ""
            account.key_hint = api_key[-4:] if api_key else ""
        account.updated_at = timezone.now()
        account.save()
    upstream_cache.clear()
    return account
