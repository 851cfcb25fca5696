"""Budgets: calendar periods in the budget's time zone, spend to date, the period-end forecast, and the
minute-by-minute evaluation that raises threshold-crossed, forecast-to-exceed and period-reset alerts.

Spend to date is read from the hourly/daily rollups, except for the hours the rollups may not match: hours with a
call ingested (or re-priced, or re-attributed) after the organization's rollup watermark, and hours whose rollup
failed (billing.rollups.unrolled_hours). Those are summed from the raw calls instead — their rollup rows are
subtracted — so an evaluation reads a few rollup rows and one index range of raw calls, still sees a call a
second after it arrived, and counts every call once however far behind, or half done, the rollup job is (a job
that stalled used to count the calls after the watermark twice: $30 read as $60). Rollups are hourly: in zones
whose offset is not a whole hour (Asia/Kolkata) the minutes between the period start and the next hour are summed
from raw calls.

Forecast of the period's spend (`forecast_period_spend`):

    forecast = spend so far + ratio × Σ profile[slot(h)] over the hours h left in the period

- profile[slot] is the mean spend of one weekday-hour slot (weekday and hour in the budget's time zone)
  over the 2–4 full weeks of the scope's own history just before the period began, so a Monday-morning
  peak or a quiet weekend is expected where it belongs. Those weeks end where the period starts so that
  the expectation is not made of the very spend it is compared with; the profile is computed once per
  period and process, which keeps the every-minute forecast to two small reads;
- ratio = actual spend so far this period / what the profile expected so far: a period running hotter or
  cooler than the weeks before is assumed to keep doing so (1 during the period's first hour);
- with less than 2 full weeks of history (or a profile that expected nothing while money was spent), the
  hourly rate is the average over the last 24 hours (from the first spend in them, at least an hour):
  forecast = spend so far + hours left × that rate.

Each alert is raised once per (budget, period start, kind, threshold) — see billing.alerts.delivery — and a new
period is a new key, so budgets reset by construction: nothing has to be cleared when a month ends.

Why one module of ~480 lines: the period bounds, the spend-to-date read and the forecast share the same
time-zone-aware hour arithmetic, and the evaluation is what ties them together; apart, each would be half a formula.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from billing.alerts.delivery import deliver_alerts, record_alerts, send_test_alert
from billing.models import Alert, AnomalyRule, Budget, HourlyRollup, LatencySlo
from billing.queries import rollup_pieces
from billing.rollups import RollupProgress, hour_ranges, rollup_progress, unrolled_hours
from ingest.models import LLMCall
from observatory.access import Scope
from observatory.models import Organization, Product, Team

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
PROFILE_WEEKS = 4
MIN_PROFILE_WEEKS = 2
FALLBACK_WINDOW = timedelta(hours=24)
MIN_WEBHOOK_SECRET = 16
ZERO = Decimal(0)
ONE = Decimal(1)


# Periods --------------------------------------------------------------------------------------------------------

def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, zone).astimezone(UTC)


def period_bounds(period: str, time_zone: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the calendar day, week (from Monday) or month holding `now` in `time_zone`.

    Boundaries are local midnights, so a day across a DST change lasts 23 or 25 hours.
    """
    zone = ZoneInfo(time_zone)
    today = now.astimezone(zone).date()
    if period == Budget.Period.DAY:
        first, following = today, today + timedelta(days=1)
    elif period == Budget.Period.WEEK:
        first = today - timedelta(days=today.weekday())
        following = first + timedelta(days=7)
    elif period == Budget.Period.MONTH:
        first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown period {period!r}")
    return _local_midnight(first, zone), _local_midnight(following, zone)


def period_label(period: str, start: datetime, time_zone: str) -> str:
    local = start.astimezone(ZoneInfo(time_zone))
    if period == Budget.Period.DAY:
        return f"{local:%A} {local.day} {local:%B %Y}"
    if period == Budget.Period.WEEK:
        return f"week of {local.day} {local:%B %Y}"
    return f"{local:%B %Y}"


def _hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = start
    while hour < end:
        yield hour
        hour += HOUR


# Spend ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpendScope:
    """Whose calls count: an organization, optionally one team and/or one product."""

    organization_id: int
    team_id: int | None = None
    product_id: int | None = None

    @classmethod
    def of(cls, owner) -> SpendScope:
        return cls(owner.organization_id, getattr(owner, "team_id", None), owner.product_id)

    def q(self) -> Q:
        condition = Q(organization_id=self.organization_id)
        if self.team_id is not None:
            condition &= Q(team_id=self.team_id)
        if self.product_id is not None:
            condition &= Q(product_id=self.product_id)
        return condition

    def calls(self) -> QuerySet[LLMCall]:
        return LLMCall.objects.filter(self.q())


