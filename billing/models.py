"""Billing data: the price catalog with effective dates, organizations' negotiated overrides, rollups,
GPU pools, budgets, alert rules and the alerts they raised."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models
from django.utils import timezone

from ingest.attribution import RuleField

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
    implausible_calls = models.BigIntegerField(default=0, help_text="Calls with values that cannot be real, not billed.")
    usage_missing_calls = models.BigIntegerField(default=0, help_text="Successful calls that reported no tokens.")
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
    """How far the rollup job has read one organization's calls (by ingestion time), so reruns are incremental, and
    what failed: an organization whose run failed keeps its watermark (`last_error`, `failing_since`); an hour whose
    rollup failed is kept in `failed_hours` and retried every run. Both show on the settings page and in /readyz;
    budgets read such hours from the raw calls meanwhile (billing.rollups.unrolled_hours)."""

    name = models.CharField(max_length=32)
    organization = models.ForeignKey("observatory.Organization", null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="+")
    watermark = models.DateTimeField()
    updated_at = models.DateTimeField(default=timezone.now)
    failed_hours = models.JSONField(default=dict, blank=True, help_text="UTC hour (ISO) → why its rollup failed.")
    last_error = models.TextField(blank=True, default="", help_text="Why the organization's last run failed.")
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "organization"], name="rollupstate_unique", nulls_distinct=False),
        ]

    def __str__(self) -> str:
        return f"{self.name} #{self.organization_id} @ {self.watermark:%Y-%m-%d %H:%M:%S}"


class GpuPool(models.Model):
    """Self-hosted GPUs with an hourly rate; their cost is split over the teams that used them."""

    class WeightPrecision(models.TextChoices):
        BF16 = "bf16", "BF16 (16-bit)"
        FP16 = "fp16", "FP16 (16-bit)"
        FP8 = "fp8", "FP8 (8-bit)"
        INT8 = "int8", "INT8 (8-bit)"
        INT4 = "int4", "INT4 (4-bit)"

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="gpu_pools")
    name = models.SlugField(max_length=100, help_text="Matched against the metric label observatory.gpu_pool / gpu_pool / pool.")
    gpu_model = models.CharField(max_length=100, default="", blank=True)
    gpu_count = models.PositiveIntegerField()
    hourly_usd_per_gpu = models.DecimalField(max_digits=12, decimal_places=4)
    owner_team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   help_text="Empty: shared pool.")
    served_models = models.JSONField(default=list, blank=True, help_text="Model names served by this pool (self-hosted calls).")
    gpu_memory_gb = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)],
                                                help_text="Memory of one GPU in GB, e.g. 80 for an H100 SXM. Empty: unknown.")
    model_params_billion = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Parameters of the model the pool serves, in billions, e.g. 70 for Llama 3.1 70B. Empty: unknown.",
    )
    weight_precision = models.CharField(max_length=8, choices=WeightPrecision.choices, blank=True, default="",
                                        help_text="Precision the model's weights are served at. Empty: unknown.")
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

    Field = RuleField  # defined where the rules are matched (ingest.attribution)

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


class LatencyHistograms(models.Model):
    """Latency and TTFT histograms of one organization's calls per period and some grouping, merged by the
    rollup job from the rollups' own so that org-wide percentile queries read a few rows per period."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    calls = models.BigIntegerField(default=0)
    latency_buckets = models.JSONField(default=dict)
    ttft_buckets = models.JSONField(default=dict)

    class Meta:
        abstract = True


class ModelLatency(LatencyHistograms):
    """Per model: org-wide percentile queries read these instead of every team/product/feature group."""

    provider = models.TextField(blank=True, default="")
    model = models.TextField(blank=True, default="")

    class Meta:
        abstract = True


class DailyModelLatency(ModelLatency):
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "day", "provider", "model"], name="dailymodellatency_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.model}"


