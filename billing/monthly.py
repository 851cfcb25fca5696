"""Monthly figures from a window of calls, scaled by the days that have data rather than by the window's length.

    monthly = window figure × 30.44 / days with data

Days with data run from the hour of the window's first call to the window's end (or now, when that is sooner), at
least one day. A 30-day window holding 14 days of calls is 14 days: $70 in it is $70 × 30.44 / 14 = $152.20 a
month, where dividing by the window's 30 days said $70 (understated 2.2×, and far from the budget forecast, which
extrapolates the recent rate). 30.44 = 365.25 / 12, the mean length of a month.

Used by the what-if page, the Savings page's spend baseline and every savings recommendation (billing.recommendations:
call-based detectors over the organization's days with data, GPU pool detectors over their pool's hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Min, Q
from django.utils import timezone

from ingest.models import LLMCall

DAYS_PER_MONTH = Decimal("30.44")
SECONDS_PER_DAY = Decimal(86400)
MIN_SPAN = timedelta(days=1)


@dataclass(frozen=True)
class DataSpan:
    """The part of a window [start, end) that has calls: from `first` (the hour of the first call) to `end`."""

    first: datetime | None
    end: datetime

    @property
    def days(self) -> Decimal:
        if self.first is None:
            return Decimal(1)
        span = max(self.end - self.first, MIN_SPAN)
        return Decimal(span.days) + Decimal(span.seconds) / SECONDS_PER_DAY

    @property
    def day_count(self) -> str:
        """'14 days', '2.5 days': the days to a tenth."""
        days = self.days.quantize(Decimal("0.1")).normalize()
        return f"{days:f} day{'' if days == 1 else 's'}"

    @property
    def dates(self) -> str:
        """'Nov 19 – Dec 2' (or 'Dec 2' for one day): the first and the last day (UTC) with data; empty without calls."""
        if self.first is None:
            return ""
        last = (self.end - timedelta(microseconds=1)).date()
        return f"{self.first:%b %-d}" if last == self.first.date() else f"{self.first:%b %-d} – {last:%b %-d}"

    @property
    def label(self) -> str:
        """'14 days (Nov 19 – Dec 2)': how many days a monthly figure is based on, and which."""
        if self.first is None:
            return "no calls"
        return f"{self.day_count} ({self.dates})"

    def monthly(self, amount: Decimal) -> Decimal:
        return Decimal(amount) * DAYS_PER_MONTH / self.days


def data_span(calls: Q, start: datetime, end: datetime, now: datetime | None = None) -> DataSpan:
    """The days with data of the calls matching `calls` in [start, end), the end capped at `now`."""
    until = min(end, now or timezone.now())
    first = LLMCall.objects.filter(calls, start_time__gte=start, start_time__lt=until).aggregate(
        first=Min("start_time"))["first"]
    if first is not None:
        first = first.replace(minute=0, second=0, microsecond=0)
    return DataSpan(first, until)
