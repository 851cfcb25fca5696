"""The call record (one row per model call) and the trace context around it.

All three tables are range-partitioned by day on start_time (see migration 0001 and
ingest/partitions.py). Django sees `id` as the primary key; in PostgreSQL the key is
(id, start_time), because every unique key of a partitioned table must include the partition key.
Foreign keys carry no database constraint: the hot write path is COPY, and tenancy rows are
never deleted while calls refer to them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone


class CostStatus(models.TextChoices):
    PENDING = "pending", "Not priced yet"
    PRICED = "priced", "Priced from the catalog"
    PROVIDED = "provided", "Cost provided by the instrumentation"
    UNKNOWN_MODEL = "unknown_model", "No price for this model"
    FREE = "free", "Free (no billable tokens)"
    IMPLAUSIBLE = "implausible", "Implausible values: not billed"
    USAGE_MISSING = "usage_missing", "No usage reported: tokens unknown"


class LLMCall(models.Model):
    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "observatory.Organization", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True, default="")
    start_time = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    provider = models.TextField(blank=True, default="")
    operation = models.TextField(blank=True, default="")
    request_model = models.TextField(blank=True, default="")
    response_model = models.TextField(blank=True, default="")
    model = models.TextField(
        blank=True, default="", db_default="",
        help_text="The canonical model every page groups by (ingest.model_names.canonical_model); the two above are details.",
    )
    response_id = models.TextField(blank=True, default="", db_default="", help_text="The provider's id of its answer.")
    input_tokens = models.BigIntegerField(default=0, help_text="All input tokens, including cached read and cache write.")
    cached_input_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0, help_text="All output tokens, including reasoning.")
    reasoning_tokens = models.BigIntegerField(default=0)
    usage_reported = models.BooleanField(default=True)
    streaming = models.BooleanField(default=False)
    status = models.CharField(max_length=8, default="ok")
    error_type = models.TextField(blank=True, default="")
    http_status = models.SmallIntegerField(null=True, blank=True)
    finish_reason = models.TextField(blank=True, default="")
    team = models.ForeignKey(
        "observatory.Team", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    product = models.ForeignKey(
        "observatory.Product", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    feature = models.TextField(blank=True, default="")
    environment = models.TextField(blank=True, default="")
    end_user = models.TextField(blank=True, default="")
    session = models.TextField(blank=True, default="")
    service_name = models.TextField(blank=True, default="")
    source = models.TextField(blank=True, default="")
    source_version = models.TextField(blank=True, default="")
    app_cache_hit = models.BooleanField(default=False)
    cost_avoided_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    prompt_prefix_hash = models.TextField(blank=True, default="")
    request_hash = models.TextField(blank=True, default="")
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    cost_status = models.CharField(max_length=16, choices=CostStatus.choices, default=CostStatus.PENDING)
    price_id = models.BigIntegerField(null=True, blank=True)
    provided_cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    api_key = models.ForeignKey(
        "observatory.ApiKey", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    attribution = models.CharField(
        max_length=8, blank=True, default="", db_default="", help_text="Where team/product came from: call, rule, key, or empty."
    )
    attributes = models.JSONField(default=dict, blank=True)
    ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trace_id", "span_id", "start_time", "organization"], name="llmcall_unique_span"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "start_time"], name="llmcall_org_time"),
            models.Index(fields=["organization", "ingested_at"], name="llmcall_org_ingested"),
            # small partial indexes for the errors page and the "models needing a price" list
            models.Index(fields=["organization", "start_time"], condition=models.Q(status="error"), name="llmcall_errors"),
            models.Index(fields=["organization", "start_time"], condition=models.Q(cost_status="unknown_model"),
                         name="llmcall_unpriced"),
            models.Index(fields=["organization", "response_id"], condition=~models.Q(response_id=""),
                         name="llmcall_response_id"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.response_model or self.request_model} @ {self.start_time:%Y-%m-%d %H:%M:%S}"

    @property
    def model_name(self) -> str:
        return self.model or self.response_model or self.request_model


# The model a call is grouped by, for rows written before the canonical column (or by hand, as tests do).
CALL_MODEL = Coalesce(NullIf("model", Value("")), NullIf("response_model", Value("")), "request_model",
                      output_field=models.TextField())


class TraceSpan(models.Model):
    """A span that is not a model call (HTTP, DB, agent step), kept so a call's trace can be shown.

    Its team and product decide who may read it (observatory.access), as a call's do; ingest resolves them as it
    does a call's, else from the export's calls (ingest.span_owners). A span without a team is for org-wide eyes.
    """

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "observatory.Organization", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True, default="")
    name = models.TextField(blank=True, default="")
    kind = models.SmallIntegerField(default=0)
    start_time = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    status = models.CharField(max_length=8, default="ok")
    service_name = models.TextField(blank=True, default="")
    scope_name = models.TextField(blank=True, default="")
    team = models.ForeignKey(
        "observatory.Team", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )
    product = models.ForeignKey(
        "observatory.Product", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trace_id", "span_id", "start_time", "organization"], name="tracespan_unique_span"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.span_id})"


class CallContent(models.Model):
    """Prompt and completion text of a call; written only when the organization captures content."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "observatory.Organization", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    start_time = models.DateTimeField()
    input_content = models.TextField(blank=True, default="")
    output_content = models.TextField(blank=True, default="")
    truncated = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trace_id", "span_id", "start_time", "organization"], name="callcontent_unique_span"
            ),
        ]

    def __str__(self) -> str:
        return f"content of {self.span_id}"


class MetricSample(models.Model):
    """A GPU / serving metric point (e.g. DCGM or NVML utilization) kept for GPU cost attribution.

    GenAI client metrics (token usage, durations) repeat what the spans already say and are not kept.
    """

    organization = models.ForeignKey(
        "observatory.Organization", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    name = models.TextField()
    series = models.CharField(max_length=64, help_text="Hash of the point's attributes: one series per device/label set.")
    time = models.DateTimeField()
    value = models.FloatField()
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name", "series", "time"], name="metricsample_unique_point"),
        ]
        indexes = [models.Index(fields=["organization", "name", "time"], name="metricsample_org_name_time")]

    def __str__(self) -> str:
        return f"{self.name}={self.value} @ {self.time:%Y-%m-%d %H:%M:%S}"


from ingest.feedback import Feedback  # noqa: E402,F401 (user feedback on calls)
