"""The dashboard's querystring: the time range every page shares, the calls explorer's filters and its cursor.

Everything a page shows is decided by its URL, so a link is a shareable view. Input is never trusted: a value
that does not parse falls back to the default and says so, instead of failing the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta

from ingest.models import CostStatus

RANGES = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
DEFAULT_RANGE = "30d"  # every page's range when neither the URL nor the user's last choice names one
RANGE_PARAMS = ("range", "start", "end")
MAX_CUSTOM_DAYS = 400
MAX_FILTER_LENGTH = 200
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """A time range [start, end) in UTC on whole hours (24h) or whole days (the rest), so rollups cover it exactly."""

    key: str
    start: datetime
    end: datetime
    error: str = ""

    @property
    def label(self) -> str:
        if self.key in RANGES:
            return RANGES[self.key]
        return f"{self.start:%d %b %Y} – {self.last_day:%d %b %Y}"

    @property
    def span(self) -> str:
        """The exact bounds as people read them: hours for the last 24 hours, else first and last day (UTC)."""
        if self.interval == "hour":
            return f"{self.start:%b %d, %H:%M} – {self.end:%b %d, %H:%M} UTC"
        return f"{self.start:%b %d} – {self.last_day:%b %d, %Y} (UTC)"

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()

    @property
    def interval(self) -> str:
        """'hour' for the last 24 hours, 'day' otherwise: the width of one point of a chart."""
        return "hour" if self.key == "24h" else "day"

    @property
    def slots(self) -> list[datetime | date]:
        """The chart's x axis: every hour or every day of the range, so days without calls show as zero."""
        if self.interval == "hour":
            return [self.start + HOUR * i for i in range(int((self.end - self.start) / HOUR))]
        return [self.start.date() + DAY * i for i in range((self.end - self.start).days)]

    @property
    def previous(self) -> Period:
        """The range of the same length just before this one (for "vs previous period")."""
        length = self.end - self.start
        return Period(key="previous", start=self.start - length, end=self.start)


def range_params(period: Period) -> list[tuple[str, str]]:
    """The querystring that names `period` again: `range=7d`, or `range=custom&start=…&end=…`."""
    if period.key == "custom":
        return [("range", "custom"), ("start", f"{period.start:%Y-%m-%d}"), ("end", f"{period.last_day:%Y-%m-%d}")]
    return [("range", period.key)]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def preset_period(key: str, now: datetime) -> Period:
    now = now.astimezone(UTC)
    if key == "24h":
        end = now.replace(minute=0, second=0, microsecond=0) + HOUR
        return Period(key=key, start=end - 24 * HOUR, end=end)
    days = 7 if key == "7d" else 30
    tomorrow = _midnight(now.date()) + DAY
    return Period(key=key, start=tomorrow - days * DAY, end=tomorrow)


def parse_period(params: Mapping[str, str], default: str, now: datetime) -> Period:
    """`range=24h|7d|30d`, or `range=custom&start=YYYY-MM-DD&end=YYYY-MM-DD` (both days included)."""
    key = params.get("range") or ("custom" if params.get("start") or params.get("end") else default)
    if key in RANGES:
        return preset_period(key, now)
    if key != "custom":
        return _fallback(default, now, f"Unknown range {key[:20]!r}: showing {RANGES[default].lower()}.")
    try:
        first = date.fromisoformat(params.get("start", ""))
        last = date.fromisoformat(params.get("end", ""))
    except ValueError:
        return _fallback(default, now, "Give a custom range as two dates (YYYY-MM-DD).")
    if last < first:
        return _fallback(default, now, "The custom range ends before it starts.")
    if (last - first).days >= MAX_CUSTOM_DAYS:
        return _fallback(default, now, f"A custom range is at most {MAX_CUSTOM_DAYS} days.")
    return Period(key="custom", start=_midnight(first), end=_midnight(last) + DAY)


def _fallback(default: str, now: datetime, error: str) -> Period:
    period = preset_period(default, now)
    return Period(key=period.key, start=period.start, end=period.end, error=error)


@dataclass(frozen=True)
class CallFilters:
    """The calls explorer's filters; empty strings mean "any"."""

    team: str = ""
    product: str = ""
    model: str = ""
    status: str = ""
    user: str = ""
    session: str = ""
    feature: str = ""
    cost_status: str = ""

    @property
    def active(self) -> bool:
        return any((self.team, self.product, self.model, self.status, self.user, self.session, self.feature,
                    self.cost_status))


FILTER_PARAMS = tuple(field.name for field in fields(CallFilters))


def parse_call_filters(params: Mapping[str, str]) -> CallFilters:
    def text(name: str) -> str:
        return params.get(name, "").strip()[:MAX_FILTER_LENGTH]

    status = text("status")
    cost_status = text("cost_status")
    return CallFilters(
        team=text("team"), product=text("product"), model=text("model"),
        status=status if status in ("ok", "error") else "", user=text("user"), session=text("session"),
        feature=text("feature"), cost_status=cost_status if cost_status in CostStatus.values else "",
    )


def encode_cursor(start_time: datetime, call_id: int) -> str:
    """The position after a call in (start_time, id) descending order: `<ISO time>_<id>`."""
    return f"{start_time.astimezone(UTC).isoformat()}_{call_id}"


def decode_cursor(value: str) -> tuple[datetime, int] | None:
    moment, sep, call_id = value.rpartition("_")
    if not sep:
        return None
    try:
        start_time = datetime.fromisoformat(moment)
        number = int(call_id)
    except ValueError:
        return None
    if start_time.tzinfo is None:
        return None
    return start_time, number
