"""Reads for the budget pages (/budgets/, /budgets/<id>/, /alerts/) and the overview's budget card: the budgets
and alerts a viewer may see, each budget's period status with a burn-down bar, and the chart of its cumulative spend.

Visibility and the right to change a budget come from `observatory.access`, as in the REST API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from billing.alerts.budgets import BudgetStatus, SpendScope, budget_status, hourly_spend, period_label
from billing.forms import BudgetForm
from billing.limits import refused_this_period
from billing.models import Alert, Budget
from observatory.access import Viewer, readable
from observatory.dashboard.charts import chart
from observatory.models import Product, Team

RECENT_ALERTS = 100
OVERVIEW_BUDGETS = 8
ZERO = Decimal(0)


def visible_budgets(viewer: Viewer) -> QuerySet[Budget]:
    """The organization's budgets for org-wide members; their teams' (and their teams' products') for the others."""
    budgets = Budget.objects.filter(organization=viewer.organization).select_related("team", "product", "owner",
                                                                                       "organization")
    return viewer.readable(budgets).order_by("name", "id")


def find_budget(viewer: Viewer, budget_id: int) -> Budget:
    """A budget the user may read, in any of their organizations (alert links carry no ?org=); else 404."""
    budget = readable(Budget.objects.select_related("team", "product", "owner", "organization"), viewer.user,
                      viewer.api_key).filter(pk=budget_id).first()
    if budget is None:
        raise Http404("No such budget.")
    return budget


def may_manage(viewer: Viewer, budget: Budget) -> bool:
    return budget.organization_id == viewer.organization.id and viewer.may_change(budget.team, budget.product)


def may_create(viewer: Viewer) -> bool:
    return viewer.may_create


def budget_form(viewer: Viewer, *args, **kwargs) -> BudgetForm:
    """BudgetForm offering only what the user may budget for: admins any team or product, managers their teams'."""
    form = BudgetForm(*args, organization=viewer.organization, owner=viewer.user, **kwargs)
    if not viewer.is_admin:
        team_ids = [team.id for team in viewer.manageable_teams]
        form.fields["team"].queryset = Team.objects.filter(organization=viewer.organization, id__in=team_ids)
        form.fields["product"].queryset = Product.objects.filter(organization=viewer.organization, team_id__in=team_ids)
    return form


@dataclass(frozen=True)
class BudgetRow:
    budget: Budget
    status: BudgetStatus

    @property
    def scope_label(self) -> str:
        budget = self.budget
        if budget.team_id and budget.product_id:
            return f"{budget.team.name} / {budget.product.name}"
        if budget.team_id:
            return budget.team.name
        if budget.product_id:
            return budget.product.name
        return "Whole organization"

    @property
    def period_label(self) -> str:
        return period_label(self.budget.period, self.status.period_start, self.budget.time_zone)

    @property
    def forecast_usd(self) -> Decimal | None:
        return self.status.forecast.amount_usd if self.status.forecast else None

    @property
    def percent(self) -> Decimal:
        return self.status.percent

    @property
    def state(self) -> str:
        """ok, warn (forecast over the amount) or bad (spent the amount)."""
        if self.status.spend_usd >= self.budget.amount_usd:
            return "bad"
        if self.forecast_usd is not None and self.forecast_usd > self.budget.amount_usd:
            return "warn"
        return "ok"

    @property
    def thresholds(self) -> list[dict]:
        """Each threshold with its dollar figure and whether this period's spend has reached it."""
        amount = self.budget.amount_usd
        return [{"percent": t, "usd": (amount * t / 100).quantize(Decimal("0.01")),
                 "reached": self.status.spend_usd * 100 >= amount * t} for t in sorted(self.budget.thresholds)]

    @property
    def bar(self) -> dict[str, Decimal]:
        """Widths in % of the bar for the spend, the forecast and where the budget ends (the largest is 100%)."""
        forecast = self.forecast_usd or ZERO
        scale = max(self.budget.amount_usd, self.status.spend_usd, forecast)
        return {name: (value * 100 / scale).quantize(Decimal("0.1")) for name, value in (
            ("spent", self.status.spend_usd), ("forecast", max(forecast, self.status.spend_usd)),
            ("budget", self.budget.amount_usd))}


def rows(budgets, now=None) -> list[BudgetRow]:
    now = now or timezone.now()
    return [BudgetRow(budget, budget_status(budget, now)) for budget in budgets]


@dataclass(frozen=True)
class OverviewBudgets:
    """The overview's budget card: the most used budgets first, how many there are, whether the viewer may add one."""

    rows: list[BudgetRow]
    total: int
    may_create: bool


def overview_budgets(viewer: Viewer, now=None, limit: int = OVERVIEW_BUDGETS) -> OverviewBudgets:
    """The budgets of /budgets/ (same visibility), by share of the amount used this period, highest first."""
    all_rows = rows(visible_budgets(viewer), now)
    all_rows.sort(key=lambda row: (-row.percent, row.budget.name, row.budget.id))
    return OverviewBudgets(all_rows[:limit], len(all_rows), may_create(viewer))


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def spend_chart(row: BudgetRow, now=None) -> dict:
    """Cumulative spend per local day of the period so far, the budget line, and a straight line from today's
    spend to the forecast at the period's end."""
    now = now or timezone.now()
    budget, status = row.budget, row.status
    zone = ZoneInfo(budget.time_zone)
    days = _days(status.period_start.astimezone(zone).date(),
                 (status.period_end - timedelta(microseconds=1)).astimezone(zone).date())
    today = now.astimezone(zone).date()
    per_day: dict[date, Decimal] = {}
    for hour, cost in hourly_spend(SpendScope.of(budget), status.period_start, now).items():
        day = hour.astimezone(zone).date()
        per_day[day] = per_day.get(day, ZERO) + cost
    spent, running = [], ZERO
    for day in days:
        running += per_day.get(day, ZERO)
        spent.append(running.quantize(Decimal("0.01")) if day <= today else None)
    forecast: list[Decimal | None] = [None] * len(days)
    if row.forecast_usd is not None and today in days:
        start = days.index(today)
        steps = len(days) - 1 - start
        for i in range(start, len(days)):
            share = Decimal(1) if steps == 0 else Decimal(i - start) / steps
            value = status.spend_usd + (row.forecast_usd - status.spend_usd) * share
            forecast[i] = value.quantize(Decimal("0.01"))
    return chart("line", days, {"Spent (cumulative)": spent, "Forecast": forecast,
                                "Budget": [budget.amount_usd] * len(days)}, "usd")


def budget_alerts(budget: Budget) -> list[Alert]:
    return list(budget.alerts.prefetch_related("deliveries")[:RECENT_ALERTS])


def refused_requests(budget: Budget) -> int:
    """Requests the gateway refused under this (found, so readable) budget this period; they are not calls."""
    return refused_this_period(budget)


def visible_alerts(viewer: Viewer) -> list[Alert]:
    """The latest alerts of the budgets and rules the user may read, in the viewer's organization."""
    alerts = viewer.readable(Alert.objects.all()).select_related("budget", "anomaly_rule", "latency_slo")
    return list(alerts.prefetch_related("deliveries")[:RECENT_ALERTS])