def _cost(queryset: QuerySet) -> Decimal:
    return queryset.aggregate(c=Sum("cost_usd"))["c"] or ZERO


def in_hours(hours: Iterable[datetime]) -> Q:
    """Calls that started in any of these UTC hours (merged into ranges, so the start_time index serves)."""
    condition = Q(pk__in=[])
    for low, high in hour_ranges(hours):
        condition |= Q(start_time__gte=low, start_time__lt=high)
    return condition


def spend_between(scope: SpendScope, start: datetime, end: datetime, progress: RollupProgress | None = None) -> Decimal:
    """Dollars spent in [start, end): rollups, with the hours they may not match read from raw calls instead."""
    progress = progress or rollup_progress(scope.organization_id)
    first_hour = ceil_hour(start)
    if end <= first_hour:
        return _cost(scope.calls().filter(start_time__gte=start, start_time__lt=end))
    total = sum((_cost(piece.filter(scope.q())) for piece in rollup_pieces(Scope(scope.organization_id), first_hour, end)),
                ZERO)
    if start < first_hour:
        total += _cost(scope.calls().filter(start_time__gte=start, start_time__lt=first_hour))
    unrolled = unrolled_hours(scope.organization_id, first_hour, end, progress)
    if unrolled:
        total -= _cost(HourlyRollup.objects.filter(scope.q(), hour__in=unrolled, hour__lt=end))
        total += _cost(scope.calls().filter(in_hours(unrolled), start_time__lt=end))
    return total


def hourly_spend(scope: SpendScope, start: datetime, end: datetime,
                 progress: RollupProgress | None = None) -> dict[datetime, Decimal]:
    """Dollars per UTC hour in [start, end) from the rollups, the hours they may not match from raw calls; hours
    without spend are absent."""
    progress = progress or rollup_progress(scope.organization_id)
    unrolled = unrolled_hours(scope.organization_id, start, end, progress)
    hours: dict[datetime, Decimal] = defaultdict(Decimal)
    rolled = (HourlyRollup.objects.filter(scope.q(), hour__gte=start, hour__lt=end).exclude(hour__in=unrolled)
              .values_list("hour").annotate(c=Sum("cost_usd")).order_by())
    raw = (scope.calls().filter(in_hours(unrolled), start_time__gte=start, start_time__lt=end)
           .annotate(h=TruncHour("start_time", tzinfo=UTC)).values_list("h").annotate(c=Sum("cost_usd")).order_by())
    for hour, cost in [*rolled, *(raw if unrolled else ())]:
        if cost:
            hours[hour.astimezone(UTC)] += cost
    return dict(hours)


# Forecast -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    """Mean spend per (weekday, hour) slot, in a time zone, over `weeks` full weeks."""

    slots: dict[tuple[int, int], Decimal]
    weeks: int


@dataclass(frozen=True)
class Forecast:
    amount_usd: Decimal
    method: str
    history_weeks: int = 0


def _slot(hour: datetime, zone: ZoneInfo) -> tuple[int, int]:
    local = hour.astimezone(zone)
    return local.weekday(), local.hour


