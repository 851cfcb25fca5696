"""The fast write path for call records: binary COPY into the partitioned table, and for a retried
export (the unique key says some rows are already there) COPY into a staging table then
INSERT … ON CONFLICT DO NOTHING, so a replay is a no-op and never double counts.

This module is the only place that writes raw calls; a column store could take its place.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import orjson
from django.db import DataError, IntegrityError, connection, transaction
from psycopg.adapt import Dumper
from psycopg.postgres import types as builtin_types
from psycopg.pq import Format


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, PostgreSQL type for binary COPY)

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @cached_property
    def type_oids(self) -> list[int]:
        """The columns' built-in type OIDs: COPY takes them as they are, without a lookup per column per request."""
        return [builtin_types[kind].oid for _, kind in self.columns]

    @cached_property
    def copy_sql(self) -> str:
        return f"COPY {self.name} ({', '.join(self.column_names)}) FROM STDIN (FORMAT BINARY)"

    @property
    def staging(self) -> str:
        return f"stage_{self.name}"


# The call record's columns in call-row order (ingest.services.call_row), each with its type for binary COPY. COPY
# names its columns, so this order, not the table's, is what a row must follow. First the values ingest sets as it
# stores a call, then the ingest.records.CallFields attributes of the same name, copied as they are.
# tests/ingest/test_call_schema.py holds these against the LLMCall model and the migrated table.
CALL_SET_AT_STORE = (
    ("organization_id", "int8"), ("api_key_id", "int8"), ("parent_span_id", "varchar"),
    ("team_id", "int8"), ("product_id", "int8"), ("attribution", "varchar"),
    ("cost_usd", "numeric"), ("cost_status", "varchar"), ("price_id", "int8"), ("cost_avoided_usd", "numeric"),
    ("model", "text"),
)
CALL_COPIED_FIELDS = (
    ("trace_id", "varchar"), ("span_id", "varchar"), ("start_time", "timestamptz"), ("duration_ms", "float8"),
    ("ttft_ms", "float8"), ("provider", "text"), ("operation", "text"), ("request_model", "text"),
    ("response_model", "text"), ("input_tokens", "int8"), ("cached_input_tokens", "int8"),
    ("cache_write_tokens", "int8"), ("output_tokens", "int8"), ("reasoning_tokens", "int8"),
    ("usage_reported", "bool"), ("streaming", "bool"), ("status", "varchar"), ("error_type", "text"),
    ("http_status", "int2"), ("finish_reason", "text"), ("feature", "text"), ("environment", "text"),
    ("end_user", "text"), ("session", "text"), ("service_name", "text"), ("source", "text"),
    ("source_version", "text"), ("app_cache_hit", "bool"), ("prompt_prefix_hash", "text"), ("request_hash", "text"),
    ("provided_cost_usd", "numeric"), ("response_id", "text"), ("attributes", "jsonb"),
)
LLMCALL = Table("ingest_llmcall", CALL_SET_AT_STORE + CALL_COPIED_FIELDS)

TRACESPAN = Table(
    "ingest_tracespan",
    (
        ("organization_id", "int8"), ("trace_id", "varchar"), ("span_id", "varchar"), ("parent_span_id", "varchar"),
        ("name", "text"), ("kind", "int2"), ("start_time", "timestamptz"), ("duration_ms", "float8"),
        ("status", "varchar"), ("service_name", "text"), ("scope_name", "text"), ("team_id", "int8"),
        ("product_id", "int8"), ("attributes", "jsonb"),
    ),
)

CALLCONTENT = Table(
    "ingest_callcontent",
    (
        ("organization_id", "int8"), ("trace_id", "varchar"), ("span_id", "varchar"), ("start_time", "timestamptz"),
        ("input_content", "text"), ("output_content", "text"), ("truncated", "bool"),
    ),
)


class _JsonbDumper(Dumper):
    """jsonb for binary COPY straight from orjson (psycopg's own dumper makes three Python calls per value)."""

    format = Format.BINARY
    oid = builtin_types["jsonb"].oid

    def dump(self, obj) -> bytes:
        return b"\x01" + orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS)  # 1: jsonb's binary version


_staging_made: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # psycopg connection → staging tables


