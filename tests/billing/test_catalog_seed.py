"""The price catalog is in force after `migrate` alone, on any install (docker compose runs migrate, then
gunicorn): the test database is itself built by migrations only, so these tests are the deploy path."""

import io
import json
import re
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from billing.models import Price, PriceOverride, PriceSource
from billing.pricing.at_ingest import catalog_cache
from billing.pricing.catalog import DEFAULT_CATALOG_PATH
from billing.services import bundled_catalog, catalog_status, seed_catalog
from ingest.models import LLMCall
from observatory.services import create_api_key

README = Path(__file__).resolve().parents[2] / "README.md"
CATALOG_MODELS = 3728  # priced per token, of the bundled file's 4,552 entries


def _otlp_chat(model: str, input_tokens: int, output_tokens: int, start_ns: int) -> bytes:
    attributes = {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                  "gen_ai.response.model": model, "gen_ai.usage.input_tokens": input_tokens,
                  "gen_ai.usage.output_tokens": output_tokens}
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add()
    spans.scope.name = "opentelemetry.instrumentation.openai_v2"
    spans.spans.append(Span(
        trace_id=secrets.token_bytes(16), span_id=secrets.token_bytes(8), name=f"chat {model}", kind=3,
        start_time_unix_nano=start_ns, end_time_unix_nano=start_ns + 900_000_000,
        attributes=[KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v))
                    for k, v in attributes.items()],
    ))
    return request.SerializeToString()


def _partition_of(call: LLMCall) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM ingest_llmcall WHERE id = %s", [call.id])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_migrate_alone_puts_the_whole_catalog_in_force_from_the_start_of_time():
    in_force = Price.objects.filter(effective_to=None)
    assert in_force.count() == CATALOG_MODELS
    mini = in_force.get(provider="openai", key="gpt-4o-mini")
    assert (mini.input, mini.output, mini.cached_input_read) == (Decimal("0.00000015"), Decimal("0.0000006"),
                                                                 Decimal("0.000000075"))
    assert mini.effective_from == datetime(2000, 1, 1, tzinfo=UTC)
    assert mini.source == PriceSource.CATALOG
    assert (mini.max_input_tokens, mini.max_output_tokens) == (128_000, 16_384)  # what makes a call implausible


@pytest.mark.django_db
def test_an_otlp_span_is_priced_on_a_database_built_by_migrate_only(org, team, client):
    catalog_cache.refresh(force=True)  # a fresh process: nothing cached from another test
    key = create_api_key(org, "collector", team=team)
    response = client.post("/v1/traces", data=_otlp_chat("gpt-4o-mini", 1200, 85, time.time_ns() - 60 * 10**9),
                           content_type="application/x-protobuf", HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert response.status_code == 200
    call = LLMCall.objects.get()
    assert call.cost_status == "priced"
    assert call.cost_usd == Decimal("0.000231")  # 1,200 × $0.15/M + 85 × $0.60/M
    assert _partition_of(call) == f"ingest_llmcall_p{call.start_time:%Y%m%d}"  # migrate made today's partition


@pytest.mark.django_db
def test_migrating_again_keeps_user_edits_and_negotiated_rates(org):
    mini = Price.objects.get(provider="openai", key="gpt-4o-mini", effective_to=None)
    mini.input, mini.source = Decimal("0.0000001"), PriceSource.MANUAL
    mini.save()
    Price.objects.filter(provider="openai", key="gpt-4o").delete()  # a user removed a price
    override = PriceOverride.objects.create(organization=org, provider="openai", model_pattern="gpt-4o*",
                                            discount_percent=Decimal("20"))
    call_command("migrate", verbosity=0)
    mini.refresh_from_db()
    assert mini.input == Decimal("0.0000001")
    assert not Price.objects.filter(provider="openai", key="gpt-4o").exists()
    assert Price.objects.count() == CATALOG_MODELS - 1
    assert PriceOverride.objects.get() == override


@pytest.mark.django_db
def test_an_install_with_only_its_own_prices_gets_the_rest_of_the_catalog_not_a_second_price():
    Price.objects.all().delete()  # installed before the catalog came with migrate: priced by hand
    Price.objects.create(provider="openai", model="gpt-4o", key="our-gpt-4o", input=Decimal("0.000002"),
                         output=Decimal("0.000008"), source=PriceSource.MANUAL)
    added = seed_catalog()
    same_model = sum(1 for spec in bundled_catalog().specs if (spec.provider, spec.model) == ("openai", "gpt-4o"))
    assert added == CATALOG_MODELS - same_model
    assert list(Price.objects.filter(provider="openai", model="gpt-4o").values_list("key", flat=True)) == ["our-gpt-4o"]
    assert Price.objects.filter(provider="openai", key="gpt-4o-mini").exists()
    assert seed_catalog() == 0


@pytest.mark.django_db
def test_import_prices_still_upgrades_the_catalog_migrate_loaded(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text('{"gpt-4o-mini": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2e-07,'
                    ' "output_cost_per_token": 6e-07, "cache_read_input_token_cost": 7.5e-08}}')
    call_command("import_prices", str(path), "--effective-from", "2026-11-20T00:00:00", verbosity=0)
    versions = Price.objects.filter(provider="openai", key="gpt-4o-mini").order_by("effective_from")
    assert [(v.input, v.effective_from.date().isoformat()) for v in versions] == [
        (Decimal("0.00000015"), "2000-01-01"), (Decimal("0.0000002"), "2026-11-20")]


@pytest.mark.django_db
def test_import_prices_sets_new_token_limits_in_place_without_a_new_price_version(tmp_path):
    entry = json.loads(DEFAULT_CATALOG_PATH.read_text())["gpt-4o-mini"]
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"gpt-4o-mini": {**entry, "max_input_tokens": 1_000_000}}))  # same prices, new window
    out = io.StringIO()
    call_command("import_prices", str(path), stdout=out)
    assert "0 added, 0 changed, 1 unchanged (1 with new token limits" in out.getvalue()
    mini = Price.objects.get(provider="openai", key="gpt-4o-mini")
    assert (mini.input, mini.max_input_tokens, mini.effective_from.year) == (Decimal("0.00000015"), 1_000_000, 2000)


@pytest.mark.django_db
def test_the_start_up_line_and_the_readme_state_the_same_catalog_figure():
    line = catalog_status()
    assert line.startswith(f"price catalog: {CATALOG_MODELS:,} model prices in force.")
    assert "4,552 entries: 3,728 priced per token, 824 skipped (677 priced per image, second, character, query or page, " \
           "95 without any price, 51 with prices by input-size range only, 1 with batch or priority prices only)" in line
    readme = README.read_text()
    assert re.search(r"catalog of 3,728 models", readme)
    assert "4,500" not in readme


@pytest.mark.django_db(transaction=True)
def test_the_catalog_is_in_force_again_after_a_flush():
    call_command("flush", interactive=False, verbosity=0)
    assert Price.objects.filter(provider="openai", key="gpt-4o-mini", effective_to=None).exists()