class HourlyModelLatency(ModelLatency):
    """Per hour: the partial days at the ends of a range."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "hour", "provider", "model"], name="hourlymodellatency_unique")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.model}"


class ProductLatency(LatencyHistograms):
    """Per product (empty: calls with no product): the latency page's per-product percentiles read these."""

    product = models.ForeignKey("observatory.Product", null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


class DailyProductLatency(ProductLatency):
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "day", "product"], name="dailyproductlatency_unique",
                                    nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"{self.day} product {self.product_id or '-'}"


class HourlyProductLatency(ProductLatency):
    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "hour", "product"], name="hourlyproductlatency_unique",
                                    nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 product {self.product_id or '-'}"


class HourlySlowCall(models.Model):
    """The SLOWEST_PER_GROUP slowest calls of each hour × team × product, kept by the rollup job so the slowest calls
    of any range and scope are read from a small table: the top N of a range is within the union of its groups'
    top N. Rows point at the call by its unique key; a call since dropped by retention is skipped when read."""

    SLOWEST_PER_GROUP = 10

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("observatory.Product", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    start_time = models.DateTimeField()
    duration_ms = models.FloatField()

    class Meta:
        indexes = [
            models.Index(fields=["organization", "hour"], name="hourlyslowcall_org_hour"),
            models.Index(fields=["organization", "-duration_ms"], name="hourlyslowcall_org_duration"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.duration_ms:.0f} ms"


# Budgets and alerts ------------------------------------------------------------------------------------------------

MAX_THRESHOLD_PERCENT = 1000
DEFAULT_THRESHOLDS = (50, 80, 100)


def default_thresholds() -> list[int]:
    return list(DEFAULT_THRESHOLDS)


def validate_time_zone(value: str) -> None:
    """An IANA time zone name that zoneinfo knows, e.g. Europe/Paris."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not a known time zone: use an IANA name such as UTC or Europe/Paris.",
                              code="bad_time_zone") from None


def validate_thresholds(value) -> None:
    """Whole percentages of the budget, each between 1 and MAX_THRESHOLD_PERCENT."""
    if not isinstance(value, list) or any(isinstance(item, bool) or not isinstance(item, int) for item in value):
        raise ValidationError("thresholds are a list of whole percentages, e.g. [50, 80, 100].", code="bad_thresholds")
    for item in value:
        if not 1 <= item <= MAX_THRESHOLD_PERCENT:
            raise ValidationError(f"threshold {item}% is out of range: use 1 to {MAX_THRESHOLD_PERCENT} percent.",
                                  code="threshold_out_of_range")
    if len(set(value)) != len(value):
        raise ValidationError("each threshold may appear once.", code="duplicate_threshold")


def validate_email_list(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("email recipients are a list of addresses.", code="bad_email_list")
    for item in value:
        try:
            validate_email(item)
        except ValidationError:
            # A code of its own: JSONField would replace the message of code "invalid" with "Value must be valid JSON."
            raise ValidationError(f"{item!r} is not a valid email address.", code="bad_email") from None


class AlertChannels(models.Model):
    """Where an alert goes: any of email, a Slack incoming webhook, a generic signed webhook."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="%(class)ss")
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    email_recipients = models.JSONField(default=list, blank=True, validators=[validate_email_list])
    slack_webhook_url = models.URLField(max_length=500, blank=True, default="",
                                        help_text="Slack incoming webhook. Empty: the server's SLACK_WEBHOOK_URL, if set.")
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    webhook_secret = models.CharField(max_length=200, blank=True, default="",
                                      help_text="Signs webhook bodies (X-Observatory-Signature, HMAC-SHA256).")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    evaluation_error = models.TextField(blank=True, default="",
                                        help_text="Why the every-minute evaluation failed; empty while it works.")
    evaluation_failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Budget(AlertChannels):
    """A spend limit for an organization, a team, a product or a team's use of a product, per calendar period."""

    class Period(models.TextChoices):
        DAY = "day", "Daily"
        WEEK = "week", "Weekly (from Monday)"
        MONTH = "month", "Monthly"

    team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="budgets")
    product = models.ForeignKey("observatory.Product", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="budgets")
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone],
                                 help_text="Periods start at midnight in this zone.")
    amount_usd = models.DecimalField(max_digits=14, decimal_places=2,
                                     validators=[MinValueValidator(Decimal("0.01"), "a budget is more than $0.")])
    thresholds = models.JSONField(default=default_thresholds, blank=True, validators=[validate_thresholds],
                                  help_text="Percentages of the amount that raise an alert when spend reaches them.")
    forecast_alert = models.BooleanField(default=True, help_text="Alert when the period's projected spend exceeds the amount.")

    class Meta:
        ordering = ["organization", "name"]

    def __str__(self) -> str:
        return f"{self.name} (${self.amount_usd}/{self.period})"