def _ensure_staging(cursor, table: Table) -> None:
    """Create the session's staging table once per database connection (connections are reused).

    It is remembered only after a commit: a rolled-back transaction takes the new table with it.
    """
    raw_connection = cursor.cursor.connection
    made = _staging_made.setdefault(raw_connection, set())
    if table.name in made:
        return
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {table.staging} ON COMMIT DELETE ROWS AS "  # noqa: S608 (constant names)
        f"SELECT {', '.join(table.column_names)} FROM {table.name} WITH NO DATA"
    )
    transaction.on_commit(lambda: made.add(table.name))


def _copy(cursor, target: str, table: Table, rows: Sequence[Sequence]) -> None:
    raw = cursor.cursor
    raw.adapters.register_dumper(None, _JsonbDumper)  # by type OID only: what set_types asks for
    sql = table.copy_sql if target == table.name else \
        f"COPY {target} ({', '.join(table.column_names)}) FROM STDIN (FORMAT BINARY)"
    # The raw psycopg cursor bypasses Django's error translation; restore it so callers see IntegrityError etc.
    with connection.wrap_database_errors, raw.copy(sql) as copy:
        copy.set_types(table.type_oids)
        for row in rows:
            copy.write_row(row)


def copy_rows(table: Table, rows: Sequence[Sequence], conflicts_expected: bool = False) -> int:
    """Insert `rows` (tuples in `table.columns` order); rows already stored are skipped. Returns rows inserted.

    COPY straight into the table inside a savepoint; only when that hits the unique key (an exporter retrying a
    batch), or when `conflicts_expected`, are the rows copied into a staging table and inserted with ON CONFLICT
    DO NOTHING. Must run inside a transaction.
    """
    if not rows:
        return 0
    if not conflicts_expected:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                _copy(cursor, table.name, table, rows)
            return len(rows)
        except IntegrityError:
            pass
    columns = ", ".join(table.column_names)
    with connection.cursor() as cursor:
        _ensure_staging(cursor, table)
        _copy(cursor, table.staging, table, rows)
        cursor.execute(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {table.staging} "  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute(f"TRUNCATE {table.staging}")  # several batches may share one transaction
        return inserted


@dataclass(frozen=True)
class WriteResult:
    calls_inserted: int
    calls_duplicate: int
    spans_inserted: int


def write_batch(
    calls: Sequence[Sequence], spans: Iterable[Sequence] = (), contents: Iterable[Sequence] = ()
) -> WriteResult:
    """Write one request's rows (see `_write_batch`). PostgreSQL text cannot hold a NUL character: when one does
    (a span attribute, a model name), the rows are written again with each NUL replaced by U+FFFD, so one odd
    character costs nothing but itself, never the whole export. Clean rows pay nothing for this check."""
    spans, contents = list(spans), list(contents)
    try:
        return _write_batch(calls, spans, contents)
    except DataError as error:
        if "0x00" not in str(error) and "NUL" not in str(error):
            raise
    return _write_batch(*([_without_nul(row) for row in rows] for rows in (calls, spans, contents)))


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_without_nul(item) for item in value)
    return value


def _write_batch(
    calls: Sequence[Sequence], spans: Sequence[Sequence] = (), contents: Sequence[Sequence] = ()
) -> WriteResult:
    """Write one request's rows atomically: all of them or (on error) none, so a retry cannot double count.

    First try: plain COPYs in one transaction (no savepoints). When only one table gets rows (the usual export:
    model calls, no other spans) and no transaction is open, that COPY is sent on its own: a single statement is
    its own transaction, all or nothing, without the BEGIN and COMMIT round trips. A unique-key violation (some
    rows are already stored: an exporter retried) rolls all of it back, and the request is written again through
    the staging tables, which skip the stored rows.
    """
    tables = [(table, rows) for table, rows in ((LLMCALL, calls), (TRACESPAN, spans), (CALLCONTENT, contents)) if rows]
    try:
        if len(tables) == 1 and connection.get_autocommit() and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                _copy(cursor, tables[0][0].name, *tables[0])
        else:
            with transaction.atomic(), connection.cursor() as cursor:
                for table, rows in tables:
                    _copy(cursor, table.name, table, rows)
        return WriteResult(calls_inserted=len(calls), calls_duplicate=0, spans_inserted=len(spans))
    except IntegrityError:
        pass
    with transaction.atomic():
        inserted = copy_rows(LLMCALL, calls, conflicts_expected=True)
        spans_inserted = copy_rows(TRACESPAN, spans, conflicts_expected=True)
        copy_rows(CALLCONTENT, contents, conflicts_expected=True)
    return WriteResult(calls_inserted=inserted, calls_duplicate=len(calls) - inserted, spans_inserted=spans_inserted)