def weekday_hour_profile(hourly: Mapping[datetime, Decimal], end: datetime, zone: ZoneInfo) -> Profile | None:
    """The profile of the PROFILE_WEEKS full weeks before `end` (an hour boundary), or of as many full weeks as
    the scope has spent money in (counted from the local midnight of its first spend); None under 2 weeks."""
    spending = [hour for hour, cost in hourly.items() if cost and hour < end]
    if not spending:
        return None
    first_day = _local_midnight(min(spending).astimezone(zone).date(), zone)
    weeks = min(PROFILE_WEEKS, (end - first_day) // WEEK)
    if weeks < MIN_PROFILE_WEEKS:
        return None
    start = end - weeks * WEEK
    sums: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for hour, cost in hourly.items():
        if start <= hour < end:
            sums[_slot(hour, zone)] += cost
    return Profile({slot: total / weeks for slot, total in sums.items()}, weeks)


def forecast_period_spend(spent: Decimal, period_start: datetime, period_end: datetime, now: datetime,
                          profile: Profile | None, recent: Mapping[datetime, Decimal], zone: ZoneInfo) -> Forecast:
    """Projected spend at `period_end` (method in the module docstring). `profile` is the weekday-hour profile of
    the weeks before the period; `recent` the scope's spend per UTC hour over the last day, the current hour partial."""
    if now >= period_end:
        return Forecast(spent, "period over")
    current = floor_hour(now)
    done_in_hour = Decimal((now - current).total_seconds()) / 3600
    if profile is not None:

        def expected(hour: datetime) -> Decimal:
            return profile.slots.get(_slot(hour, zone), ZERO)

        expected_so_far = sum((expected(h) for h in _hours(floor_hour(period_start), current)), ZERO)
        expected_so_far += expected(current) * done_in_hour
        ratio = None
        if now - period_start < HOUR or (expected_so_far == 0 and spent == 0):
            ratio = ONE
        elif expected_so_far > 0:
            ratio = spent / expected_so_far
        if ratio is not None:
            left = expected(current) * (1 - done_in_hour) + sum((expected(h) for h in _hours(current + HOUR, period_end)), ZERO)
            return Forecast(spent + ratio * left, "weekday-hour profile", profile.weeks)
    window = current - FALLBACK_WINDOW
    spending = [hour for hour, cost in recent.items() if cost and window <= hour <= current]
    if not spending:
        return Forecast(spent, "no recent spend")
    window_start = min(spending)
    window_hours = max(ONE, Decimal((now - window_start).total_seconds()) / 3600)
    rate = sum((recent[hour] for hour in spending), ZERO) / window_hours
    hours_left = Decimal((period_end - now).total_seconds()) / 3600
    return Forecast(spent + rate * hours_left, "last 24h rate")


_profiles: dict[tuple, Profile | None] = {}


def period_profile(scope: SpendScope, time_zone: str, period_start: datetime, progress: RollupProgress) -> Profile | None:
    """The weekday-hour profile of the weeks before the period. It cannot change while the period runs (late
    calls aside), so each process computes it once per period: the minute-by-minute forecast stays cheap."""
    end = floor_hour(period_start)
    key = (scope, time_zone, end)
    if key not in _profiles:
        if len(_profiles) >= 10_000:
            _profiles.clear()
        hourly = hourly_spend(scope, end - PROFILE_WEEKS * WEEK, end, progress)
        _profiles[key] = weekday_hour_profile(hourly, end, ZoneInfo(time_zone))
    return _profiles[key]


# Status and evaluation ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BudgetStatus:
    period_start: datetime
    period_end: datetime
    spend_usd: Decimal
    amount_usd: Decimal
    forecast: Forecast | None

    @property
    def percent(self) -> Decimal:
        return self.spend_usd * 100 / self.amount_usd


def _forecast(budget: Budget, spent: Decimal, start: datetime, end: datetime, now: datetime,
              progress: RollupProgress) -> Forecast:
    scope = SpendScope.of(budget)
    profile = period_profile(scope, budget.time_zone, start, progress)
    recent = hourly_spend(scope, floor_hour(now) - FALLBACK_WINDOW, now, progress)
    return forecast_period_spend(spent, start, end, now, profile, recent, ZoneInfo(budget.time_zone))


def budget_status(budget: Budget, now: datetime | None = None) -> BudgetStatus:
    """This period's bounds, spend to date and forecast."""
    now = now or timezone.now()
    start, end = period_bounds(budget.period, budget.time_zone, now)
    progress = rollup_progress(budget.organization_id)
    spent = spend_between(SpendScope.of(budget), start, now, progress)
    return BudgetStatus(start, end, spent, budget.amount_usd, _forecast(budget, spent, start, end, now, progress))


def budget_url(budget: Budget) -> str:
    return f"{settings.SITE_URL}/budgets/{budget.pk}/"


def money(value: Decimal | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


def scope_field(budget: Budget) -> tuple[str, str]:
    """The label and name of what the budget covers, for messages."""
    if budget.team_id and budget.product_id:
        return "Team / product", f"{budget.team.name} / {budget.product.name}"
    if budget.team_id:
        return "Team", budget.team.name
    if budget.product_id:
        return "Product", budget.product.name
    return "Organization", budget.organization.name


def _budget_alert(budget: Budget, kind: str, status: BudgetStatus, now: datetime, title: str, message: str, event: str,
                  threshold: int = 0, suppressed: str = "") -> Alert:
    forecast = status.forecast.amount_usd if status.forecast else None
    fields = [
        scope_field(budget),
        ("Spend", f"{money(status.spend_usd)} of {money(budget.amount_usd)}"),
        ("% of budget", f"{status.percent:.0f}%"),
        ("Forecast", f"{money(forecast)} by the period end" if forecast is not None else "—"),
        ("Period", f"{period_label(budget.period, status.period_start, budget.time_zone)} ({budget.time_zone})"),
    ]
    return Alert(
        organization_id=budget.organization_id, budget=budget, kind=kind, period_start=status.period_start,
        period_end=status.period_end, threshold_percent=threshold, spend_usd=status.spend_usd,
        budget_usd=budget.amount_usd, forecast_usd=forecast, title=title[:300], message=message,
        deliver_until=status.period_end, suppressed=suppressed, created_at=now,
        details={"event": event, "url": budget_url(budget), "fields": [list(f) for f in fields],
                 "forecast_method": status.forecast.method if status.forecast else None},
    )


def _period_reset(budget: Budget, status: BudgetStatus, now: datetime, progress: RollupProgress) -> list[Alert]:
    """The period-reset event, once per period; sent only when the previous period raised alerts."""
    if budget.alerts.filter(period_start=status.period_start, kind=Alert.Kind.PERIOD_RESET).exists():
        return []
    previous_start, _ = period_bounds(budget.period, budget.time_zone, status.period_start - timedelta(microseconds=1))
    previous = spend_between(SpendScope.of(budget), previous_start, status.period_start, progress)
    alerted = budget.alerts.filter(period_start=previous_start, kind__in=[Alert.Kind.THRESHOLD, Alert.Kind.FORECAST]).exists()
    label = period_label(budget.period, status.period_start, budget.time_zone)
    message = (f"Budget “{budget.name}” starts a new period ({label}) at {money(status.spend_usd)} of "
               f"{money(budget.amount_usd)}. The previous period spent {money(previous)} "
               f"({previous * 100 / budget.amount_usd:.0f}% of the budget).")
    alert = _budget_alert(budget, Alert.Kind.PERIOD_RESET, status, now, f"{budget.name}: new period, budget reset",
                          message, "budget.period_reset",
                          suppressed="" if alerted else "the previous period raised no alert")
    alert.details["previous_spend_usd"] = str(previous)
    return record_alerts([alert], budget, now)


def evaluate_budget(budget: Budget, now: datetime | None = None) -> list[Alert]:
    """Raise (and deliver) whatever this budget's spend now calls for; returns the alerts this call raised."""
    now = now or timezone.now()
    start, end = period_bounds(budget.period, budget.time_zone, now)
    progress = rollup_progress(budget.organization_id)
    spent = spend_between(SpendScope.of(budget), start, now, progress)
    status = BudgetStatus(start, end, spent, budget.amount_usd, None)
    raised: list[Alert] = []
    if budget.created_at < start:
        raised += _period_reset(budget, status, now, progress)

    existing = set(budget.alerts.filter(period_start=start).values_list("kind", "threshold_percent"))
    crossed = sorted(t for t in budget.thresholds
                     if spent * 100 >= budget.amount_usd * t and (Alert.Kind.THRESHOLD, t) not in existing)
    check_forecast = budget.forecast_alert and spent < budget.amount_usd and (Alert.Kind.FORECAST, 0) not in existing
    if crossed or check_forecast:
        status = BudgetStatus(start, end, spent, budget.amount_usd, _forecast(budget, spent, start, end, now, progress))
        raised += _crossings(budget, status, crossed, check_forecast, now)
    deliver_alerts(raised, now)
    return raised


def _crossings(budget: Budget, status: BudgetStatus, crossed: list[int], check_forecast: bool, now: datetime) -> list[Alert]:
    """Threshold alerts for the newly crossed thresholds, and the forecast alert if the forecast is over."""
    start, end, spent = status.period_start, status.period_end, status.spend_usd
    label = period_label(budget.period, start, budget.time_zone)
    raised: list[Alert] = []
    if crossed:
        raised += record_alerts([
            _budget_alert(budget, Alert.Kind.THRESHOLD, status, now,
                          f"{budget.name}: {t}% of the budget reached ({money(spent)} of {money(budget.amount_usd)})",
                          f"Budget “{budget.name}” has spent {money(spent)} of {money(budget.amount_usd)} "
                          f"({status.percent:.0f}%) in {label}, crossing its {t}% threshold.",
                          "budget.threshold_crossed", threshold=t)
            for t in crossed
        ], budget, now)
    if check_forecast and status.forecast.amount_usd > budget.amount_usd:
        end_day = (end - timedelta(microseconds=1)).astimezone(ZoneInfo(budget.time_zone))
        raised += record_alerts([_budget_alert(
            budget, Alert.Kind.FORECAST, status, now,
            f"{budget.name}: forecast to exceed the budget ({money(status.forecast.amount_usd)} of {money(budget.amount_usd)})",
            f"Budget “{budget.name}” has spent {money(spent)} ({status.percent:.0f}%) so far in {label}; at the current "
            f"pace it will reach {money(status.forecast.amount_usd)} by the end of {end_day.day} {end_day:%B}, over its "
            f"{money(budget.amount_usd)}.",
            "budget.forecast_exceeds",
        )], budget, now)
    return raised


def send_budget_test_alert(budget: Budget, now: datetime | None = None) -> dict[str, str]:
    """Send a clearly marked test, with the budget's current figures, to each of its channels; records nothing."""
    now = now or timezone.now()
    status = budget_status(budget, now)
    sample = _budget_alert(
        budget, Alert.Kind.THRESHOLD, status, now, f"Test alert for budget “{budget.name}”",
        f"This is how alerts of budget “{budget.name}” will look. Right now it has spent {money(status.spend_usd)} of "
        f"{money(budget.amount_usd)} ({status.percent:.0f}%) in "
        f"{period_label(budget.period, status.period_start, budget.time_zone)}.",
        "test",
    )
    return send_test_alert(budget, sample, now)


def evaluate_budgets(now: datetime | None = None) -> dict:
    """The beat job: evaluate every active budget. One broken budget does not stop the others."""
    now = now or timezone.now()
    budgets = Budget.objects.filter(is_active=True).select_related("organization", "team", "product")
    counts = {"budgets": 0, "alerts": 0, "errors": 0}
    for budget in budgets:
        counts["budgets"] += 1
        tally(counts, evaluated(budget, now, lambda budget=budget: evaluate_budget(budget, now)))
    return counts


def evaluated(source: Budget | AnomalyRule | LatencySlo, now: datetime, evaluate: Callable[[], list]) -> int | None:
    """Run one budget's or rule's evaluation: the number of alerts it raised, or None when it failed — logged with
    its traceback and recorded on it (shown until it works again); the next run tries again. A database outage is
    no source's fault: it propagates."""
    try:
        alerts = evaluate()
    except Exception as error:
        if isinstance(error, OperationalError | InterfaceError):
            raise
        log.exception("evaluating %s %s failed", source._meta.verbose_name, source.pk)
        record_evaluation(source, now, error)
        return None
    record_evaluation(source, now)
    return len(alerts)


def tally(counts: dict, alerts: int | None) -> None:
    if alerts is None:
        counts["errors"] += 1
    else:
        counts["alerts"] += alerts


def record_evaluation(source: Budget | AnomalyRule | LatencySlo, now: datetime, error: Exception | None = None) -> None:
    """Keep why a budget's or rule's evaluation failed (the budgets page, settings and /readyz show it) until it
    works again; writes only when that changes."""
    problem = f"{error.__class__.__name__}: {error}"[:500] if error is not None else ""
    if problem == source.evaluation_error:
        return
    since = (source.evaluation_failing_since or now) if problem else None
    type(source).objects.filter(pk=source.pk).update(evaluation_error=problem, evaluation_failing_since=since)
    source.evaluation_error, source.evaluation_failing_since = problem, since


# Validation and access ------------------------------------------------------------------------------------------

def setup_problems(organization: Organization, team: Team | None, product: Product | None, webhook_url: str,
                   webhook_secret: str) -> dict[str, str]:
    """Cross-field checks shared by the form and the API: scope inside the organization, a secret to sign with."""
    problems = {}
    if team is not None and team.organization_id != organization.pk:
        problems["team"] = f"unknown team “{team.slug}” in {organization.slug}."
    if product is not None and product.organization_id != organization.pk:
        problems["product"] = f"unknown product “{product.slug}” in {organization.slug}."
    if webhook_url and len(webhook_secret or "") < MIN_WEBHOOK_SECRET:
        problems["webhook_secret"] = (f"give a secret of at least {MIN_WEBHOOK_SECRET} characters: "
                                      "webhook calls are signed with it.")
    return problems
