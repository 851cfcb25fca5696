"""Daily range partitions of the call tables: created ahead by a scheduled job, dropped by retention.

Rows for a day with no partition land in the table's DEFAULT partition; creating that day's
partition later moves them over (detach default, create, move, re-attach) so nothing is lost.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction

# Table and partition names below come from PARTITIONED_TABLES and dates, never from input.
# ruff: noqa: S608

PARTITIONED_TABLES = ("ingest_llmcall", "ingest_tracespan", "ingest_callcontent")
_PARTITION_NAME = re.compile(r"^(?P<table>\w+)_p(?P<day>\d{8})$")


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _bounds(day: date) -> tuple[str, str]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start.isoformat(), (start + timedelta(days=1)).isoformat()


def existing_partitions(table: str) -> dict[date, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = %s
            """,
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = {}
    for name in names:
        match = _PARTITION_NAME.match(name)
        if match and match["table"] == table:
            found[datetime.strptime(match["day"], "%Y%m%d").date()] = name
    return found


def create_partition(table: str, day: date) -> bool:
    """Create `table`'s partition for `day` (UTC). Returns False if it already existed."""
    if day in existing_partitions(table):
        return False
    name = partition_name(table, day)
    low, high = _bounds(day)
    default = f"{table}_default"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE start_time >= %s AND start_time < %s)", [low, high])
        stranded = cursor.fetchone()[0]
        if not stranded:
            cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)", [low, high])
            return True
        cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {default}")
        cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM (%s) TO (%s)", [low, high])
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE start_time >= %s AND start_time < %s RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            [low, high],
        )
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {default} DEFAULT")
    return True


def ensure_partitions(days_ahead: int = 7, days_back: int = 2, today: date | None = None) -> list[str]:
    """Make sure every table has partitions from `days_back` days ago to `days_ahead` days ahead."""
    today = today or datetime.now(UTC).date()
    created = []
    for table in PARTITIONED_TABLES:
        have = existing_partitions(table)
        for offset in range(-days_back, days_ahead + 1):
            day = today + timedelta(days=offset)
            if day not in have and create_partition(table, day):
                created.append(partition_name(table, day))
    return created


def drop_expired_partitions(retention_days: int, today: date | None = None) -> list[str]:
    """Drop whole daily partitions older than the retention window (never row-by-row DELETE)."""
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=retention_days)
    dropped = []
    with connection.cursor() as cursor:
        for table in PARTITIONED_TABLES:
            for day, name in sorted(existing_partitions(table).items()):
                if day < cutoff:
                    cursor.execute(f"DROP TABLE IF EXISTS {name}")
                    dropped.append(name)
            cursor.execute(
                f"DELETE FROM {table}_default WHERE start_time < %s", [datetime.combine(cutoff, datetime.min.time(), UTC)]
            )
    return dropped
