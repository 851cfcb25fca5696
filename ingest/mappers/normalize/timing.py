"""Span times as UTC datetimes, and time to first token from seconds, events or ISO timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.mappers.normalize.values import as_seconds, unquote
from ingest.records import AttrValue, SpanView

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(ns: int) -> datetime:
    """UTC datetime of a unix-nanosecond time, truncated to the microsecond (exact: no float on the way)."""
    return _EPOCH + timedelta(0, 0, ns // 1000)


def ttft_from_seconds(value: AttrValue) -> float | None:
    seconds = as_seconds(value)
    return None if seconds is None else seconds * 1000.0


def ttft_from_event(span: SpanView, event_name: str) -> float | None:
    """Milliseconds from span start to the first event called `event_name`."""
    for event in span.events:
        if event.name == event_name:
            delta = event.time_ns - span.start_ns
            return delta / 1e6 if delta >= 0 else None
    return None


def ttft_from_iso(value: AttrValue, start_ns: int) -> float | None:
    """Milliseconds from span start to an absolute ISO-8601 timestamp (Langfuse completion_start_time)."""
    text = unquote(value)
    if type(text) is not str or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - timestamp(start_ns)
    ms = delta.total_seconds() * 1000.0
    return ms if ms >= 0 else None
