"""Reads for the savings pages: the recommendations a viewer may see (/recommendations/) and the scope's monthly spend
beside them, the what-if calculator (/what-if/) and the export month picker.

Visibility and the right to act on a recommendation come from `observatory.access`, as in the REST API: org-wide
members see all of their organization's, team members (and team keys) those scoped to their teams.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.core.validators import MaxValueValidator
from django.db.models import Count, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone

from billing import whatif
from billing.models import Recommendation
from billing.monthly import DataSpan, data_span
from observatory.access import Viewer

ZERO = Decimal(0)
HUNDRED = Decimal(100)
EXPORT_MONTHS = 12
RECOMMENDATION_WINDOW_DAYS = 30  # the nightly job's window (billing.tasks.generate_recommendations)
# evidence keys shown first, in this order, with readable labels; the rest follow as they are
EVIDENCE_LABELS = {
    "calls": "Calls", "duplicate_calls": "Repeated calls", "failed_calls": "Failed calls",
    "median_input_tokens": "Median input tokens", "median_output_tokens": "Median output tokens",
    "input_tokens": "Input tokens", "output_tokens": "Output tokens", "cached_input_tokens": "Cached input tokens",
    "suggested_model": "Suggested model", "window_days": "Days looked at", "days_with_data": "Days with data",
    "window_savings_usd": "Saving in the days with data ($)",
}


def visible_recommendations(viewer: Viewer) -> QuerySet[Recommendation]:
    recs = Recommendation.objects.filter(organization=viewer.organization).select_related("team", "product", "organization")
    return viewer.readable(recs).order_by("-monthly_savings_usd", "id")


def find_recommendation(viewer: Viewer, rec_id: int) -> Recommendation | None:
    return visible_recommendations(viewer).filter(pk=rec_id).first()


def may_act(viewer: Viewer, rec: Recommendation) -> bool:
    return viewer.may_change(rec.team, rec.product)


def may_refresh(viewer: Viewer) -> bool:
    return viewer.may_create


@dataclass
class Summary:
    open_count: int
    open_monthly_usd: Decimal
    accepted_count: int
    accepted_monthly_usd: Decimal
    dismissed_count: int
    open_basis: str = ""  # 'based on 14 days with data, Nov 18 – Dec 1' when the open ones share their days


def summary(recs: QuerySet[Recommendation]) -> Summary:
    totals = {row["status"]: row for row in recs.values("status").annotate(n=Count("id"), usd=Sum("monthly_savings_usd"))
              .order_by()}

    def part(status: str, key: str):
        row = totals.get(status)
        return (row[key] or ZERO) if row else (0 if key == "n" else ZERO)

    bases = {Recommendation(kind=kind, data_start=first, data_end=end).basis for kind, first, end in
             recs.filter(status=Recommendation.Status.OPEN).values_list("kind", "data_start", "data_end").order_by()}
    return Summary(part("open", "n"), part("open", "usd"), part("accepted", "n"), part("accepted", "usd"),
                   part("dismissed", "n"), bases.pop() if len(bases) == 1 else "")


@dataclass
class Baseline:
    """The viewer's spend over the recommendations' window, scaled to a month as the what-if page scales it."""

    monthly_usd: Decimal
    span: DataSpan


def spend_baseline(viewer: Viewer, now: datetime | None = None, days: int = RECOMMENDATION_WINDOW_DAYS) -> Baseline:
    """What the viewer's scope spends a month now: the last `days` days' recorded spend × 30.44 / the days with data
    — the what-if page's "Now" for the same days, and the budget forecast's rate over a month of 30.44 days."""
    end = now or timezone.now()
    start = end - timedelta(days=days)
    span = data_span(viewer.scope.q(), start, end, now=end)
    month = whatif.what_if(whatif.model_usage(viewer.scope, start, end), span.days, whatif.Scenario())
    return Baseline(month.baseline_monthly_usd, span)


def filtered(recs: QuerySet[Recommendation], kind: str, status: str) -> QuerySet[Recommendation]:
    if kind in Recommendation.Kind.values:
        recs = recs.filter(kind=kind)
    if status in Recommendation.Status.values:
        recs = recs.filter(status=status)
    return recs


def calls_link(viewer: Viewer, rec: Recommendation) -> str | None:
    """The calls explorer filtered to the calls behind a recommendation (GPU pool kinds have none)."""
    if rec.kind in (Recommendation.Kind.GPU_CONSOLIDATION, Recommendation.Kind.GPU_QUANTIZATION,
                    Recommendation.Kind.GPU_BATCHING):
        return None
    params = {"org": viewer.organization.slug, "range": "custom"}
    span = rec.data_span
    if span is not None and span.first is not None:
        start, end = span.first.date(), (span.end - timedelta(microseconds=1)).date()
    else:
        end = rec.updated_at.date()
        start = date.fromordinal(end.toordinal() - int(rec.evidence.get("window_days") or RECOMMENDATION_WINDOW_DAYS))
    params["start"] = start.isoformat()
    params["end"] = end.isoformat()
    if rec.model:
        params["model"] = rec.model
    if rec.feature:
        params["feature"] = rec.feature
    if rec.team_id:
        params["team"] = rec.team.slug
    if rec.product_id:
        params["product"] = rec.product.slug
    if rec.kind == Recommendation.Kind.FAILED_CALLS:
        params["status"] = "error"
    return f"{reverse('calls')}?{urlencode(params)}"


def evidence_rows(rec: Recommendation) -> list[tuple[str, str]]:
    """The evidence as (label, value) pairs, known keys first; nested values flattened one level."""
    def show(value) -> str:
        if isinstance(value, float):
            return f"{value:,.1f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        if isinstance(value, dict):
            return ", ".join(f"{k} {show(v)}" for k, v in value.items())
        if isinstance(value, list):
            return ", ".join(show(v) for v in value)
        return str(value)

    keys = [k for k in EVIDENCE_LABELS if k in rec.evidence] + [k for k in rec.evidence if k not in EVIDENCE_LABELS]
    return [(EVIDENCE_LABELS.get(k, k.replace("_", " ").capitalize()), show(rec.evidence[k])) for k in keys]


def rows(viewer: Viewer, recs) -> list[dict]:
    return [{"rec": rec, "may_act": may_act(viewer, rec), "calls_url": calls_link(viewer, rec),
             "evidence": evidence_rows(rec), "basis": rec.basis} for rec in recs]


def export_months(today: date, count: int = EXPORT_MONTHS) -> list[str]:
    """This month and the previous ones, newest first, as YYYY-MM."""
    months = []
    year, month = today.year, today.month
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months


# What-if calculator ---------------------------------------------------------------------------------------------

class PercentField(forms.DecimalField):
    """0–100 in the form, a fraction in cleaned_data."""

    def __init__(self, **kwargs):
        super().__init__(min_value=0, max_value=100, max_digits=6, decimal_places=2, required=False, **kwargs)

    def clean(self, value):
        cleaned = super().clean(value)
        return ZERO if cleaned is None else cleaned / HUNDRED


class WhatIfForm(forms.Form):
    from_model = forms.ChoiceField(required=False, label="Move traffic of")
    to_model = forms.CharField(required=False, max_length=200, label="to model")
    move_share = PercentField(label="Share moved (%)")
    cache_hit_rate = PercentField(label="Response cache hit rate (%)")
    batch_share = PercentField(label="Share through the batch API (%)")

    def __init__(self, *args, model_keys: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from_model"].choices = [("", "—"), *((key, key) for key in model_keys)]
        self.fields["to_model"].widget.attrs.update({  # the catalog's names as you type (observatory.views.savings)
            "list": "catalog-models", "autocomplete": "off", "placeholder": "a catalog model, e.g. gpt-4o-mini",
            "hx-get": reverse("what-if-models"), "hx-trigger": "input changed delay:200ms", "hx-target": "#catalog-models",
            "hx-swap": "innerHTML", "hx-push-url": "false", "hx-sync": "this:replace",
        })

    def clean(self):
        data = super().clean()
        if data.get("move_share") and not (data.get("from_model") and data.get("to_model")):
            raise forms.ValidationError("To move traffic, pick the model it comes from and name the model it goes to.")
        return data


ASSUMPTION_FIELDS = {
    # name: (label, help, decimal places, minimum)
    "gpu_hourly_usd": ("GPU $/hour", "one GPU, rented or amortized", 4, Decimal("0.0001")),
    "decode_tokens_per_second": ("Output tok/s per GPU", "sustained decode, with continuous batching", 2, Decimal("0.01")),
    "prefill_tokens_per_second": ("Input tok/s per GPU", "prefill", 2, Decimal("0.01")),
    "target_utilization": ("Target utilization", "share of GPU time kept busy, 0–1", 3, Decimal("0.001")),
    "setup_usd": ("Setup $ (once)", "stand up, evaluate, migrate", 2, ZERO),
    "monthly_ops_usd": ("Operations $/month", "on-call and MLOps time", 2, ZERO),
}


class CrossoverForm(forms.Form):
    """The self-host calculator. The API side is empty by default: it then comes from the chosen model's traffic
    (shown as placeholders); typed figures replace it. Empty assumptions take the documented defaults."""

    model = forms.ChoiceField(required=False, label="Model")
    api_monthly_usd = forms.DecimalField(required=False, min_value=0, max_digits=16, decimal_places=2,
                                         label="API $/month")
    monthly_input_tokens = forms.IntegerField(required=False, min_value=0, max_value=10**16, label="Input tokens/month")
    monthly_output_tokens = forms.IntegerField(required=False, min_value=0, max_value=10**16, label="Output tokens/month")
    min_gpus = forms.IntegerField(required=False, min_value=1, max_value=100_000, label="Minimum GPUs")
    horizon_months = forms.IntegerField(required=False, min_value=1, max_value=120, label="Months shown")

    def __init__(self, *args, model_keys: list[str], defaults, **kwargs):
        super().__init__(*args, prefix="sh", **kwargs)
        self.fields["model"].choices = [("", "—"), *((key, key) for key in model_keys)]
        for name, (label, help_text, places, minimum) in ASSUMPTION_FIELDS.items():
            self.fields[name] = forms.DecimalField(required=False, min_value=minimum, max_digits=16, decimal_places=places,
                                                   label=label, help_text=help_text)
        self.fields["target_utilization"].max_value = 1
        self.fields["target_utilization"].validators.append(MaxValueValidator(1))
        for name in (*ASSUMPTION_FIELDS, "min_gpus"):
            self.fields[name].widget.attrs["placeholder"] = str(getattr(defaults, name))
        self.fields["horizon_months"].widget.attrs["placeholder"] = "36"

    def assumptions(self, defaults):
        """SelfHostAssumptions from the cleaned data, defaults where empty (call after is_valid())."""
        values = {name: self.cleaned_data.get(name) for name in (*ASSUMPTION_FIELDS, "min_gpus")}
        return dataclasses.replace(defaults, **{k: v for k, v in values.items() if v is not None})
