from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from ingest.models import LLMCall
from ingest.partitions import (
    create_partition,
    drop_expired_partitions,
    ensure_partitions,
    existing_partitions,
)


def _partition_of(call_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM ingest_llmcall WHERE id = %s", [call_id])
        return cursor.fetchone()[0]


def _call(org, start, span="00f067aa0ba902b7", **extra):
    return LLMCall.objects.create(
        organization=org, trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id=span, start_time=start,
        provider="openai", operation="chat", request_model="gpt-4o-mini", input_tokens=1200, output_tokens=85, **extra,
    )


@pytest.mark.django_db
def test_it_creates_daily_partitions_ahead():
    today = date(2026, 11, 23)
    ensure_partitions(days_ahead=7, days_back=1, today=today)
    days = existing_partitions("ingest_llmcall")
    for offset in range(-1, 8):
        assert today + timedelta(days=offset) in days
    assert existing_partitions("ingest_tracespan").keys() >= days.keys()
    assert ensure_partitions(days_ahead=7, days_back=1, today=today) == []


@pytest.mark.django_db
def test_calls_land_in_their_day_partition(org):
    ensure_partitions(days_ahead=1, days_back=0, today=date(2026, 11, 23))
    call = _call(org, datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC))
    next_day = _call(org, datetime(2026, 11, 24, 0, 0, 0, tzinfo=UTC), span="00f067aa0ba902b8")
    assert _partition_of(call.id) == "ingest_llmcall_p20261123"
    assert _partition_of(next_day.id) == "ingest_llmcall_p20261124"


@pytest.mark.django_db
def test_a_call_without_a_partition_is_kept_and_moved_later(org):
    old = _call(org, datetime(2025, 1, 5, 12, tzinfo=UTC))
    assert _partition_of(old.id) == "ingest_llmcall_default"
    assert create_partition("ingest_llmcall", date(2025, 1, 5))
    assert _partition_of(old.id) == "ingest_llmcall_p20250105"
    assert LLMCall.objects.filter(start_time__date=date(2025, 1, 5)).count() == 1


@pytest.mark.django_db
def test_the_unique_key_rejects_a_duplicate_call(org):
    start = datetime(2026, 11, 23, 10, tzinfo=UTC)
    _call(org, start)
    with pytest.raises(IntegrityError), transaction.atomic():
        _call(org, start)
    assert LLMCall.objects.count() == 1


@pytest.mark.django_db
def test_retention_drops_whole_old_partitions(org):
    today = date(2026, 11, 23)
    create_partition("ingest_llmcall", date(2026, 1, 1))
    _call(org, datetime(2026, 1, 1, 8, tzinfo=UTC))
    recent = _call(org, datetime(2026, 11, 22, 8, tzinfo=UTC), span="00f067aa0ba902b9")
    dropped = drop_expired_partitions(retention_days=90, today=today)
    assert "ingest_llmcall_p20260101" in dropped
    assert list(LLMCall.objects.values_list("id", flat=True)) == [recent.id]
