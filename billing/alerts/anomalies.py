"""Spend-anomaly and latency-SLO alerts, evaluated every minute from the rollups.

Spend anomaly (AnomalyRule): the spend of one hour of each team, product or model (the rule's dimension)
is compared with the same hour of the previous `baseline_weeks` weeks by a robust z-score,
z = 0.6745 × (x − median) / MAD. It alerts when z > `z_threshold` (6) and x − median > `min_excess_usd`,
so a team going from $0.02 to $0.50 an hour is not paged. With a flat baseline (MAD = 0),
1.2533 × the mean absolute deviation stands in for MAD (Iglewicz–Hoaglin); if that is 0 too, any excess
over the dollar floor counts. Weeks before the organization's first rolled-up hour are not baseline: with
fewer than MIN_BASELINE_WEEKS of them there is no verdict. The current (partial) hour, with the calls not
rolled up yet, and the last complete hour are checked, so a burst is caught within minutes.

Latency SLO (LatencySlo): the chosen quantile (p99) of call latency of a product and/or model over the
last `window_hours` complete hours plus the current one, from the rollups' histograms
(billing.queries.percentiles); a breach is a value above `limit_ms` over at least `min_calls` calls.

Both raise one alert per (rule, hour, subject) through billing.alerts.delivery; a condition that continues from
the previous hour is recorded but not sent again, so a bad afternoon pages once, not every hour.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Min, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from billing.alerts.budgets import HOUR, WEEK, SpendScope, evaluated, floor_hour, in_hours, money, tally
from billing.alerts.delivery import deliver_alerts, record_alerts, send_test_alert
from billing.models import Alert, AnomalyRule, HourlyRollup, LatencySlo
from billing.queries import percentiles
from billing.rollups import RollupProgress, rollup_progress, unrolled_hours
from ingest.models import CALL_MODEL
from observatory.access import Scope
from observatory.models import Product, Team

log = logging.getLogger(__name__)

MIN_BASELINE_WEEKS = 3
STALE_AFTER = timedelta(hours=2)
CONTINUES = "continues the alert of the previous hour"


def robust_z(value: Decimal, baseline: Sequence[Decimal]) -> tuple[float, Decimal]:
    """(robust z-score of `value` against `baseline`, the baseline's median)."""
    median = statistics.median(baseline)
    deviations = [abs(x - median) for x in baseline]
    mad = statistics.median(deviations)
    excess = value - median
    if mad > 0:
        return 0.6745 * float(excess) / float(mad), median
    mean_deviation = sum(deviations) / len(deviations)
    if mean_deviation > 0:
        return float(excess) / (1.2533 * float(mean_deviation)), median
    return (math.inf if excess > 0 else 0.0), median


def _subject_column(rule: AnomalyRule) -> str:
    return {"team": "team_id", "product": "product_id", "model": "model"}[rule.dimension]


def _hourly_by_subject(rule: AnomalyRule, hours: list[datetime],
                       progress: RollupProgress) -> dict[tuple[datetime, object], Decimal]:
    """Spend per (hour, subject) from rollups, and from raw calls for the hours the rollups may not match yet
    (billing.rollups.unrolled_hours), so no call is counted twice."""
    scope = SpendScope.of(rule)
    column = _subject_column(rule)
    spend: dict[tuple[datetime, object], Decimal] = defaultdict(Decimal)
    unrolled = unrolled_hours(rule.organization_id, min(hours), max(hours) + HOUR, progress) & set(hours)
    rolled = (HourlyRollup.objects.filter(scope.q(), hour__in=set(hours) - unrolled)
              .values_list("hour", column).annotate(c=Sum("cost_usd")).order_by())
    calls = scope.calls().filter(in_hours(unrolled)).annotate(h=TruncHour("start_time", tzinfo=UTC))
    if rule.dimension == AnomalyRule.Dimension.MODEL:
        calls = calls.annotate(model_name=CALL_MODEL)
        column = "model_name"
    raw = calls.values_list("h", column).annotate(c=Sum("cost_usd")).order_by() if unrolled else []
    for hour, subject, cost in [*rolled, *raw]:
        if cost:
            spend[(hour.astimezone(UTC), subject)] += cost
    return spend


def _subject_key(rule: AnomalyRule, subject) -> str:
    return f"{rule.dimension}:{'none' if subject is None else subject}"


def _subject_label(rule: AnomalyRule, subject) -> tuple[str, str]:
    """(display name, page URL) of a team, product or model."""
    if subject is None:
        return "unattributed", f"{settings.SITE_URL}/"
    if rule.dimension == AnomalyRule.Dimension.TEAM:
        team = Team.objects.filter(pk=subject).first()
        return (team.name, f"{settings.SITE_URL}/teams/{team.slug}/") if team else (f"team #{subject}", settings.SITE_URL)
    if rule.dimension == AnomalyRule.Dimension.PRODUCT:
        product = Product.objects.filter(pk=subject).first()
        if product:
            return product.name, f"{settings.SITE_URL}/products/{product.slug}/"
        return f"product #{subject}", settings.SITE_URL
    return str(subject), f"{settings.SITE_URL}/"


def _anomaly_alert(rule: AnomalyRule, hour: datetime, subject, spend: Decimal, median: Decimal, z: float,
                   now: datetime) -> Alert:
    label, url = _subject_label(rule, subject)
    key = _subject_key(rule, subject)
    z_text = "∞" if math.isinf(z) else f"{z:.1f}"
    continues = Alert.objects.filter(anomaly_rule=rule, kind=Alert.Kind.ANOMALY, subject=key,
                                     period_start=hour - HOUR).exists()
    return Alert(
        organization_id=rule.organization_id, anomaly_rule=rule, kind=Alert.Kind.ANOMALY, period_start=hour,
        period_end=hour + HOUR, subject=key, subject_label=label[:300], spend_usd=spend,
        title=f"{rule.name}: {label} spent {money(spend)} in the hour from {hour:%H:%M} UTC (usually {money(median)})"[:300],
        message=(f"Hourly spend of {rule.get_dimension_display().lower()} “{label}” is far above its usual level for this "
                 f"hour of the week: {money(spend)} from {hour:%Y-%m-%d %H:%M} UTC against a median of {money(median)} "
                 f"(robust z-score {z_text})."),
        deliver_until=hour + HOUR + STALE_AFTER, suppressed=CONTINUES if continues else "", created_at=now,
        details={"event": "spend.anomaly", "url": url, "z_score": None if math.isinf(z) else round(z, 2),
                 "baseline_median_usd": str(median),
                 "fields": [[rule.get_dimension_display(), label], ["Spend this hour", money(spend)],
                            ["Usual for this hour", money(median)], ["Robust z-score", z_text]]},
    )


def first_rolled_hour(organization_id: int) -> datetime | None:
    return HourlyRollup.objects.filter(organization_id=organization_id).aggregate(h=Min("hour"))["h"]


def evaluate_anomaly_rule(rule: AnomalyRule, now: datetime | None = None, first_hour: datetime | None = None) -> list[Alert]:
    """Check the current and the previous hour of every subject of the rule; returns the alerts raised."""
    now = now or timezone.now()
    first_hour = first_hour or first_rolled_hour(rule.organization_id)
    if first_hour is None:
        return []
    current = floor_hour(now)
    checked = [current - HOUR, current]
    baselines = {hour: [hour - k * WEEK for k in range(1, rule.baseline_weeks + 1) if hour - k * WEEK >= first_hour]
                 for hour in checked}
    checked = [hour for hour in checked if len(baselines[hour]) >= MIN_BASELINE_WEEKS]
    if not checked:
        return []
    spend = _hourly_by_subject(rule, sorted({*checked, *(w for h in checked for w in baselines[h])}),
                               rollup_progress(rule.organization_id))
    raised = []
    for hour in checked:
        alerted = set(Alert.objects.filter(anomaly_rule=rule, period_start=hour).values_list("subject", flat=True))
        for (spent_hour, subject), value in sorted(spend.items(), key=lambda item: str(item[0][1])):
            if spent_hour != hour or _subject_key(rule, subject) in alerted:
                continue
            z, median = robust_z(value, [spend.get((week, subject), Decimal(0)) for week in baselines[hour]])
            if z > float(rule.z_threshold) and value - median > rule.min_excess_usd:
                raised += record_alerts([_anomaly_alert(rule, hour, subject, value, median, z, now)], rule, now)
    deliver_alerts(raised, now)
    return raised


def evaluate_latency_slo(slo: LatencySlo, now: datetime | None = None) -> list[Alert]:
    """Raise a latency alert when the SLO's percentile is over its limit; returns the alerts raised."""
    now = now or timezone.now()
    current = floor_hour(now)
    start = current - slo.window_hours * HOUR
    group_by = [name for name, wanted in (("product", slo.product_id), ("model", slo.model)) if wanted]
    if Alert.objects.filter(latency_slo=slo, kind=Alert.Kind.LATENCY, period_start=current).exists():
        return []
    quantile = float(slo.quantile)
    column = f"p{round(quantile * 100):d}"  # as billing.queries.percentiles names it
    key = f"p{quantile * 100:g}"
    rows = percentiles(Scope(slo.organization_id), start, now, group_by=group_by, quantiles=(quantile,))
    row = next((r for r in rows if r.get("product_id", slo.product_id) == slo.product_id
                and r.get("model", slo.model) == slo.model), None)
    if row is None or row["count"] < slo.min_calls or row[column] is None or row[column] <= slo.limit_ms:
        return []
    value = row[column]
    what = " / ".join(filter(None, [slo.product.name if slo.product_id else "", slo.model])) or "all calls"
    continues = Alert.objects.filter(latency_slo=slo, kind=Alert.Kind.LATENCY, period_start=current - HOUR).exists()
    alert = Alert(
        organization_id=slo.organization_id, latency_slo=slo, kind=Alert.Kind.LATENCY, period_start=current,
        period_end=current + HOUR, subject_label=what[:300],
        title=f"{slo.name}: {key} latency of {what} is {value:,.0f} ms (limit {slo.limit_ms:,.0f} ms)"[:300],
        message=(f"The {key} latency of {what} over the last {slo.window_hours} h ({row['count']:,} calls since "
                 f"{start:%H:%M} UTC) is {value:,.0f} ms, above the SLO limit of {slo.limit_ms:,.0f} ms."),
        deliver_until=current + HOUR + STALE_AFTER, suppressed=CONTINUES if continues else "", created_at=now,
        details={"event": "latency.slo_breached", "url": f"{settings.SITE_URL}/latency/", "value_ms": round(value, 1),
                 "limit_ms": slo.limit_ms, "calls": row["count"],
                 "fields": [["Product / model", what], [f"{key} latency", f"{value:,.0f} ms"],
                            ["Limit", f"{slo.limit_ms:,.0f} ms"], ["Calls in window", f"{row['count']:,}"]]},
    )
    raised = record_alerts([alert], slo, now)
    deliver_alerts(raised, now)
    return raised


def send_rule_test_alert(rule: AnomalyRule | LatencySlo, now: datetime | None = None) -> dict[str, str]:
    """Send a clearly marked test alert of an anomaly rule or latency SLO to its channels; records nothing."""
    now = now or timezone.now()
    current = floor_hour(now)
    is_slo = isinstance(rule, LatencySlo)
    sample = Alert(
        organization_id=rule.organization_id, anomaly_rule=None if is_slo else rule, latency_slo=rule if is_slo else None,
        kind=Alert.Kind.LATENCY if is_slo else Alert.Kind.ANOMALY, period_start=current, period_end=current + HOUR,
        title=f"Test alert for rule “{rule.name}”", message=f"This is how alerts of “{rule}” will look.",
        deliver_until=current + HOUR + STALE_AFTER, created_at=now,
        details={"event": "test", "url": f"{settings.SITE_URL}/{'latency/' if is_slo else ''}",
                 "fields": [["Rule", str(rule)]]},
    )
    return send_test_alert(rule, sample, now)


def evaluate_rules(now: datetime | None = None) -> dict:
    """The beat job: every active anomaly rule and latency SLO. One broken rule does not stop the others."""
    now = now or timezone.now()
    counts = {"rules": 0, "alerts": 0, "errors": 0}
    first_hours: dict[int, datetime | None] = {}
    for rule in AnomalyRule.objects.filter(is_active=True):
        counts["rules"] += 1
        if rule.organization_id not in first_hours:
            first_hours[rule.organization_id] = first_rolled_hour(rule.organization_id)
        first = first_hours[rule.organization_id]
        tally(counts, evaluated(rule, now, lambda rule=rule, first=first: evaluate_anomaly_rule(rule, now, first)))
    for slo in LatencySlo.objects.filter(is_active=True).select_related("product"):
        counts["rules"] += 1
        tally(counts, evaluated(slo, now, lambda slo=slo: evaluate_latency_slo(slo, now)))
    return counts
