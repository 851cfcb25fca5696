"""What hard budgets need at the gateway: a spend counter per (budget, period) that gateways add each stored call's
cost to and the reconciliation resets from the rollups (when Redis is configured the counters live there instead),
and the count of requests the gateway refused per budget and hour — refusals are not calls and cost nothing."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class BudgetCounter(models.Model):
    budget = models.ForeignKey("billing.Budget", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateTimeField()
    spent_usd = models.DecimalField(max_digits=20, decimal_places=10, default=0)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["budget", "period_start"], name="budget_counter_once_per_period")]

    def __str__(self) -> str:
        return f"budget {self.budget_id} from {self.period_start:%Y-%m-%d}: ${self.spent_usd}"


class BudgetRefusal(models.Model):
    budget = models.ForeignKey("billing.Budget", on_delete=models.CASCADE, related_name="refusals")
    hour = models.DateTimeField()
    refused = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["budget", "hour"], name="budget_refusal_once_per_hour")]

    def __str__(self) -> str:
        return f"budget {self.budget_id}, {self.hour:%Y-%m-%d %H}:00: {self.refused} refused"
