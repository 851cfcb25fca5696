"""Budgets, anomaly rules and latency SLOs, the alerts they raise and each alert's deliveries."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models
from django.utils import timezone

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
    outside = [f"{item}%" for item in value if not 1 <= item <= MAX_THRESHOLD_PERCENT]
    if outside:  # every one at once, so one correction fixes them all
        said = f"threshold {outside[0]} is" if len(outside) == 1 else f"thresholds {', '.join(outside)} are"
        raise ValidationError(f"{said} out of range: use 1 to {MAX_THRESHOLD_PERCENT} percent.", code="threshold_out_of_range")
    if len(set(value)) != len(value):
        raise ValidationError("each threshold may appear once.", code="duplicate_threshold")


def validate_email_list(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("email recipients are a list of addresses.", code="bad_email_list")
    wrong = []
    for item in value:
        try:
            validate_email(item)
        except ValidationError:
            wrong.append(repr(item))
    if wrong:  # every wrong address at once; a code of its own: JSONField would replace the message of code "invalid"
        said = f"{wrong[0]} is" if len(wrong) == 1 else f"{', '.join(wrong)} are"
        raise ValidationError(f"{said} not {'a valid email address' if len(wrong) == 1 else 'valid email addresses'}.",
                              code="bad_email")


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
    hard_limit = models.BooleanField(
        "Hard limit", default=False,
        help_text="Once the period's spend reaches the amount, the gateway refuses calls in this budget's scope "
                  "(HTTP 429) until the period resets. Calls made without the gateway are counted, never blocked.")

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
