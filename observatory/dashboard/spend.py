"""Spend reads for the overview, team and product pages, and the caching and errors pages: totals, trends,
breakdowns and top movers, all from the rollups through billing.queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Max, Q, QuerySet, Sum

from billing import queries
from billing.models import HourlyRollup
from billing.queries import regroup, spend, timeseries, top_movers
from ingest.models import LLMCall
from observatory.access import Scope
from observatory.dashboard import latency
from observatory.dashboard.charts import chart
from observatory.dashboard.filters import Period
from observatory.models import Organization, Product, Team

ZERO = Decimal(0)
HUNDRED = Decimal(100)
BLANK_LABELS = {"team": "Unattributed", "product": "No product", "model": "(no model)", "environment": "(not set)",
                "feature": "(none)", "provider": "(unknown)"}


def percent(part: float | int | Decimal | None, whole: float | int | Decimal | None) -> Decimal | None:
    """part / whole in percent (Decimal, for display), None when there is nothing to divide by."""
    if not whole or part is None:
        return None
    return Decimal(part) * HUNDRED / Decimal(whole)


@dataclass(frozen=True)
class Change:
    """How a figure moved against an earlier one: the size, the direction and the ratio in percent."""

    amount: Decimal
    up: bool
    pct: Decimal | None


def change(current: Decimal, previous: Decimal) -> Change:
    difference = current - previous
    return Change(amount=abs(difference), up=difference >= 0, pct=percent(abs(difference), previous))


class Labels:
    """Display names and links for grouped rollup rows."""

    def __init__(self, organization: Organization) -> None:
        self.teams = {t.id: t for t in Team.objects.filter(organization=organization)}
        self.products = {p.id: p for p in Product.objects.filter(organization=organization)}

    def name(self, group: str, key: object) -> str:
        if group == "team" and key in self.teams:
            return self.teams[key].name
        if group == "product" and key in self.products:
            return self.products[key].name
        return str(key) if key not in (None, "") else BLANK_LABELS[group]

    def slug(self, group: str, key: object) -> str:
        """The slug to link a team or product row to its page ('' for anything else)."""
        found = {"team": self.teams, "product": self.products}.get(group, {}).get(key)
        return found.slug if found else ""

    def label(self, rows: list[dict], group: str) -> list[dict]:
        """Add label, slug, key and share of cost (percent of the rows' total) to each row."""
        key_name = f"{group}_id" if group in ("team", "product") else group
        whole = sum((row["cost_usd"] for row in rows), ZERO)
        for row in rows:
            key = row[key_name]
            row.update(key=key, label=self.name(group, key), slug=self.slug(group, key), share=percent(row["cost_usd"], whole))
            with_rates(row)
        return rows


def breakdown(scope: Scope, period: Period, group: str, labels: Labels, rows: list[dict] | None = None) -> list[dict]:
    """Spend per `group` with display labels; `rows` may pass spend() for the same range when already read."""
    return labels.label(spend(scope, period.start, period.end, [group]) if rows is None else rows, group)


def total_of(rows: list[dict]) -> dict:
    """The total of a breakdown's rows (every call is in exactly one group), without reading the rollups again."""
    return regroup(rows, ())[0]


def with_rates(row: dict) -> dict:
    """Add error rate, prompt-cache hit rate and app-cache hit rate in percent to a summed row."""
    row.update(error_pct=percent(row["errors"], row["calls"]),
               cache_hit_pct=percent(row["cached_input_tokens"], row["input_tokens"]),
               app_cache_pct=percent(row["app_cache_hits"], row["calls"]))
    return row


SPEND_SERIES = ("cost_usd",)
CACHING_SERIES = ("cache_read_savings_usd", "cost_avoided_usd")
ERRORS_SERIES = ("calls", "errors")


def series(scope: Scope, period: Period, columns: tuple[str, ...]) -> dict:
    """Per hour or day totals of `columns` (what the chart shows) with every slot present (no calls: zero)."""
    rows = {row["period"]: row for row in timeseries(scope, period.start, period.end, period.interval, (), columns)}
    return {slot: rows.get(slot) for slot in period.slots}


def spend_chart(points: dict) -> dict:
    return chart("bar", list(points), {"Spend": [row["cost_usd"] if row else ZERO for row in points.values()]}, unit="usd")


def movers(scope: Scope, period: Period, groups: tuple[str, ...], labels: Labels, limit: int = 6,
           current: dict[str, list[dict]] | None = None, previous: dict[str, list[dict]] | None = None) -> list[dict]:
    """The groups whose spend changed most against the previous period of the same length."""
    found = []
    for group in groups:
        for row in top_movers(scope, period.start, period.end, group, limit, (current or {}).get(group),
                              (previous or {}).get(group)):
            found.append({"group": group, "key": row[group], "label": labels.name(group, row[group]),
                          "slug": labels.slug(group, row[group]), "cost_usd": row["cost_usd"],
                          "previous_cost_usd": row["previous_cost_usd"],
                          "change": change(row["cost_usd"], row["previous_cost_usd"])})
    found.sort(key=lambda m: m["change"].amount, reverse=True)
    return [m for m in found if m["change"].amount][:limit]


@dataclass(frozen=True)
class SpendReport:
    """What the overview, team and product pages show for their scope and range."""

    total: dict
    previous: dict
    change: Change
    chart: dict
    breakdowns: dict[str, list[dict]]
    movers: list[dict]
    latency: dict[str, Any] | None


def spend_report(scope: Scope, period: Period, organization: Organization, groups: tuple[str, ...],
                 mover_groups: tuple[str, ...]) -> SpendReport:
    labels = Labels(organization)
    # two reads of the rollups, grouped by every field the page breaks down by, summed down in Python
    fields = tuple(dict.fromkeys((*groups, *mover_groups)))
    now_rows = spend(scope, period.start, period.end, fields)
    before_rows = spend(scope, period.previous.start, period.previous.end, fields)
    current = with_rates(regroup(now_rows, ())[0])
    previous = regroup(before_rows, ())[0]
    raw = {group: regroup(now_rows, [group]) for group in fields}
    before = {group: regroup(before_rows, [group]) for group in mover_groups}
    return SpendReport(
        total=current, previous=previous, change=change(current["cost_usd"], previous["cost_usd"]),
        chart=spend_chart(series(scope, period, SPEND_SERIES)),
        breakdowns={group: breakdown(scope, period, group, labels, raw[group]) for group in groups},
        movers=movers(scope, period, mover_groups, labels, current={g: [dict(r) for r in raw[g]] for g in mover_groups},
                      previous=before),
        latency=latency.summary(scope, period),
    )


@dataclass(frozen=True)
class Calendar:
    """Spend today and this month so far (UTC), against the same days of the previous month."""

    today: Decimal
    month: Decimal
    month_before: Decimal
    last_month: Decimal
    change: Change


def calendar(scope: Scope, now: datetime) -> Calendar:
    today = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
    tomorrow = today + timedelta(days=1)
    month_start = today.replace(day=1)
    last_month_start = (month_start - timedelta(days=1)).replace(day=1)
    same_days_end = min(last_month_start + (tomorrow - month_start), month_start)
    # one read: the cost of every day since the first of last month
    days = {row["period"]: row["cost_usd"] for row in timeseries(scope, last_month_start, tomorrow, "day", (), ("cost_usd",))}

    def cost(start: datetime, end: datetime) -> Decimal:
        return sum((value for day, value in days.items() if start.date() <= day < end.date()), ZERO)

    month = cost(month_start, tomorrow)
    month_before = cost(last_month_start, same_days_end)
    return Calendar(
        today=cost(today, tomorrow), month=month, month_before=month_before,
        last_month=cost(last_month_start, month_start), change=change(month, month_before),
    )


def has_calls(scope: Scope) -> bool:
    """Whether any call was ever recorded in scope (else the page shows how to send the first one)."""
    return LLMCall.objects.filter(scope.q()).exists()


def error_types(scope: Scope, period: Period, limit: int = 50) -> list[dict]:
    """Failed calls by error type and HTTP status (billing.queries.error_types: daily rollups and partial days' calls)."""
    return queries.error_types(scope, period.start, period.end, limit)


def caching_chart(points: dict) -> dict:
    return chart("bar", list(points), {
        "Prompt cache savings": [row["cache_read_savings_usd"] if row else ZERO for row in points.values()],
        "App cache cost avoided": [row["cost_avoided_usd"] if row else ZERO for row in points.values()],
    }, unit="usd", stacked=True)


def errors_chart(points: dict) -> dict:
    return chart("line", list(points), {
        "Error rate": [percent(row["errors"], row["calls"]) if row else None for row in points.values()],
    }, unit="pct")


USER_LIMIT = 100


def users_by_spend(scope: Scope, period: Period, field: str = "end_user") -> QuerySet:
    """Every end user (or session) of the range by spend, from the raw calls: their calls, tokens, cost, errors and
    last call. Calls without one are left out (the page says how many). The CSV streams all of them."""
    if field not in ("end_user", "session"):
        raise ValueError(field)
    return (
        LLMCall.objects.filter(scope.q(), start_time__gte=period.start, start_time__lt=period.end)
        .exclude(**{field: ""}).values(field)
        .annotate(calls=Count("id"), input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"),
                  cost_usd=Sum("cost_usd"), errors=Count("id", filter=Q(status="error")), last_seen=Max("start_time"))
        .order_by(F("cost_usd").desc(nulls_last=True), "-calls", field)
    )


def top_users(scope: Scope, period: Period, field: str = "end_user", limit: int = USER_LIMIT) -> list[dict]:
    """End users (or sessions) by spend in the range: their calls, tokens, cost, errors and last call (from the daily
    rollups, billing.queries.top_callers). Calls without one are left out (the page says how many)."""
    if field not in ("end_user", "session"):
        raise ValueError(field)
    rows = queries.top_callers(scope, period.start, period.end, field, limit)
    for row in rows:
        row["cost_per_call"] = row["cost_usd"] / row["calls"] if row["cost_usd"] is not None and row["calls"] else None
    return rows


def identified_share(scope: Scope, period: Period) -> dict:
    """How many calls in the range name an end user / a session, of all calls."""
    return queries.calls_naming_callers(scope, period.start, period.end)


def product_used_by(scope: Scope, product) -> bool:
    """True when calls of the scope's teams used the product (a team member may then open its page)."""
    return HourlyRollup.objects.filter(scope.q(), product_id=product.id).exists()
