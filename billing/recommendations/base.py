"""What every recommendation detector shares: the window of calls it reads, the finding it returns, and small
helpers for scope, raw SQL rows and money formatting. A detector is a function `(Window) -> list[Finding]`
registered in `billing.recommendations.DETECTORS`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Aggregate, Count, FloatField, Max, Min, QuerySet

from billing.models import Recommendation
from billing.monthly import DataSpan
from ingest.models import CALL_MODEL, LLMCall

Kind = Recommendation.Kind
Confidence = Recommendation.Confidence
Status = Recommendation.Status

MILLION = Decimal(1_000_000)
MIN_MONTHLY_SAVINGS_USD = Decimal("1")
REOPEN_FACTOR = 2


class Median(Aggregate):
    function = "percentile_cont"
    template = "percentile_cont(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


@dataclass
class Finding:
    kind: str
    fingerprint: str
    title: str
    window_savings_usd: Decimal
    formula: str
    confidence: str
    evidence: dict = field(default_factory=dict)
    team_id: int | None = None
    product_id: int | None = None
    feature: str = ""
    model: str = ""
    # the days window_savings_usd was found in, which scale it to a month: None = the window's days with data;
    # GPU pool detectors set their pool's hours
    span: DataSpan | None = None


@dataclass(frozen=True)
class Window:
    """The calls a detector looks at: one organization's, in [since, until), and their days with data (from the hour
    of the first call to `until`), by which window figures are scaled to a month."""

    organization_id: int
    since: datetime
    until: datetime
    calls: QuerySet
    span: DataSpan

    @property
    def data_since(self) -> datetime:
        """The first hour with data (the window's start when there is none)."""
        return self.span.first or self.since


def calls_in(organization_id: int, since: datetime, until: datetime):
    return LLMCall.objects.filter(organization_id=organization_id, start_time__gte=since, start_time__lt=until).annotate(
        model_name=CALL_MODEL,
    )


def single(row: dict, name: str) -> int | None:
    """The group's team (or product) when every call in it has the same one, else None (org-wide)."""
    low, high, count = row[f"{name}_min"], row[f"{name}_max"], row[f"{name}_n"]
    return low if low is not None and low == high and count == row["calls"] else None


def scope_aggregates() -> dict:
    return {"calls": Count("id"), "team_min": Min("team"), "team_max": Max("team"), "team_n": Count("team"),
            "product_min": Min("product"), "product_max": Max("product"), "product_n": Count("product")}


def usd(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.000001'))}"


def per_million(value: Decimal | None) -> str:
    return "none" if value is None else format((value * MILLION).normalize(), "f")


def fetch(sql: str, params: list) -> list[dict]:
    """Rows of a raw query as dicts, for the aggregates (percentiles per group, hourly series) the ORM cannot say."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def dollars(value: Decimal) -> str:
    """$1,800.00, $0.0125: a figure for a formula, to the micro-dollar without trailing zeros beyond the cents."""
    places = max(2, -Decimal(value).quantize(Decimal("0.000001")).normalize().as_tuple().exponent)
    return f"${Decimal(value):,.{places}f}"
