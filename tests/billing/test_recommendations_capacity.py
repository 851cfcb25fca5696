"""Capacity recommendations (batch API, context trimming, provisioned capacity): each test builds traffic whose answer
is known by hand, from the bundled catalog's prices in USD per million tokens:
- openai gpt-4o: $2.50 input, $1.25 cached read, $10 output; batch $1.25 input, $5 output and no batch cached-read
  price, so cached reads cost the standard $1.25 in a batch too.
- anthropic claude-sonnet-4-5: $3 input, $0.30 cached read, $3.75 cache write, $15 output; batch $1.50, $0.15,
  $1.875, $7.50.
- gcp.gemini gemini-2.5-pro: $1.25 input, $0.125 cached read, $10 output; above 200,000 input tokens $2.50, $0.25,
  $15. Batch $0.625 input, $5 output; batch above 200,000: $1.25 input, $7.50 output.

Monthly figures are the window's saving × 30.44 / the days with data, from the hour of the first call to the
window's end (billing.monthly): the tests run at noon of a past day so those days are known by hand.
"""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.pricing.at_ingest import catalog_cache
from billing.recommendations import generate
from billing.recommendations.batch_api import batch_word
from billing.services import load_default_catalog
from ingest.models import LLMCall

_ids = itertools.count(1)


