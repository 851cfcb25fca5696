"""Hourly and daily rollups of the calls (with latency histograms per model and product, spend per end user and
session, failed calls per error type) that the pages read."""

from __future__ import annotations

from django.db import models
from django.db.models import F
from django.utils import timezone


class SpendSums(models.Model):
    """The grouping every rollup row shares (organization, team, product, provider, model, environment, feature) and
    the sums the spend pages read; RollupDims adds the latency histograms."""

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
    ttft_calls = models.BigIntegerField(default=0)
    ttft_sum_ms = models.FloatField(default=0)

    class Meta:
        abstract = True


class RollupDims(SpendSums):
    latency_buckets = models.JSONField(default=dict, help_text="Log bucket index (ratio 1.05) → calls.")
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
        indexes = [models.Index(fields=["organization", "day"], name="dailyrollup_org_day"),
                   models.Index(fields=["organization", "team", "day"], name="dailyrollup_org_team_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.model} ({self.calls} calls)"


class DailyTeamModelRollup(RollupDims):
    """DailyRollup summed over environment and feature (both always empty here): a day has a row per team, product,
    provider and model, a few times fewer than DailyRollup's, so reads grouped by nothing but those (the overview,
    caching, errors, models and latency pages) scan fewer rows. Written by the rollup job from DailyRollup."""

    day = models.DateField()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="dailyteammodel_org_day"),
                   models.Index(fields=["organization", "team", "day"], name="dailyteammodel_org_team_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.model} ({self.calls} calls)"


class DailyTeamModelSpend(SpendSums):
    """DailyTeamModelRollup without its latency histograms: the spend reads (overview, models, caching, errors, the
    calendar, budgets) sum many days of these rows, and a row without the two histograms is a third of the size, so
    they read a third of the pages. Written by the rollup job with DailyTeamModelRollup."""

    day = models.DateField()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="dailyteamspend_org_day"),
                   models.Index(fields=["organization", "team", "day"], name="dailyteamspend_org_team_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.model} ({self.calls} calls)"


class WeeklyTeamModelSpend(SpendSums):
    """DailyTeamModelSpend summed over a UTC week (Monday to Sunday): the same team × product × model keys come back
    every day, so a month of spend by team and model reads about 4 weekly rows per key and the days around them
    instead of 30. Rebuilt from the daily rows by the rollup job for every week one of whose days it rolls up."""

    week = models.DateField(help_text="The Monday the week starts.")

    class Meta:
        indexes = [models.Index(fields=["organization", "week"], name="weeklyteamspend_org_week")]

    def __str__(self) -> str:
        return f"week of {self.week} {self.model} ({self.calls} calls)"


class DailyTeamSpend(SpendSums):
    """DailyTeamModelSpend summed per team (product, provider and model left empty): a day has one row per team, so
    the spend charts, the calendar and the totals of a month read tens of rows per day instead of a thousand.
    Written by the rollup job with DailyTeamModelSpend."""

    day = models.DateField()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="dailyteamtotal_org_day")]

    def __str__(self) -> str:
        return f"{self.day} team {self.team_id or '-'} ({self.calls} calls)"


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


class WeeklyModelLatency(ModelLatency):
    """DailyModelLatency merged over a UTC week (Monday to Sunday): a month of org-wide per-model percentiles reads
    about 4 weekly rows and the few days around them per model instead of 30. Rebuilt from the daily rows by the
    rollup job for every week one of whose days it rolls up (replace, not add)."""

    week = models.DateField(help_text="The Monday the week starts.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "week", "provider", "model"], name="weeklymodellatency_unique")
        ]

    def __str__(self) -> str:
        return f"week of {self.week} {self.model}"


class WeeklyProductLatency(ProductLatency):
    """DailyProductLatency merged over a UTC week, as WeeklyModelLatency: the latency page's per-product rows."""

    week = models.DateField(help_text="The Monday the week starts.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "week", "product"], name="weeklyproductlatency_unique",
                                    nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"week of {self.week} product {self.product_id or '-'}"


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
            # one team's slowest: the index above would walk every team's
            models.Index(fields=["organization", "team", "-duration_ms"], name="hourlyslowcall_team_duration"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.duration_ms:.0f} ms"


class DailyCallerSpend(models.Model):
    """One organization's calls of a UTC day per team and end user (or session), read by the users page. The
    rollup job recomputes a whole day from its calls whenever one of its hours is rolled up (replace, not add).
    Calls naming no one are kept too, under the empty name, so the share of calls that name one comes from
    here as well."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    calls = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=10, null=True, blank=True,
                                   help_text="Empty when none of the calls has a cost, as the sum of their costs is.")
    last_seen = models.DateTimeField()

    class Meta:
        abstract = True


class DailyEndUserSpend(DailyCallerSpend):
    end_user = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="dailyenduserspend_org_day"),
                   models.Index(fields=["organization", "team", "day"], name="dailyenduserspend_org_team_day"),
                   # the calls naming no one: with the total, how many name one
                   models.Index(fields=["organization", "team", "day"], condition=models.Q(end_user=""),
                                name="dailyenduserspend_unnamed")]

    def __str__(self) -> str:
        return f"{self.day} {self.end_user or '(no end user)'}"


class WeeklyEndUserSpend(models.Model):
    """DailyEndUserSpend summed over a UTC week (Monday to Sunday): end users come back day after day, so a month
    of the users page sums 5 weekly rows per end user and team instead of 30 daily ones. Rebuilt from the daily rows
    by the rollup job for every week one of whose days it rolls up (replace, not add); without the calls naming no
    one (the daily rows keep those)."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    week = models.DateField(help_text="The Monday the week starts.")
    team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    end_user = models.TextField()
    calls = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=10, null=True, blank=True)
    last_seen = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["organization", "week"], name="weeklyenduserspend_org_week")]

    def __str__(self) -> str:
        return f"week of {self.week} {self.end_user}"


class DailySessionSpend(DailyCallerSpend):
    session = models.TextField(blank=True, default="")
    shared = models.BooleanField(
        default=True,
        help_text="The session has other rows (another day or team), so its total is a sum; false: this row is all of "
                  "it. Almost every session lives within one day, so the users page sums only the shared ones and "
                  "reads the top of the others straight off an index.")

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="dailysessionspend_org_day"),
                   models.Index(fields=["organization", "team", "day"], name="dailysessionspend_org_team_day"),
                   # the calls naming no one: with the total, how many name one
                   models.Index(fields=["organization", "team", "day"], condition=models.Q(session=""),
                                name="dailysessionspend_unnamed"),
                   models.Index(fields=["organization", "session"], name="dailysessionspend_org_session"),
                   models.Index(F("organization"), F("cost_usd").desc(nulls_last=True),
                                condition=models.Q(shared=False) & ~models.Q(session=""),
                                name="dailysessionspend_whole_top")]

    def __str__(self) -> str:
        return f"{self.day} {self.session or '(no session)'}"


class DailyErrorType(models.Model):
    """One organization's failed calls of a UTC day per team, error type and HTTP status, read by the errors page;
    recomputed a whole day at a time like DailyCallerSpend."""

    organization = models.ForeignKey("observatory.Organization", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    team = models.ForeignKey("observatory.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error_type = models.TextField(blank=True, default="")
    http_status = models.SmallIntegerField(null=True, blank=True)
    calls = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=10, null=True, blank=True)
    last_seen = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="dailyerrortype_org_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.error_type or '(no type)'} {self.http_status or ''}"


# Budgets and alerts ------------------------------------------------------------------------------------------------
