"""What an organization tells its gateway to do besides relaying: cache answers (CachePolicy, with the cached
answers in CachedResponse when there is no Redis) and route calls (RoutingRule: rewrite the model, a canary share,
fallbacks). Each matches calls by team, product and feature; empty matches any."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from ingest.mappers.normalize.providers import provider_from_model
from observatory.models import Organization, Product, Team


class Scoped(models.Model):
    """A team / product / feature match: a call matches when it names the same (an empty match takes any)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    feature = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    @property
    def scope_label(self) -> str:
        parts = [f"team {self.team.name}" if self.team_id else "", f"product {self.product.name}" if self.product_id else "",
                 f"feature “{self.feature}”" if self.feature else ""]
        return ", ".join(p for p in parts if p) or "every call"


class CachePolicy(Scoped):
    """Opt-in: identical requests of these calls are answered from the response cache for `ttl_seconds`."""

    ttl_seconds = models.PositiveIntegerField("time to live (seconds)", default=3600,
                                              validators=[MinValueValidator(1), MaxValueValidator(30 * 86400)])
    enabled = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "cache policies"

    def __str__(self) -> str:
        return f"cache {self.scope_label} for {self.ttl_seconds} s"


class CachedResponse(models.Model):
    """One cached answer (PostgreSQL store of gateway.cache): the key is a hash of organization, route and request —
    no request text is stored. Rows past `expires_at` are never served and are deleted by a periodic task."""

    key = models.CharField(max_length=64, primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    entry = models.BinaryField()
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"cached answer {self.key[:12]}… until {self.expires_at:%Y-%m-%d %H:%M}"


class RoutingRule(Scoped):
    """Calls to `from_model` (empty: any model) matching the scope: `share_percent` of them go to `to_model` (100:
    a rewrite; between: a canary), split by request id (the same id always takes the same arm) or at random. A
    provider's 429, 5xx or timeout retries once on `fallback_model` (and/or `fallback_base_url`, an allowed host);
    with `fallback_provider` naming the other provider, a chat call retries on that provider's API through the
    organization's own upstream for it, translated both ways (gateway.translate)."""

    class FallbackProvider(models.TextChoices):
        SAME = "", "The call's own provider"
        OPENAI = "openai", "OpenAI"
        ANTHROPIC = "anthropic", "Anthropic"

    class Split(models.TextChoices):
        REQUEST_ID = "request_id", "By request id (deterministic)"
        RANDOM = "random", "Random"

    class Status(models.TextChoices):
        CANARY = "canary", "Canary running"
        KEPT = "kept", "Kept"
        ROLLED_BACK = "rolled_back", "Rolled back"

    name = models.CharField(max_length=200, blank=True, default="")
    from_model = models.CharField(max_length=255, blank=True, default="")
    to_model = models.CharField(max_length=255, blank=True, default="")
    share_percent = models.DecimalField(max_digits=5, decimal_places=2, default=100,
                                        validators=[MinValueValidator(0), MaxValueValidator(100)])
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.REQUEST_ID)
    fallback_model = models.CharField(max_length=255, blank=True, default="")
    fallback_base_url = models.URLField(max_length=500, blank=True, default="",
                                        help_text="Empty: the organization's own upstream. Its host must be allowed.")
    fallback_provider = models.CharField(
        max_length=16, choices=FallbackProvider.choices, blank=True, default="",
        help_text="Another provider retries chat calls on its own API with the organization's stored key for it; "
                  "the request and the answer are translated. Needs a fallback model of that provider.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANARY)
    recommendation = models.ForeignKey("billing.Recommendation", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"{self.from_model or 'any model'} → {self.to_model or '(fallback only)'}"

    @property
    def active(self) -> bool:
        return self.status != self.Status.ROLLED_BACK

    def clean(self) -> None:
        super().clean()
        if not self.fallback_provider:
            return
        label = self.get_fallback_provider_display()
        if not self.fallback_model:
            raise ValidationError({"fallback_model": f"A fallback to {label} needs the {label} model to retry on."})
        owner = provider_from_model(self.fallback_model)
        if owner and owner != self.fallback_provider:
            raise ValidationError({"fallback_model": f"{self.fallback_model!r} is a model of {owner}: a fallback to "
                                                     f"{label} needs one of {label}'s models."})
        if self.fallback_base_url:
            raise ValidationError({"fallback_base_url": f"A fallback to {label} goes to the organization's own "
                                                        f"{label} upstream (its provider account): leave this empty."})
