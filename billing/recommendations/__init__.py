"""Savings recommendations: waste patterns found in an organization's recent calls and GPU pools, each with its
evidence, the formula behind the estimate, and a monthly saving.

Every detector reads the window [now - window_days, now). Savings found in it are scaled to a month by the days
that have data (billing.monthly, the same scaling as the what-if page and the budget forecast's rate):
monthly = window figure × 30.44 / days with data, the days running from the hour of the organization's first call
in the window to its end, so 14 days of calls in a 30-day window are 14 days, not 30. GPU pool detectors scale by
their pool's hours instead (from its first costed hour in the window), whatever the calls. The days are stored
with each recommendation (data_start, data_end) and shown beside its figure. Prices come from the catalog
(billing.pricing.at_ingest.catalog_cache);
an organization's negotiated overrides are not applied. Only findings worth at least MIN_MONTHLY_SAVINGS_USD a
month are kept. The detectors and their formulas are described in their modules:
- traffic: model routing, prompt caching, response cache, failed-call waste.
- batch_api, context_trimming (long tails, long-context tiers), provisioned_capacity: how the traffic is bought;
  the first two price summed usage per long-context tier with tiered_usage.
- selfhost: self-host crossover (API spend vs renting GPUs, break-even month; crossover() for the what-if page).
- gpu_efficiency: GPU pools that could shrink: consolidation, quantization, continuous batching (one per pool).

generate() upserts by fingerprint (kind + scope): a dismissed recommendation reopens only when its monthly saving
at least doubles (not its window saving, which grows with the days of data alone); open ones whose condition no
longer holds are deleted; accepted and dismissed ones are kept as they are.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import Recommendation
from billing.monthly import DAYS_PER_MONTH, DataSpan, data_span
from billing.pricing.at_ingest import catalog_cache
from billing.recommendations.base import MIN_MONTHLY_SAVINGS_USD, REOPEN_FACTOR, Finding, Status, Window, calls_in, usd
from billing.recommendations.batch_api import batch_api
from billing.recommendations.context_trimming import context_trimming
from billing.recommendations.gpu_efficiency import gpu_efficiency
from billing.recommendations.provisioned_capacity import provisioned_capacity
from billing.recommendations.selfhost import self_host
from billing.recommendations.traffic import failed_calls, model_routing, prompt_caching, response_cache, route_for

__all__ = ["DETECTORS", "find", "generate", "generate_all", "route_for", "window_of"]

DETECTORS = (model_routing, prompt_caching, response_cache, failed_calls,
             batch_api, context_trimming, provisioned_capacity,
             self_host, gpu_efficiency)


def window_of(organization_id: int, now: datetime | None = None, window_days: int = 30) -> Window:
    """The organization's calls in [now - window_days, now) and their days with data."""
    until = now or timezone.now()
    since = until - timedelta(days=window_days)
    return Window(organization_id, since, until, calls_in(organization_id, since, until),
                  data_span(Q(organization_id=organization_id), since, until, now=until))


def find(organization_id: int, now: datetime | None = None, window_days: int = 30) -> list[Finding]:
    """Every finding worth at least MIN_MONTHLY_SAVINGS_USD a month, each with the days it is scaled by, without
    writing anything."""
    catalog_cache.refresh()
    window = window_of(organization_id, now, window_days)
    findings = []
    for detector in DETECTORS:
        for finding in detector(window):
            finding.span = finding.span or window.span
            if finding.span.monthly(finding.window_savings_usd) >= MIN_MONTHLY_SAVINGS_USD:
                findings.append(finding)
    return findings


def scaling(span: DataSpan, pool_hours: bool = False) -> str:
    """'× 30.44 / 13.96 days with data (Nov 19 – Dec 2)': the last step of every recommendation's formula."""
    days = span.days.quantize(Decimal("0.01")).normalize()
    unit = "day" if days == 1 else "days"
    return f"× {DAYS_PER_MONTH} / {days:f} {unit} {'of pool hours' if pool_hours else 'with data'} ({span.dates})"


def generate(organization_id: int, now: datetime | None = None, window_days: int = 30) -> list[Recommendation]:
    """Upsert the organization's recommendations; returns the ones found this run (open, accepted or dismissed)."""
    findings = find(organization_id, now, window_days)
    result = []
    with transaction.atomic():
        existing = {rec.fingerprint: rec for rec in
                    Recommendation.objects.select_for_update().filter(organization_id=organization_id)}
        for finding in findings:
            span = finding.span
            values = {
                "kind": finding.kind, "team_id": finding.team_id, "product_id": finding.product_id,
                "feature": finding.feature, "model": finding.model, "title": finding.title[:255],
                "evidence": finding.evidence | {
                    "window_days": window_days, "days_with_data": f"{span.days.quantize(Decimal('0.01')).normalize():f}",
                    "window_savings_usd": usd(finding.window_savings_usd)},
                "formula": f"({finding.formula}) {scaling(span, pool_hours=finding.kind.startswith('gpu_'))}",
                "monthly_savings_usd": span.monthly(finding.window_savings_usd).quantize(Decimal("0.000001")),
                "confidence": finding.confidence,
                "evidence_value": Decimal(finding.window_savings_usd).quantize(Decimal("0.0000000001")),
                "data_start": span.first, "data_end": span.end,
            }
            rec = existing.pop(finding.fingerprint, None)
            if rec is None:
                rec = Recommendation.objects.create(organization_id=organization_id, fingerprint=finding.fingerprint,
                                                    **values)
            elif (rec.status == Status.DISMISSED
                  and values["monthly_savings_usd"] < REOPEN_FACTOR * rec.monthly_savings_usd):
                pass  # stays dismissed with the evidence it was dismissed on
            else:
                if rec.status == Status.DISMISSED:
                    values |= {"status": Status.OPEN, "dismissed_reason": ""}
                for name, value in values.items():
                    setattr(rec, name, value)
                rec.save()
            result.append(rec)
        stale = [rec.pk for rec in existing.values() if rec.status == Status.OPEN]
        Recommendation.objects.filter(pk__in=stale).delete()
    return result


def generate_all(now: datetime | None = None, window_days: int = 30) -> dict:
    from observatory.models import Organization

    counts = {}
    for organization_id in Organization.objects.values_list("pk", flat=True):
        counts[organization_id] = len(generate(organization_id, now, window_days))
    return {"organizations": len(counts), "recommendations": sum(counts.values())}
