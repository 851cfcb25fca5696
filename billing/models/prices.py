"""The price catalog in force, with effective dates, and negotiated per-organization overrides."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models
from django.utils import timezone

CATALOG_START = datetime(2000, 1, 1, tzinfo=UTC)


PER_TOKEN = {"max_digits": 24, "decimal_places": 18, "null": True, "blank": True}


class PriceSource(models.TextChoices):
    CATALOG = "catalog", "Seed catalog"
    IMPORT = "import", "Imported file"
    MANUAL = "manual", "Edited by a user"


class Price(models.Model):
    """What one model costs per token from `effective_from` until `effective_to` (open = still in force).

    A price change closes the old row and opens a new one, so past calls keep the price they had.
    Tiers and service variants are JSON lists with decimal strings (see billing.pricing.rows).
    """

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=255, help_text="Bare model name, e.g. gpt-4o-mini.")
    key = models.CharField(max_length=255, help_text="Catalog key, e.g. openai/gpt-4o-mini; also an alias.")
    mode = models.CharField(max_length=32, blank=True, default="")
    input = models.DecimalField(max_digits=24, decimal_places=18)
    output = models.DecimalField(max_digits=24, decimal_places=18)
    cached_input_read = models.DecimalField(**PER_TOKEN)
    cache_write = models.DecimalField(**PER_TOKEN)
    cache_write_1h = models.DecimalField(**PER_TOKEN)
    reasoning = models.DecimalField(**PER_TOKEN)
    tiers = models.JSONField(default=list, blank=True)
    variants = models.JSONField(default=list, blank=True)
    max_input_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Context window: a call reporting more input tokens is implausible. Empty: unknown."
    )
    max_output_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="A call reporting more output tokens is implausible. Empty: unknown."
    )
    effective_from = models.DateTimeField(default=CATALOG_START)
    effective_to = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=PriceSource.choices, default=PriceSource.CATALOG)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "key", "effective_from"], name="price_unique_version"),
        ]
        indexes = [models.Index(fields=["model"], name="price_model")]
        ordering = ["provider", "key", "effective_from"]

    def __str__(self) -> str:
        return f"{self.provider}/{self.key} from {self.effective_from:%Y-%m-%d}"


class PriceOverride(models.Model):
    """An organization's negotiated rate for matching models: a discount or per-class prices."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="price_overrides")
    provider = models.CharField(max_length=64, blank=True, default="", help_text="Empty: any provider.")
    model_pattern = models.CharField(max_length=255, default="*", help_text="Shell-style pattern, e.g. gpt-4o*.")
    discount_percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    input = models.DecimalField(**PER_TOKEN)
    cached_input_read = models.DecimalField(**PER_TOKEN)
    cache_write = models.DecimalField(**PER_TOKEN)
    cache_write_1h = models.DecimalField(**PER_TOKEN)
    output = models.DecimalField(**PER_TOKEN)
    reasoning = models.DecimalField(**PER_TOKEN)
    effective_from = models.DateTimeField(default=CATALOG_START)
    effective_to = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["organization", "provider", "model_pattern"]

    def __str__(self) -> str:
        what = f"{self.discount_percent}% off" if self.discount_percent is not None else "custom prices"
        return f"{self.organization}: {self.provider or '*'}/{self.model_pattern} {what}"