def noon_yesterday():
    """at_hours() calls start at midnight 6 days before: 6.5 days with data when the first is in hour 0."""
    return (timezone.now() - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


def on_the_hour():
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def per_month(window_usd, days) -> Decimal:
    """The window's saving × 30.44 / its days with data, to the micro-dollar as stored."""
    return (Decimal(window_usd) * Decimal("30.44") / Decimal(days)).quantize(Decimal("0.000001"))


@pytest.fixture
def catalog(db):
    load_default_catalog()
    catalog_cache.refresh(force=True)


def add_calls(org, times, *, provider="openai", model="gpt-4o", input_tokens, output_tokens=0, cached=0, cache_write=0,
              feature="", environment="", team=None, streaming=False, cost=None):
    """One call at each of `times`."""
    rows = []
    for at in times:
        n = next(_ids)
        rows.append(LLMCall(
            organization=org, trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time=at, provider=provider,
            operation="chat", request_model=model, response_model=model, team=team, feature=feature,
            environment=environment, input_tokens=input_tokens, cached_input_tokens=cached,
            cache_write_tokens=cache_write, output_tokens=output_tokens, streaming=streaming, cost_usd=cost,
            cost_status="priced",
        ))
    LLMCall.objects.bulk_create(rows, batch_size=2000)


def at_hours(now, hours, per_hour, days=5):
    """`per_hour` calls in each of the UTC `hours` of the day, spread over `days` days before `now`."""
    midnight = (now - timedelta(days=days + 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return [midnight + timedelta(days=i % days, hours=hour, seconds=i) for hour in hours for i in range(per_hour)]


def of_kind(recs, kind):
    return [rec for rec in recs if rec.kind == kind]


# batch_api ---------------------------------------------------------------------------------------------------------

def test_batch_words():
    assert batch_word("nightly-summaries") == "nightly"
    assert batch_word("", "ETL") == "etl"
    assert batch_word("evals") == "eval"
    assert batch_word("reindex_batches") == "batch"
    assert batch_word("Cron_Job") == "cron"
    assert batch_word("jobseeker", "evaluate", "chat") is None


@pytest.mark.django_db
def test_batch_api_for_traffic_marked_nightly(org, team, catalog):
    now = noon_yesterday()
    add_calls(org, at_hours(now, range(24), 5)[:100], feature="nightly-summaries", environment="production", team=team,
              input_tokens=10_000, cached=2_000, output_tokens=1_000)
    # per call, on demand: 8,000 × $2.50 + 2,000 × $1.25 + 1,000 × $10 = $0.0325 (per M)
    #            batch:     8,000 × $1.25 + 2,000 × $1.25 + 1,000 × $5  = $0.0175 (cached reads: no batch price)
    # 100 calls × $0.015 = $1.50 in the window; the first at midnight 6 days before noon: 6.5 days with data,
    # $1.50 × 30.44 / 6.5 = $7.024615 a month
    [rec] = of_kind(generate(org.pk, now=now, window_days=30), "batch_api")
    assert rec.feature == "nightly-summaries" and rec.model == "gpt-4o" and rec.team == team
    assert rec.fingerprint == "batch_api:nightly-summaries:production:openai:gpt-4o"
    assert rec.confidence == "high" and rec.evidence["reason"] == "marked" and rec.evidence["matched_word"] == "nightly"
    assert rec.evidence_value == Decimal("1.5") and rec.monthly_savings_usd == per_month("1.5", "6.5")
    assert rec.monthly_savings_usd == Decimal("7.024615")
    assert rec.evidence["on_demand_cost_usd"] == "3.250000" and rec.evidence["batch_cost_usd"] == "1.750000"
    assert rec.evidence["input_tokens"] == 1_000_000 and rec.evidence["cached_input_tokens"] == 200_000
    assert "$3.25 − $1.75" in rec.formula


@pytest.mark.django_db
def test_batch_api_inferred_from_bursts(org, team, catalog):
    now = noon_yesterday()
    sonnet = {"provider": "anthropic", "model": "claude-sonnet-4-5", "feature": "summaries", "environment": "prod",
              "team": team, "input_tokens": 5_000, "cached": 1_000, "cache_write": 1_000, "output_tokens": 500}
    add_calls(org, at_hours(now, [1, 2, 3], 180), **sonnet)  # 540 calls between 01:00 and 04:00 UTC
    add_calls(org, at_hours(now, range(8, 20), 5), **sonnet)  # 60 calls during the day
    # 540 / 600 = 90% of the calls in 3 hours of the day, none streamed. Per call, input 5,000 includes the cached
    # read and the cache write, so 3,000 are uncached:
    #   on demand 3,000 × $3 + 1,000 × $0.30 + 1,000 × $3.75 + 500 × $15 = $0.02055 (per M)
    #   batch     3,000 × $1.50 + 1,000 × $0.15 + 1,000 × $1.875 + 500 × $7.50 = $0.010275
    # 600 × $0.010275 = $6.165; the first call at 01:00 six days before noon: 6.5 days − 1 hour = 155 hours of data,
    # $6.165 × 30.44 / (155 / 24) = $29.057435 a month
    [rec] = of_kind(generate(org.pk, now=now, window_days=30), "batch_api")
    assert rec.feature == "summaries" and rec.model == "claude-sonnet-4-5" and rec.team == team
    assert rec.confidence == "low" and rec.evidence["reason"] == "bursty"
    assert rec.evidence["busiest_hours_utc"] == [1, 2, 3] and rec.evidence["busiest_hours_share"] == 0.9
    assert rec.evidence["busiest_hours_days"] == 5
    assert rec.evidence["cache_write_tokens"] == 600_000
    assert rec.evidence_value == Decimal("6.165") and rec.monthly_savings_usd == per_month("6.165", Decimal(155) / 24)
    assert rec.monthly_savings_usd == Decimal("29.057435")


@pytest.mark.django_db
def test_batch_api_prices_long_context_calls_at_the_batch_tier(org, catalog):
    now = timezone.now()
    gemini = {"provider": "gcp.gemini", "model": "gemini-2.5-pro", "feature": "eval-suite"}
    add_calls(org, at_hours(now, [10], 4), input_tokens=250_000, **gemini)
    add_calls(org, at_hours(now, [11], 4), input_tokens=100_000, **gemini)
    # above 200,000: 4 × 250,000 × ($2.50 − $1.25)/M = $1.25; below: 4 × 100,000 × ($1.25 − $0.625)/M = $0.25
    # = $1.50 (summing the tokens first and pricing them at one tier would give a different figure)
    [rec] = of_kind(generate(org.pk, now=now, window_days=30), "batch_api")
    assert rec.feature == "eval-suite" and rec.model == "gemini-2.5-pro" and rec.confidence == "high"
    assert rec.evidence_value == Decimal("1.5")


@pytest.mark.django_db
def test_no_batch_api_for_interactive_traffic(org, catalog):
    now = timezone.now()
    # streamed chat spread over the day
    add_calls(org, at_hours(now, range(24), 25), feature="chat", environment="production", streaming=True,
              input_tokens=5_000, output_tokens=500)
    # bursty, but one call streamed
    add_calls(org, at_hours(now, [1, 2], 300), feature="digest", input_tokens=5_000, output_tokens=500)
    add_calls(org, at_hours(now, [3], 1), feature="digest", streaming=True, input_tokens=5_000, output_tokens=500)
    # not streamed, but spread over the day
    add_calls(org, at_hours(now, range(24), 25), feature="assistant", input_tokens=5_000, output_tokens=500)
    # 600 calls in one afternoon: a one-off burst, not a schedule (each hour of the day has calls on 1 day only)
    add_calls(org, at_hours(now, [13, 14], 300, days=1), feature="import", input_tokens=5_000, output_tokens=500)
    # bursty but too few calls (499)
    add_calls(org, at_hours(now, [4], 499), feature="report", input_tokens=5_000, output_tokens=500)
    # a marked feature at a model the catalog does not know (so no batch price)
    add_calls(org, at_hours(now, [5], 50), model="my-finetune", feature="nightly", input_tokens=5_000)
    assert of_kind(generate(org.pk, now=now), "batch_api") == []


# context_trimming --------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_context_trimming_of_a_long_tail(org, team, catalog):
    now = noon_yesterday()
    times = at_hours(now, range(24), 10)
    add_calls(org, times[:180], feature="rag", team=team, input_tokens=1_000, output_tokens=200)
    add_calls(org, times[180:200], feature="rag", team=team, input_tokens=50_000, output_tokens=200)
    # 200 calls: median 1,000, p95 50,000 (≥ 4 × 1,000 and ≥ 2,000). Trim the 20 calls above 2 × 1,000 to 2,000:
    # 20 × 48,000 = 960,000 tokens × $2.50/M = $2.40 in 6.5 days with data: × 30.44 / 6.5 = $11.239385 a month
    [rec] = of_kind(generate(org.pk, now=now, window_days=30), "context_trimming")
    assert rec.fingerprint == "context_trimming:rag:openai:gpt-4o"
    assert rec.feature == "rag" and rec.model == "gpt-4o" and rec.team == team and rec.confidence == "low"
    assert rec.evidence["median_input_tokens"] == 1_000 and rec.evidence["p95_input_tokens"] == 50_000
    assert rec.evidence["trimmed_calls"] == 20 and rec.evidence["trimmed_tokens"] == 960_000
    assert rec.evidence["trim_to_tokens"] == 2_000
    assert rec.evidence_value == Decimal("2.4") and rec.monthly_savings_usd == per_month("2.4", "6.5")
    assert rec.monthly_savings_usd == Decimal("11.239385")


@pytest.mark.django_db
def test_context_trimming_under_a_long_context_tier(org, team, catalog):
    now = noon_yesterday()
    gemini = {"provider": "gcp.gemini", "model": "gemini-2.5-pro", "feature": "docqa", "team": team, "output_tokens": 2_000}
    add_calls(org, at_hours(now, range(10), 1), input_tokens=250_000, cached=50_000, **gemini)
    add_calls(org, at_hours(now, range(10, 20), 3), input_tokens=100_000, **gemini)
    # the 10 calls above 200,000 input tokens, each:
    #   tier prices: 200,000 × $2.50 + 50,000 × $0.25 + 2,000 × $15 = $0.5425 (per M)
    #   base prices: 200,000 × $1.25 + 50,000 × $0.125 + 2,000 × $10 = $0.27625
    # 10 × $0.26625 = $2.6625; the 30 calls at 100,000 tokens are not in the tier
    # (40 calls: too few for the percentile trigger; not marked and too few to batch)
    # in 6.5 days with data: $2.6625 × 30.44 / 6.5 = $12.468692 a month
    [rec] = of_kind(generate(org.pk, now=now, window_days=30), "context_trimming")
    assert rec.fingerprint == "context_trimming:tier:docqa:gcp.gemini:gemini-2.5-pro"
    assert rec.feature == "docqa" and rec.model == "gemini-2.5-pro" and rec.team == team and rec.confidence == "medium"
    assert rec.evidence["calls_over_threshold"] == 10 and rec.evidence["threshold_tokens"] == 200_000
    assert rec.evidence["tier_cost_usd"] == "5.425000" and rec.evidence["base_cost_usd"] == "2.762500"
    assert rec.evidence_value == Decimal("2.6625") and rec.monthly_savings_usd == per_month("2.6625", "6.5")
    assert rec.monthly_savings_usd == Decimal("12.468692")


@pytest.mark.django_db
def test_no_context_trimming_for_uniform_prompts(org, catalog):
    now = timezone.now()
    add_calls(org, at_hours(now, range(24), 20), feature="extract", input_tokens=3_000, output_tokens=200)
    # a long tail, but under 2,000 tokens at p95
    times = at_hours(now, range(24), 10)
    add_calls(org, times[:180], feature="short", input_tokens=100, output_tokens=10)
    add_calls(org, times[180:], feature="short", input_tokens=1_500, output_tokens=10)
    assert of_kind(generate(org.pk, now=now), "context_trimming") == []


# provisioned_capacity ----------------------------------------------------------------------------------------------

def hourly(now, window_days, tokens_per_hour):
    """Two calls in each hour of the window (counted from its start), splitting that hour's tokens."""
    since = now - timedelta(days=window_days)
    for hour, tokens in enumerate(tokens_per_hour):
        if tokens:
            yield since + timedelta(hours=hour, minutes=5), tokens // 2
            yield since + timedelta(hours=hour, minutes=35), tokens // 2


def add_hourly(org, now, window_days, tokens_per_hour, **fields):
    for at, tokens in hourly(now, window_days, tokens_per_hour):
        add_calls(org, [at], input_tokens=tokens, cost=tokens * Decimal("2.5") / 10**6, **fields)  # gpt-4o $2.50/M


@pytest.mark.django_db
@pytest.mark.parametrize(("low", "high", "cv", "share", "window_saving", "monthly", "confidence"), [
    # 48 hours alternating 800,000 / 1,200,000 tokens: mean 1,000,000, stdev 200,000, cv 0.2; p10 = 800,000 covers
    # 48 × 800,000 of 48,000,000 tokens = 80%. Spend 48,000,000 × $2.50/M = $120 in 2 days ($1,800 a month).
    # $120 × 0.8 × 0.30 = $28.80 in the window's 2 days with data, × 30.44 / 2 = $438.336 a month
    (800_000, 1_200_000, 0.2, 0.8, Decimal("28.8"), Decimal("438.336"), "medium"),
    # 600,000 / 1,400,000: stdev 400,000, cv 0.4 (low confidence); covered 48 × 600,000 / 48,000,000 = 60%
    # $120 × 0.6 × 0.30 = $21.60, × 15.22 = $328.752 a month
    (600_000, 1_400_000, 0.4, 0.6, Decimal("21.6"), Decimal("328.752"), "low"),
])
def test_provisioned_capacity_for_steady_traffic(org, team, catalog, low, high, cv, share, window_saving, monthly,
                                                  confidence):
    now = on_the_hour()
    add_hourly(org, now, 2, [low, high] * 24, feature="assistant", team=team)
    [rec] = of_kind(generate(org.pk, now=now, window_days=2), "provisioned_capacity")
    assert rec.fingerprint == "provisioned_capacity:openai:gpt-4o" and rec.model == "gpt-4o" and rec.team == team
    assert rec.confidence == confidence
    assert rec.evidence["hours"] == 48 and rec.evidence["cv"] == pytest.approx(cv)
    assert rec.evidence["mean_hourly_tokens"] == 1_000_000 and rec.evidence["p10_hourly_tokens"] == low
    assert rec.evidence["covered_share"] == share and rec.evidence["window_spend_usd"] == "120.000000"
    assert rec.evidence_value == window_saving and rec.monthly_savings_usd == monthly


@pytest.mark.django_db
def test_no_provisioned_capacity_for_bursty_or_small_traffic(org, catalog):
    now = on_the_hour()
    # the same 48,000,000 tokens in 4 of 48 hours: cv 3.3, p10 0
    add_hourly(org, now, 2, [12_000_000] * 4 + [0] * 44, model="gpt-4.1")
    # steady but $0.24 in 2 days
    add_hourly(org, now, 2, [2_000] * 48, model="gpt-4o-mini")
    # steady in 40 hours, nothing in 8: the empty hours count (cv 0.45, p10 0), so no baseline to commit to
    add_hourly(org, now, 2, [1_200_000] * 40 + [0] * 8, model="gpt-4o")
    assert of_kind(generate(org.pk, now=now, window_days=2), "provisioned_capacity") == []


@pytest.mark.django_db
def test_provisioned_capacity_counts_only_the_hours_with_data(org, team, catalog):
    """14 days of perfectly steady traffic in a 30-day window: the 16 days before the first call are not idle hours
    (counted as such, p10 would be 0 and nothing recommended), and the month is × 30.44 / 14 days, not × 30 / 30."""
    now = on_the_hour()
    since = now - timedelta(days=14)
    # 1,000,000 tokens an hour for 336 hours: $2.50 an hour, $840 in 14 days = $1,826.40 a month (≥ $1,000)
    add_calls(org, [since + timedelta(hours=h, minutes=m) for h in range(14 * 24) for m in (5, 35)],
              input_tokens=500_000, cost=Decimal("1.25"), model="gpt-4o")
    [rec] = of_kind(generate(org.pk, now=now, window_days=30), "provisioned_capacity")
    # cv 0, baseline 1,000,000 covers every token: $840 × 1 × 0.30 = $252, × 30.44 / 14 = $547.92 a month
    assert rec.evidence["hours"] == 336 and rec.evidence["cv"] == 0 and rec.evidence["p10_hourly_tokens"] == 1_000_000
    assert rec.evidence_value == Decimal("252") and rec.monthly_savings_usd == per_month("252", 14) == Decimal("547.92")
    assert rec.data_start == since and rec.data_end == now
