"""The dashboard's querystring: time ranges on whole hours or days, the calls explorer's filters and cursor."""

from datetime import UTC, date, datetime

from observatory.dashboard.filters import decode_cursor, encode_cursor, parse_call_filters, parse_period

NOW = datetime(2026, 11, 20, 14, 35, 12, tzinfo=UTC)


def test_it_reads_the_last_24_hours_on_whole_hours():
    period = parse_period({"range": "24h"}, "7d", NOW)
    assert (period.start, period.end) == (datetime(2026, 11, 19, 15, tzinfo=UTC), datetime(2026, 11, 20, 15, tzinfo=UTC))
    assert period.interval == "hour"
    assert len(period.slots) == 24


def test_it_reads_7_and_30_days_as_whole_days_including_today():
    week = parse_period({"range": "7d"}, "30d", NOW)
    assert (week.start, week.end) == (datetime(2026, 11, 14, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    assert week.slots[0] == date(2026, 11, 14) and week.slots[-1] == date(2026, 11, 20) and len(week.slots) == 7
    month = parse_period({"range": "30d"}, "7d", NOW)
    assert month.start == datetime(2026, 10, 22, tzinfo=UTC)
    assert month.label == "Last 30 days"


def test_it_uses_the_pages_default_without_a_range():
    assert parse_period({}, "30d", NOW).key == "30d"
    assert parse_period({"org": "acme"}, "7d", NOW).key == "7d"


def test_it_reads_a_custom_range_with_both_days_included():
    period = parse_period({"range": "custom", "start": "2026-11-01", "end": "2026-11-03"}, "7d", NOW)
    assert (period.start, period.end) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC))
    assert period.label == "01 Nov 2026 – 03 Nov 2026"
    assert period.span == "Nov 01 – Nov 03, 2026 (UTC)"
    assert parse_period({"start": "2026-11-01", "end": "2026-11-01"}, "7d", NOW).key == "custom"


def test_the_previous_period_has_the_same_length_just_before():
    period = parse_period({"range": "7d"}, "7d", NOW)
    assert (period.previous.start, period.previous.end) == (datetime(2026, 11, 7, tzinfo=UTC), period.start)


def test_it_falls_back_to_the_default_and_says_why():
    for params, message in (
        ({"range": "1y"}, "Unknown range"),
        ({"range": "custom", "start": "yesterday", "end": "2026-11-03"}, "two dates"),
        ({"range": "custom", "start": "2026-11-05", "end": "2026-11-03"}, "ends before it starts"),
        ({"range": "custom", "start": "2024-01-01", "end": "2026-11-03"}, "at most 400 days"),
    ):
        period = parse_period(params, "7d", NOW)
        assert period.key == "7d"
        assert message in period.error


def test_it_reads_call_filters_and_ignores_an_unknown_status():
    filters = parse_call_filters({"team": "search", "model": " gpt-4o ", "status": "broken", "user": "u" * 500})
    assert (filters.team, filters.model, filters.status) == ("search", "gpt-4o", "")
    assert len(filters.user) == 200
    assert filters.active
    assert not parse_call_filters({}).active


def test_a_cursor_round_trips_and_garbage_is_ignored():
    moment = datetime(2026, 11, 20, 9, 0, 1, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(moment, 42)) == (moment, 42)
    for garbage in ("", "nonsense", "2026-11-20T09:00:00_x", "2026-11-20T09:00:00_5"):
        assert decode_cursor(garbage) is None
