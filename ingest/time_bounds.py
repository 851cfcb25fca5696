"""The times ingest accepts, the same on every path — OTLP spans, log records and metric points, the REST API: not
before 2000-01-01 and not more than a day ahead of our clock. The limits are OTLP decoding's (MIN_TIME_NS,
MAX_FUTURE_NS in ingest.otlp_decode.limits), so a call refused over OTLP is refused everywhere. A time far in the future
would otherwise be stored and then break every job that turns it into an hour or a day (year 9999 + 1 hour)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from ingest.otlp_decode.limits import MAX_FUTURE_NS, MIN_TIME_NS

EARLIEST = datetime.fromtimestamp(MIN_TIME_NS // 10**9, UTC)
MAX_AHEAD = timedelta(microseconds=MAX_FUTURE_NS // 1000)


def time_problem(moment: datetime, now: datetime | None = None) -> str | None:
    """Why `moment` is refused, or None when it is within bounds."""
    if moment < EARLIEST:
        return "is before 2000-01-01"
    if moment > (now or timezone.now()) + MAX_AHEAD:
        return "is more than a day in the future"
    return None


def time_ns_problem(time_ns: int, now_ns: int | None = None) -> str | None:
    """The same check for an OTLP time in nanoseconds since the epoch (0 means missing)."""
    if time_ns < MIN_TIME_NS:
        return "is missing or before 2000-01-01"
    if time_ns > (now_ns or time.time_ns()) + MAX_FUTURE_NS:
        return "is more than a day in the future"
    return None
