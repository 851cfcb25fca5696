"""What ingest does with what billing registers at start-up (ingest.hooks), and without it."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.attribution import attribution_rules
from billing.models import AttributionRule
from billing.pricing.at_ingest import catalog_cache, price_for_ingest
from billing.pricing.repricing import reprice
from billing.services import load_default_catalog
from ingest import hooks
from ingest.attribution import rule_cache
from ingest.models import LLMCall
from ingest.records import CallFields
from ingest.services import store_calls
from observatory.services import create_api_key

WHEN = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def catalog(db):
    load_default_catalog()
    catalog_cache.refresh(force=True)
    yield
    catalog_cache.refresh(force=True)


@pytest.fixture
def nothing_registered():
    """Ingest as if billing had registered nothing."""
    pricer, reader = hooks.call_pricer(), hooks.rule_reader()
    hooks.set_call_pricer(None)
    hooks.set_rule_reader(None)
    yield
    hooks.set_call_pricer(pricer)
    hooks.set_rule_reader(reader)


def _store(org, **fields) -> LLMCall:
    call = CallFields(trace_id="a" * 32, span_id="b" * 16, parent_span_id=None, start_time=WHEN, duration_ms=640.0,
                      provider="openai", request_model="gpt-4o-mini", response_model="gpt-4o-mini-2024-07-18",
                      input_tokens=1000, output_tokens=100, **fields)
    store_calls(create_api_key(org, "app").api_key, [call])
    return LLMCall.objects.get()


def test_billing_registers_its_pricer_and_rule_reader():
    assert (hooks.call_pricer(), hooks.rule_reader()) == (price_for_ingest, attribution_rules)


def test_it_prices_calls_as_it_stores_them(catalog, org):
    call = _store(org)

    # gpt-4o-mini: 1,000 input tokens × $0.15/M + 100 output tokens × $0.60/M
    assert (call.cost_usd, call.cost_status) == (Decimal("0.00021"), "priced")


def test_without_a_pricer_calls_are_stored_unpriced_until_repriced(catalog, org, nothing_registered):
    call = _store(org)
    assert (call.cost_usd, call.cost_status, call.price_id) == (None, "pending", None)

    assert reprice(org.id, WHEN).changed == 1

    call.refresh_from_db()
    assert (call.cost_usd, call.cost_status) == (Decimal("0.00021"), "priced")


def test_without_a_rule_reader_no_rule_applies(org, other_team, nothing_registered):
    AttributionRule.objects.create(organization=org, field=AttributionRule.Field.SERVICE_NAME, pattern="*", team=other_team)
    rule_cache.clear()

    call = _store(org, service_name="ads-api")

    assert (call.team_id, call.attribution) == (None, "")
