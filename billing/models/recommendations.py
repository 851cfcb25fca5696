"""Savings recommendations with their evidence, monthly saving and status."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from billing.monthly import DataSpan


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
        help_text="The saving found in the days with data (data_start to data_end), before scaling to a month.",
    )
    data_start = models.DateTimeField(
        null=True, blank=True,
        help_text="Start of the days with data the saving was found in: the hour of the window's first call (GPU "
                  "pool kinds: the pool's first costed hour). monthly_savings_usd = evidence_value × 30.44 / days.",
    )
    data_end = models.DateTimeField(null=True, blank=True, help_text="End of those days: the end of the window.")
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

    @property
    def data_span(self) -> DataSpan | None:
        """The days the monthly figure is scaled by (billing.monthly); None on a row never computed with them."""
        if self.data_start is None or self.data_end is None:
            return None
        return DataSpan(self.data_start, self.data_end)

    @property
    def scaled_by_pool_hours(self) -> bool:
        return self.kind in (self.Kind.GPU_CONSOLIDATION, self.Kind.GPU_QUANTIZATION, self.Kind.GPU_BATCHING)

    @property
    def basis(self) -> str:
        """'based on 14 days with data, Nov 18 – Dec 1': which days the monthly figure is scaled by, for the Savings
        page, its CSV and the digest ('' on a row never computed with them)."""
        span = self.data_span
        if span is None:
            return ""
        return f"based on {span.day_count} {'of pool hours' if self.scaled_by_pool_hours else 'with data'}, {span.dates}"
