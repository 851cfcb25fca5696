"""The gateway's configuration per organization: the upstream hosts its admins allow, and the provider accounts
(base URL and encrypted API key) calls go to."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from observatory.models import Organization


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"


class UpstreamHost(models.Model):
    """A host an organization's admin allows the gateway to call, beside the providers' public APIs: `host` (any
    port) or `host:port`, e.g. a self-hosted OpenAI-compatible server."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="gateway_hosts")
    host = models.CharField(max_length=255)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "host"], name="gateway_host_once_per_org")]
        ordering = ["host"]

    def __str__(self) -> str:
        return self.host


class ProviderAccount(models.Model):
    """Where an organization's calls to one provider go and with which key. The key is stored encrypted
    (gateway.vault) and never shown again: only its last four characters, to tell keys apart."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="gateway_accounts")
    provider = models.CharField(max_length=32, choices=Provider.choices)
    base_url = models.URLField("base URL", max_length=500, blank=True,
                               help_text="Empty: the provider's public API. Its host must be on the allow-list.")
    encrypted_api_key = models.TextField(blank=True)
    key_hint = models.CharField("key ends with", max_length=8, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "provider"], name="gateway_account_once_per_org")]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} ({self.base_url or 'public API'})"


from gateway.rules import CachedResponse, CachePolicy, RoutingRule  # noqa: E402,F401 (the cache and routing models)
