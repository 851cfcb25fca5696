"""Pricing at ingest against the seeded catalog in PostgreSQL: dollar figures a user would check."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import Price, PriceOverride
from billing.pricing.at_ingest import catalog_cache, price_for_ingest
from billing.pricing.catalog import parse_entry
from billing.services import import_catalog, load_default_catalog
from ingest.records import CallFields

WHEN = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def catalog(db):
    load_default_catalog()
    catalog_cache.refresh(force=True)
    yield
    catalog_cache.refresh(force=True)


def _call(**fields) -> CallFields:
    base = {"trace_id": "a" * 32, "span_id": "b" * 16, "parent_span_id": None, "start_time": WHEN, "duration_ms": 800.0}
    return CallFields(**{**base, **fields})


OPENAI_CHAT = {"provider": "openai", "request_model": "gpt-4o-mini", "response_model": "gpt-4o-mini-2024-07-18",
               "input_tokens": 1200, "cached_input_tokens": 1024, "output_tokens": 85, "reasoning_tokens": 64}
ANTHROPIC = {"provider": "anthropic", "request_model": "claude-sonnet-4-5", "response_model": "claude-sonnet-4-5-20250929",
             "input_tokens": 1842, "cached_input_tokens": 1500, "cache_write_tokens": 300, "output_tokens": 77}


def test_it_seeds_thousands_of_prices(catalog):
    assert Price.objects.count() > 3000
    assert "already" not in load_default_catalog()  # second run reports what is in force, changes nothing
    assert Price.objects.filter(provider="openai", key="gpt-4o-mini").count() == 1


def test_openai_chat_with_cached_and_reasoning_tokens(catalog, org):
    cost = price_for_ingest(org.id, _call(**OPENAI_CHAT))
    assert cost.cost_status == "priced"
    assert cost.cost_usd == Decimal("0.0001542")


def test_anthropic_cache_read_and_write(catalog, org):
    cost = price_for_ingest(org.id, _call(**ANTHROPIC))
    assert cost.cost_usd == Decimal("0.002856")


def test_an_unknown_model_is_never_zero(catalog, org):
    cost = price_for_ingest(org.id, _call(provider="acme", request_model="acme-llm-9", input_tokens=10, output_tokens=5))
    assert (cost.cost_usd, cost.cost_status) == (None, "unknown_model")


def test_an_instrumentation_cost_is_kept_only_when_we_have_no_price(catalog, org):
    cost = price_for_ingest(org.id, _call(provider="acme", request_model="acme-llm-9", input_tokens=10,
                                          provided_cost_usd=Decimal("0.5")))
    assert (cost.cost_usd, cost.cost_status) == (Decimal("0.5"), "provided")
    ours = price_for_ingest(org.id, _call(**OPENAI_CHAT, provided_cost_usd=Decimal("0.9")))
    assert (ours.cost_usd, ours.cost_status) == (Decimal("0.0001542"), "priced")


def test_an_app_cache_hit_costs_nothing_and_records_what_it_saved(catalog, org):
    cost = price_for_ingest(org.id, _call(**OPENAI_CHAT, app_cache_hit=True))
    assert (cost.cost_usd, cost.cost_status, cost.cost_avoided_usd) == (Decimal(0), "free", Decimal("0.0001542"))


def test_a_negotiated_discount_applies_to_the_organization_only(catalog, org):
    from observatory.models import Organization

    PriceOverride.objects.create(organization=org, provider="openai", model_pattern="gpt-4o-mini*", discount_percent=Decimal(20))
    other = Organization.objects.create(name="Other", slug="other")
    catalog_cache.refresh(force=True)
    assert price_for_ingest(org.id, _call(**OPENAI_CHAT)).cost_usd == Decimal("0.00012336")
    assert price_for_ingest(other.id, _call(**OPENAI_CHAT)).cost_usd == Decimal("0.0001542")


def test_a_price_change_does_not_rewrite_earlier_calls(catalog, org):
    entry = {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 3e-07,
             "output_cost_per_token": 1.2e-06, "cache_read_input_token_cost": 1.5e-07}
    summary = import_catalog([parse_entry("gpt-4o-mini", entry)], effective_from=datetime(2026, 11, 15, tzinfo=UTC))
    assert len(summary.changed) == 1 and "input 0.00000015 → 0.0000003" in summary.changed[0]
    catalog_cache.refresh(force=True)
    undated = {**OPENAI_CHAT, "response_model": "gpt-4o-mini"}
    before = price_for_ingest(org.id, _call(**undated, start_time=datetime(2026, 11, 10, tzinfo=UTC)))
    after = price_for_ingest(org.id, _call(**undated))
    assert before.cost_usd == Decimal("0.0001542")
    assert after.cost_usd == Decimal("0.0003084")  # 176×3e-7 + 1024×1.5e-7 + 85×1.2e-6
    assert before.price_id != after.price_id
