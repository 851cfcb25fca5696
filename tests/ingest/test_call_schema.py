"""The call row's one schema (ingest.store.LLMCALL) against the LLMCall model, the migrated table and a stored call.

COPY names its columns, so the table's own column order does not matter; what must line up is each row with the
schema, which call_row builds from it, and a stored call shows that every value lands in its own column.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from ingest import store
from ingest.models import CallContent, LLMCall, TraceSpan
from ingest.records import CallFields
from ingest.services import store_calls

FILLED_BY_THE_DATABASE = {"id", "ingested_at"}
COPY_TYPES = {  # PostgreSQL's name of a column type → its name in binary COPY (pg_type.typname)
    "bigint": "int8", "smallint": "int2", "integer": "int4", "boolean": "bool", "double precision": "float8",
    "timestamp with time zone": "timestamptz", "varchar": "varchar", "text": "text", "numeric": "numeric", "jsonb": "jsonb",
}
TABLES = [(store.LLMCALL, LLMCall), (store.TRACESPAN, TraceSpan), (store.CALLCONTENT, CallContent)]
TABLE_IDS = ["llmcall", "tracespan", "callcontent"]


def model_columns(model) -> dict[str, str]:
    """column → COPY type, from the model's concrete fields."""
    return {
        field.column: COPY_TYPES[field.db_type(connection).split("(")[0]]
        for field in model._meta.concrete_fields
        if field.column not in FILLED_BY_THE_DATABASE
    }


@pytest.mark.parametrize(("table", "model"), TABLES, ids=TABLE_IDS)
def test_it_lists_each_model_column_once_with_its_type(table, model):
    assert len(table.column_names) == len(set(table.column_names))
    assert dict(table.columns) == model_columns(model)


@pytest.mark.django_db
@pytest.mark.parametrize(("table", "model"), TABLES, ids=TABLE_IDS)
def test_it_matches_the_migrated_table(table, model):
    with connection.cursor() as cursor:
        cursor.execute("SELECT column_name, udt_name FROM information_schema.columns WHERE table_name = %s", [table.name])
        migrated = {name: kind for name, kind in cursor.fetchall() if name not in FILLED_BY_THE_DATABASE}

    assert migrated == dict(table.columns)


def test_a_row_has_one_value_per_column():
    assert store.LLMCALL.column_names == [name for name, _ in (*store.CALL_SET_AT_STORE, *store.CALL_COPIED_FIELDS)]
    assert {name for name, _ in store.CALL_COPIED_FIELDS} <= set(CallFields.__dataclass_fields__)


def test_a_stored_call_keeps_every_field(org):
    from observatory.services import create_api_key

    key = create_api_key(org, "schema").api_key
    call = CallFields(
        trace_id="1" * 32, span_id="2" * 16, parent_span_id="3" * 16, start_time=datetime(2026, 11, 20, 12, tzinfo=UTC),
        duration_ms=812.5, ttft_ms=95.25, provider="acme", operation="chat", request_model="acme-9",
        response_model="acme-9-0611", input_tokens=1200, cached_input_tokens=1000, cache_write_tokens=150,
        output_tokens=90, reasoning_tokens=40, usage_reported=True, streaming=True, status="error",
        error_type="rate_limit", http_status=429, finish_reason="error", team="Search", product="Assistant",
        feature="answer", environment="staging", end_user="user-7", session="s-9", service_name="assistant-api",
        source="openllmetry", source_version="0.40.2", app_cache_hit=False, prompt_prefix_hash="9f2c",
        request_hash="77ab", provided_cost_usd=Decimal("0.0125"), attributes={"app.region": "eu"},
    )

    store_calls(key, [call])

    stored = LLMCall.objects.select_related("team", "product").get()
    copied = [name for name, _ in store.CALL_COPIED_FIELDS]
    assert {name: getattr(stored, name) for name in copied} == {name: getattr(call, name) for name in copied}
    assert (stored.organization_id, stored.api_key_id, stored.parent_span_id) == (org.id, key.id, "3" * 16)
    assert (stored.team.slug, stored.product.slug, stored.attribution) == ("search", "assistant", "call")
    assert (stored.cost_usd, stored.cost_status, stored.price_id, stored.cost_avoided_usd) == (
        Decimal("0.0125"), "provided", None, None,
    )
