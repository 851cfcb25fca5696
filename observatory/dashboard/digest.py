"""What the weekly digest says, for one recipient's view of one scope (a team, or the whole organization): spend
of the last complete week (Monday to Sunday, UTC) against the week before, the top movers, the budgets in scope
with their burn and forecast, and the largest open savings recommendations — each with an absolute link (SITE_URL)
to the page behind it.

Everything is read through the viewer it is given (`observatory.access`), with the overview's own readers: movers
from `spend.movers`, budget status and forecast from `budgets.rows` (billing.alerts.budgets), recommendations from
`savings.visible_recommendations`. A team manager's viewer is narrowed to that team before it gets here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.utils import timezone

from billing.models import Recommendation
from billing.queries import regroup, spend
from observatory.access import Viewer
from observatory.dashboard import budgets as budget_reads
from observatory.dashboard import savings as savings_reads
from observatory.dashboard.filters import Period
from observatory.dashboard.spend import Change, Labels, change, movers
from observatory.models import Organization, Team

WEEK = timedelta(days=7)
MOVERS = 5
SAVINGS = 3
ZERO = Decimal(0)


def last_complete_week(now: datetime) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) UTC of the last week that has ended by `now`."""
    today = now.astimezone(UTC).date()
    this_monday = datetime.combine(today - timedelta(days=today.weekday()), time.min, UTC)
    return this_monday - WEEK, this_monday


def absolute(path: str, **params: str) -> str:
    """SITE_URL + path (+ querystring): links that work from an inbox or a Slack channel."""
    query = f"?{urlencode(params)}" if params else ""
    return f"{settings.SITE_URL.rstrip('/')}{path}{query}"


@dataclass(frozen=True)
class Mover:
    group: str
    label: str
    cost_usd: Decimal
    previous_cost_usd: Decimal
    change: Change
    url: str


@dataclass(frozen=True)
class BudgetLine:
    name: str
    scope_label: str
    period_label: str
    spend_usd: Decimal
    amount_usd: Decimal
    percent: Decimal
    forecast_usd: Decimal | None
    state: str
    url: str


@dataclass(frozen=True)
class SavingLine:
    title: str
    kind: str
    scope_label: str
    monthly_savings_usd: Decimal
    url: str


@dataclass(frozen=True)
class Digest:
    organization: Organization
    team: Team | None  # None: the whole organization
    week_start: datetime
    week_end: datetime
    spend_usd: Decimal
    previous_usd: Decimal
    change: Change
    calls: int
    spend_url: str
    movers: list[Mover]
    budgets: list[BudgetLine]
    savings: list[SavingLine]
    open_savings_count: int
    open_savings_usd: Decimal
    savings_url: str
    budgets_url: str

    @property
    def scope_label(self) -> str:
        return self.team.name if self.team else f"{self.organization.name} (whole organization)"

    @property
    def last_day(self) -> date:
        return (self.week_end - timedelta(days=1)).date()

    @property
    def week_label(self) -> str:
        first, last = self.week_start.date(), self.last_day
        return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"

    @property
    def subject(self) -> str:
        return f"Weekly digest: {self.scope_label}, week of {self.week_start.day} {self.week_start:%b}"


def _range(start: datetime, end: datetime) -> dict[str, str]:
    return {"range": "custom", "start": f"{start:%Y-%m-%d}", "end": f"{end - timedelta(days=1):%Y-%m-%d}"}


def _mover_url(organization: Organization, group: str, slug: str, label: str, week: dict[str, str]) -> str:
    if group == "team" and slug:
        return absolute(f"/teams/{slug}/", org=organization.slug, **week)
    if group == "product" and slug:
        return absolute(f"/products/{slug}/", org=organization.slug, **week)
    if group == "model":
        return absolute("/calls/", org=organization.slug, model=label, **week)
    return absolute("/", org=organization.slug, **week)


def _budget_lines(viewer: Viewer, now: datetime) -> list[BudgetLine]:
    active = budget_reads.visible_budgets(viewer).filter(is_active=True)
    lines = [BudgetLine(
        name=row.budget.name, scope_label=row.scope_label, period_label=row.period_label,
        spend_usd=row.status.spend_usd, amount_usd=row.budget.amount_usd, percent=row.percent,
        forecast_usd=row.forecast_usd, state=row.state,
        url=absolute(f"/budgets/{row.budget.pk}/", org=viewer.organization.slug),
    ) for row in budget_reads.rows(active, now)]
    lines.sort(key=lambda line: (-line.percent, line.name))
    return lines


def _scope_label(rec: Recommendation) -> str:
    parts = [part for part in (rec.team.name if rec.team else "", rec.product.name if rec.product else "", rec.model) if part]
    return " / ".join(parts) or "whole organization"


def _saving_lines(viewer: Viewer) -> tuple[list[SavingLine], int, Decimal]:
    open_recs = savings_reads.visible_recommendations(viewer).filter(status=Recommendation.Status.OPEN)
    summary = savings_reads.summary(open_recs)
    lines = [SavingLine(
        title=rec.title, kind=rec.get_kind_display(), scope_label=_scope_label(rec),
        monthly_savings_usd=rec.monthly_savings_usd,
        url=absolute("/recommendations/", org=viewer.organization.slug) + f"#rec-{rec.pk}",
    ) for rec in open_recs[:SAVINGS]]
    return lines, summary.open_count, summary.open_monthly_usd


def compose(viewer: Viewer, now: datetime | None = None) -> Digest:
    """The digest of what `viewer` reads (narrow it to a team first for a team's digest), for the last complete
    week before `now`; budgets and their forecasts as they stand at `now`."""
    now = now or timezone.now()
    start, end = last_complete_week(now)
    scope = viewer.scope
    organization = viewer.organization
    team = None if viewer.whole_organization else viewer.teams[0] if len(viewer.teams) == 1 else None
    groups = ("team", "product", "model") if team is None else ("product", "model")
    # two reads of the rollups, by every mover grouping, summed down in Python (as the overview does)
    this_week = spend(scope, start, end, groups)
    week_before = spend(scope, start - WEEK, start, groups)
    current, previous = regroup(this_week, ())[0], regroup(week_before, ())[0]
    labels = Labels(organization)
    week = _range(start, end)
    found = movers(scope, Period("custom", start, end), groups, labels, MOVERS,
                   current={g: regroup(this_week, [g]) for g in groups},
                   previous={g: regroup(week_before, [g]) for g in groups})
    savings, open_count, open_usd = _saving_lines(viewer)
    spend_path = f"/teams/{team.slug}/" if team else "/"
    return Digest(
        organization=organization, team=team, week_start=start, week_end=end,
        spend_usd=current["cost_usd"] or ZERO, previous_usd=previous["cost_usd"] or ZERO,
        change=change(current["cost_usd"] or ZERO, previous["cost_usd"] or ZERO), calls=current["calls"] or 0,
        spend_url=absolute(spend_path, org=organization.slug, **week),
        movers=[Mover(m["group"], m["label"], m["cost_usd"], m["previous_cost_usd"], m["change"],
                      _mover_url(organization, m["group"], m["slug"], m["label"], week)) for m in found],
        budgets=_budget_lines(viewer, now), savings=savings, open_savings_count=open_count,
        open_savings_usd=open_usd, savings_url=absolute("/recommendations/", org=organization.slug),
        budgets_url=absolute("/budgets/", org=organization.slug),
    )