class AnomalyRule(AlertChannels):
    """Alert when one team's, product's or model's hourly spend is far above the same hour in previous weeks."""

    class Dimension(models.TextChoices):
        TEAM = "team", "Team"
        PRODUCT = "product", "Product"
        MODEL = "model", "Model"

    dimension = models.CharField(max_length=8, choices=Dimension.choices, default=Dimension.TEAM)
    team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                             help_text="Only this team's calls (empty: the whole organization).")
    product = models.ForeignKey("observatory.Product", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                help_text="Only this product's calls.")
    z_threshold = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal(6),
                                      validators=[MinValueValidator(Decimal(1))])
    min_excess_usd = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal(5),
                                         validators=[MinValueValidator(Decimal(0))],
                                         help_text="Ignore anomalies smaller than this many dollars over the baseline.")
    baseline_weeks = models.PositiveSmallIntegerField(default=4, validators=[MinValueValidator(3), MaxValueValidator(12)])

    def __str__(self) -> str:
        return f"{self.name} (hourly spend per {self.dimension})"


class LatencySlo(AlertChannels):
    """Alert when a latency percentile of a product and/or model is above a limit over a window."""

    product = models.ForeignKey("observatory.Product", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=255, blank=True, default="", help_text="Empty: any model.")
    quantile = models.DecimalField(max_digits=4, decimal_places=3, default=Decimal("0.99"),
                                   validators=[MinValueValidator(Decimal("0.5")), MaxValueValidator(Decimal("0.999"))])
    limit_ms = models.FloatField(validators=[MinValueValidator(1)])
    window_hours = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(24)])
    min_calls = models.PositiveIntegerField(default=50, help_text="Fewer calls than this in the window: no verdict.")

    def __str__(self) -> str:
        return f"{self.name} (p{self.quantile * 100:g} ≤ {self.limit_ms:g} ms)"


