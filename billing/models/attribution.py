"""Rules giving a team, product or feature to calls that name none."""

from __future__ import annotations

from django.db import models

from ingest.attribution import RuleField


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
