"""Billing data: the price catalog with effective dates, and organizations' negotiated overrides."""

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
    Tiers and service variants are JSON lists with decimal strings (see billing.price_rows).
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


class RollupDims(models.Model):
    """The grouping every rollup row shares: organization, team, product, provider, model, environment, feature."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    product = models.ForeignKey("observatory.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    provider = models.TextField(blank=True, default="")
    model = models.TextField(blank=True, default="")
    environment = models.TextField(blank=True, default="")
    feature = models.TextField(blank=True, default="")
    calls = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    streaming_calls = models.BigIntegerField(default=0)
    unpriced_calls = models.BigIntegerField(default=0, help_text="Calls of a model with no price (unknown_model).")
    input_tokens = models.BigIntegerField(default=0)
    cached_input_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    error_cost_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    cache_read_savings_usd = models.DecimalField(
        max_digits=24, decimal_places=10, default=0,
        help_text="What cached input would have cost at the input price, minus what it cost.",
    )
    app_cache_hits = models.BigIntegerField(default=0)
    cost_avoided_usd = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    latency_sum_ms = models.FloatField(default=0)
    latency_buckets = models.JSONField(default=dict, help_text="Log bucket index (ratio 1.05) → calls.")
    ttft_calls = models.BigIntegerField(default=0)
    ttft_sum_ms = models.FloatField(default=0)
    ttft_buckets = models.JSONField(default=dict)

    class Meta:
        abstract = True


class HourlyRollup(RollupDims):
    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "hour", "team", "product", "provider", "model", "environment", "feature"],
                name="hourlyrollup_unique_group", nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["organization", "hour"], name="hourlyrollup_org_hour")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.model} ({self.calls} calls)"


class DailyRollup(RollupDims):
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "team", "product", "provider", "model", "environment", "feature"],
                name="dailyrollup_unique_group", nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["organization", "day"], name="dailyrollup_org_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.model} ({self.calls} calls)"


class RollupState(models.Model):
    """How far the rollup job has read the calls table (by ingestion time), so reruns are incremental."""

    name = models.CharField(max_length=32, unique=True)
    watermark = models.DateTimeField()
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} @ {self.watermark:%Y-%m-%d %H:%M:%S}"


class GpuPool(models.Model):
    """Self-hosted GPUs with an hourly rate; their cost is split over the teams that used them."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="gpu_pools")
    name = models.SlugField(max_length=100, help_text="Matched against the metric label observatory.gpu_pool / gpu_pool / pool.")
    gpu_model = models.CharField(max_length=100, default="", blank=True)
    gpu_count = models.PositiveIntegerField()
    hourly_usd_per_gpu = models.DecimalField(max_digits=12, decimal_places=4)
    owner_team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   help_text="Empty: shared pool.")
    served_models = models.JSONField(default=list, blank=True, help_text="Model names served by this pool (self-hosted calls).")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="gpupool_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.gpu_count}× {self.gpu_model})"


class GpuCostHour(models.Model):
    """One pool-hour's cost share: per team, or idle (team empty, is_idle set)."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    pool = models.ForeignKey(GpuPool, on_delete=models.CASCADE, related_name="cost_hours")
    hour = models.DateTimeField()
    team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    is_idle = models.BooleanField(default=False)
    gpu_seconds = models.FloatField(default=0)
    tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10)
    basis = models.CharField(max_length=16, help_text="utilization (from GPU metrics) or tokens (no metrics that hour).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "hour", "team", "is_idle"], name="gpucosthour_unique", nulls_distinct=False)
        ]
        indexes = [models.Index(fields=["organization", "hour"], name="gpucosthour_org_hour")]

    def __str__(self) -> str:
        who = "idle" if self.is_idle else (self.team.slug if self.team_id else "unattributed")
        return f"{self.pool.name} {self.hour:%Y-%m-%d %H}:00 {who} ${self.cost_usd}"


class AttributionRule(models.Model):
    """Ordered rules giving a team/product/feature to calls that do not name one themselves."""

    class Field(models.TextChoices):
        SERVICE_NAME = "service_name", "service.name"
        API_KEY = "api_key", "API key prefix"
        ENVIRONMENT = "environment", "environment"
        MODEL = "model", "model"
        PROVIDER = "provider", "provider"
        END_USER = "end_user", "end user id"
        ATTRIBUTE = "attribute", "any span attribute"

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="attribution_rules")
    position = models.PositiveIntegerField(default=100, help_text="Lower runs first; the first match wins.")
    field = models.CharField(max_length=16, choices=Field.choices)
    attribute_key = models.CharField(max_length=255, blank=True, default="", help_text="For field=attribute.")
    pattern = models.CharField(max_length=255, help_text="Shell-style pattern, e.g. checkout-* .")
    team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("observatory.Product", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    feature = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["organization", "position", "id"]

    def __str__(self) -> str:
        return f"#{self.position} {self.field} {self.pattern} → {self.team or '-'} / {self.product or '-'}"


class DailyModelLatency(models.Model):
    """Latency and TTFT histograms per day and model for a whole organization: org-wide percentile
    queries read a few rows per day instead of every team/product/feature group."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    provider = models.TextField(blank=True, default="")
    model = models.TextField(blank=True, default="")
    calls = models.BigIntegerField(default=0)
    latency_buckets = models.JSONField(default=dict)
    ttft_buckets = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "day", "provider", "model"], name="dailymodellatency_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.model}"


class HourlyModelLatency(models.Model):
    """Latency and TTFT histograms per hour and model for a whole organization (the partial days at
    the ends of a range)."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    provider = models.TextField(blank=True, default="")
    model = models.TextField(blank=True, default="")
    calls = models.BigIntegerField(default=0)
    latency_buckets = models.JSONField(default=dict)
    ttft_buckets = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "hour", "provider", "model"], name="hourlymodellatency_unique")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.model}"