class Alert(models.Model):
    """One alert event. Unique per (budget or rule, period start, kind, threshold or subject): whoever inserts the
    row first owns its delivery, so concurrent evaluations and retries cannot raise it twice."""

    class Kind(models.TextChoices):
        THRESHOLD = "threshold", "Threshold crossed"
        FORECAST = "forecast", "Forecast to exceed"
        PERIOD_RESET = "period_reset", "Period reset"
        ANOMALY = "anomaly", "Spend anomaly"
        LATENCY = "latency", "Latency SLO breached"

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    budget = models.ForeignKey(Budget, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    anomaly_rule = models.ForeignKey(AnomalyRule, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    latency_slo = models.ForeignKey(LatencySlo, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    threshold_percent = models.PositiveSmallIntegerField(default=0)
    subject = models.CharField(max_length=300, blank=True, default="", help_text="What a rule alerted on, e.g. team:12.")
    subject_label = models.CharField(max_length=300, blank=True, default="")
    spend_usd = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    budget_usd = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    forecast_usd = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    title = models.CharField(max_length=300)
    message = models.TextField()
    deliver_until = models.DateTimeField(help_text="Deliveries still pending then are skipped: the news is stale.")
    suppressed = models.CharField(max_length=200, blank=True, default="",
                                  help_text="Why no one was notified (empty: sent to the channels).")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start", "kind", "threshold_percent"],
                                    condition=models.Q(budget__isnull=False), name="alert_once_per_budget_period"),
            models.UniqueConstraint(fields=["anomaly_rule", "period_start", "kind", "subject"],
                                    condition=models.Q(anomaly_rule__isnull=False), name="alert_once_per_anomaly_hour"),
            models.UniqueConstraint(fields=["latency_slo", "period_start", "kind", "subject"],
                                    condition=models.Q(latency_slo__isnull=False), name="alert_once_per_slo_hour"),
            models.CheckConstraint(
                condition=(models.Q(budget__isnull=False, anomaly_rule__isnull=True, latency_slo__isnull=True)
                           | models.Q(budget__isnull=True, anomaly_rule__isnull=False, latency_slo__isnull=True)
                           | models.Q(budget__isnull=True, anomaly_rule__isnull=True, latency_slo__isnull=False)),
                name="alert_has_one_source",
            ),
        ]
        indexes = [models.Index(fields=["organization", "created_at"], name="alert_org_created")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title

    @property
    def source(self) -> AlertChannels:
        """The budget or rule that raised the alert (its channels and webhook secret)."""
        return self.budget or self.anomaly_rule or self.latency_slo


class Delivery(models.Model):
    """One alert on one channel: sent at most once, retried with exponential backoff while it fails."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SLACK = "slack", "Slack"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"
        SKIPPED = "skipped", "Skipped (stale)"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    target = models.TextField(help_text="Email addresses (comma-separated) or the URL, as configured when the alert fired.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "channel"], name="delivery_once_per_channel")]
        indexes = [models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="delivery_due")]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.alert} → {self.channel} ({self.status})"


class Recommendation(models.Model):
    """A savings opportunity found in an organization's calls (see billing.recommendations), with its evidence."""

    class Kind(models.TextChoices):
        MODEL_ROUTING = "model_routing", "Route to a smaller model"
        PROMPT_CACHING = "prompt_caching", "Cache the shared prompt prefix"
        RESPONSE_CACHE = "response_cache", "Cache identical requests"
        FAILED_CALLS = "failed_calls", "Stop paying for failed calls"
        BATCH_API = "batch_api", "Use the batch API"
        CONTEXT_TRIMMING = "context_trimming", "Trim long contexts"
        PROVISIONED_CAPACITY = "provisioned_capacity", "Buy provisioned or committed capacity"
        SELF_HOST = "self_host", "Self-host the model"
        GPU_CONSOLIDATION = "gpu_consolidation", "Consolidate an idle GPU pool"
        GPU_QUANTIZATION = "gpu_quantization", "Quantize weights to free GPUs"
        GPU_BATCHING = "gpu_batching", "Turn on continuous batching"

    class Confidence(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        DISMISSED = "dismissed", "Dismissed"

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="recommendations")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("observatory.Product", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    feature = models.TextField(blank=True, default="")
    model = models.TextField(blank=True, default="")
    title = models.CharField(max_length=255)
    evidence = models.JSONField(default=dict, blank=True)
    formula = models.TextField(blank=True, default="")
    monthly_savings_usd = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    confidence = models.CharField(max_length=8, choices=Confidence.choices, default=Confidence.MEDIUM)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    dismissed_reason = models.TextField(blank=True, default="")
    evidence_value = models.DecimalField(
        max_digits=24, decimal_places=10, default=0,
        help_text="The main figure; a dismissed recommendation reopens only when it at least doubles.",
    )
    fingerprint = models.CharField(max_length=255, help_text="Kind and scope; one recommendation per fingerprint.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "fingerprint"], name="recommendation_unique_fingerprint"),
        ]
        ordering = ["organization", "-monthly_savings_usd", "id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"
