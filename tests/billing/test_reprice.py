"""Re-pricing stored calls: only when asked, at the prices and overrides in force at each call's start."""

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import PriceOverride
from billing.pricing.at_ingest import catalog_cache
from billing.pricing.catalog import parse_entry
from billing.pricing.repricing import RepriceResult, reprice
from billing.services import import_catalog, load_default_catalog
from ingest.models import LLMCall
from ingest.records import CallFields
from ingest.services import store_calls
from observatory.services import create_api_key

NOV_1, NOV_15, DEC_1 = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
EARLY, LATE = datetime(2026, 11, 10, 9, tzinfo=UTC), datetime(2026, 11, 20, 12, tzinfo=UTC)
MINI = {"provider": "openai", "request_model": "gpt-4o-mini", "response_model": "gpt-4o-mini-2024-07-18",
        "input_tokens": 1200, "cached_input_tokens": 1024, "output_tokens": 85}
GPT_4O = {"provider": "openai", "request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06",
          "input_tokens": 1000, "output_tokens": 100}
ACME = {"provider": "acme", "request_model": "acme-llm-9", "response_model": "acme-llm-9",
        "input_tokens": 1000, "output_tokens": 500}


@pytest.fixture
def catalog(db):
    load_default_catalog()
    catalog_cache.refresh(force=True)
    yield
    catalog_cache.refresh(force=True)


@pytest.fixture
def api_key(org, team):
    return create_api_key(org, "test", team=team).api_key


def _store(api_key, *calls: tuple[datetime, dict], **extra) -> None:
    store_calls(api_key, [
        CallFields(trace_id=f"{i:032x}", span_id=f"{i:016x}", parent_span_id=None, start_time=when, duration_ms=900.0,
                   **fields, **extra)
        for i, (when, fields) in enumerate(calls, start=1)
    ])


def _costs() -> list[tuple[str, Decimal | None, str]]:
    return [(c.request_model, c.cost_usd, c.cost_status) for c in LLMCall.objects.order_by("start_time", "request_model")]


def _discount(org, pattern="gpt-4o-mini*", percent=20) -> None:
    PriceOverride.objects.create(organization=org, provider="openai", model_pattern=pattern,
                                 discount_percent=Decimal(percent), effective_from=NOV_15)


def test_stored_calls_keep_their_price_until_repriced(catalog, org, api_key):
    _store(api_key, (EARLY, MINI), (LATE, MINI))
    _discount(org)

    assert _costs() == [("gpt-4o-mini", Decimal("0.0001542"), "priced")] * 2

    result = reprice(org.id, NOV_1, DEC_1)

    assert (result.examined, result.changed) == (2, 1)
    assert _costs() == [
        ("gpt-4o-mini", Decimal("0.0001542"), "priced"),  # before the discount took effect
        ("gpt-4o-mini", Decimal("0.00012336"), "priced"),  # 20% off from Nov 15
    ]


def test_a_second_run_changes_nothing(catalog, org, api_key):
    _store(api_key, (EARLY, MINI), (LATE, MINI), (LATE, ACME))
    _discount(org)
    assert reprice(org.id, NOV_1, DEC_1).changed == 1

    assert reprice(org.id, NOV_1, DEC_1) == RepriceResult(examined=3, changed=0)


def test_it_marks_changed_calls_for_the_rollup(catalog, org, api_key):
    _store(api_key, (EARLY, MINI), (LATE, MINI))
    before = dict(LLMCall.objects.values_list("start_time", "ingested_at"))
    _discount(org)

    reprice(org.id, NOV_1, DEC_1)

    after = dict(LLMCall.objects.values_list("start_time", "ingested_at"))
    assert after[EARLY] == before[EARLY]
    assert after[LATE] > before[LATE]


def test_an_imported_price_change_applies_from_its_date(catalog, org, api_key):
    undated = {**MINI, "response_model": "gpt-4o-mini"}  # the dated snapshot has a catalog entry of its own
    _store(api_key, (EARLY, undated), (LATE, undated))
    entry = {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 3e-07,
             "output_cost_per_token": 1.2e-06, "cache_read_input_token_cost": 1.5e-07}
    import_catalog([parse_entry("gpt-4o-mini", entry)], effective_from=NOV_15)

    assert reprice(org.id, NOV_1, DEC_1).changed == 1
    # 176×3e-7 + 1024×1.5e-7 + 85×1.2e-6
    assert [cost for _, cost, _ in _costs()] == [Decimal("0.0001542"), Decimal("0.0003084")]


