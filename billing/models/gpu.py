"""GPU pools and the hourly cost each team (or nobody: idle) is charged for them."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone


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