def test_a_call_of_an_unknown_model_is_priced_once_its_price_is_imported(catalog, org, api_key):
    _store(api_key, (LATE, ACME))
    assert _costs() == [("acme-llm-9", None, "unknown_model")]
    entry = {"litellm_provider": "acme", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06}
    import_catalog([parse_entry("acme-llm-9", entry)], effective_from=NOV_1)

    assert reprice(org.id, NOV_1, DEC_1).changed == 1
    assert _costs() == [("acme-llm-9", Decimal("0.003"), "priced")]  # 1000×1e-6 + 500×4e-6


def test_an_app_cache_hit_stays_free_and_records_the_new_saving(catalog, org, api_key):
    _store(api_key, (LATE, MINI), app_cache_hit=True)
    _discount(org)

    reprice(org.id, NOV_1, DEC_1)

    call = LLMCall.objects.get()
    assert (call.cost_usd, call.cost_status, call.cost_avoided_usd) == (Decimal(0), "free", Decimal("0.00012336"))


def test_model_limits_it_to_matching_calls(catalog, org, api_key):
    _store(api_key, (LATE, MINI), (LATE, GPT_4O))
    _discount(org, pattern="gpt-4o*")

    assert reprice(org.id, NOV_1, DEC_1, model="gpt-4o").changed == 1
    assert _costs() == [("gpt-4o", Decimal("0.0028"), "priced"), ("gpt-4o-mini", Decimal("0.0001542"), "priced")]
    assert reprice(org.id, NOV_1, DEC_1, model="gpt-4o-mini-*").changed == 1
    assert _costs()[1] == ("gpt-4o-mini", Decimal("0.00012336"), "priced")


def test_it_only_touches_the_range_and_the_organization(catalog, org, api_key):
    from observatory.models import Organization

    other = Organization.objects.create(name="Other", slug="other")
    _store(create_api_key(other, "other").api_key, (LATE, MINI))
    _store(api_key, (LATE, MINI))
    _discount(org)
    _discount(other)

    assert reprice(org.id, NOV_1, LATE).changed == 0
    assert reprice(org.id, LATE, DEC_1).changed == 1
    assert sorted(cost for _, cost, _ in _costs()) == [Decimal("0.00012336"), Decimal("0.0001542")]


def test_it_pages_through_a_day_in_batches(catalog, org, api_key):
    _store(api_key, *[(LATE, MINI)] * 7)
    _discount(org)
    days = []

    result = reprice(org.id, NOV_1, DEC_1, batch=3, progress=lambda examined, changed: days.append((examined, changed)))

    assert (result.examined, result.changed) == (7, 7)
    assert len(days) == 30 and days[19] == (7, 7)


def test_the_command_prints_progress_per_day_and_a_summary(catalog, org, api_key):
    _store(api_key, (EARLY, MINI), (LATE, MINI))
    _discount(org)
    out = StringIO()

    call_command("reprice", "--since", "2026-11-01", "--until", "2026-12-01", "--org", "acme", stdout=out)

    lines = out.getvalue().splitlines()
    assert len(lines) == 31
    assert lines[9] == "day 10/30 (2026-11-10): 1 calls, 0 changed"
    assert lines[19] == "day 20/30 (2026-11-20): 1 calls, 1 changed"
    assert lines[-1] == "re-priced 2 calls: 1 changed"
    assert LLMCall.objects.get(start_time=LATE).cost_usd == Decimal("0.00012336")


def test_the_command_takes_a_model_pattern(catalog, org, api_key):
    _store(api_key, (LATE, MINI), (LATE, GPT_4O))
    _discount(org, pattern="gpt-4o*")
    out = StringIO()

    call_command("reprice", "--since", "2026-11-20T00:00", "--until", "2026-11-21", "--model", "gpt-4o", stdout=out)

    assert out.getvalue().splitlines() == ["day 1/1 (2026-11-20): 1 calls, 1 changed", "re-priced 1 calls: 1 changed"]


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "last week"], "--since 'last week' is not a date"),
    (["--since", "2026-02-30"], "--since '2026-02-30' is not a date"),
    (["--since", "2026-11-02", "--until", "2026-11-01"], "--until .* must be after --since"),
    (["--since", "2026-11-01", "--org", "nope"], "no organization with slug 'nope'"),
])
def test_the_command_rejects_bad_input(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("reprice", *args)
