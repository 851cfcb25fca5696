"""Self-host crossover: the pure calculation, checked against hand calculations, and the detector on API traffic.

Prices from the bundled catalog: gpt-4.1 $2 input / $8 output per million tokens."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import billing.recommendations
from billing.models import GpuPool
from billing.pricing.at_ingest import catalog_cache
from billing.recommendations import DETECTORS, generate
from billing.recommendations.selfhost import (
    DEFAULT_ASSUMPTIONS,
    MAX_BREAK_EVEN_MONTHS,
    SelfHostAssumptions,
    crossover,
    self_host,
)
from billing.services import load_default_catalog
from ingest.models import LLMCall

NOW = datetime(2026, 11, 20, tzinfo=UTC)
_ids = itertools.count(1)

# The seed example: 10M queries a month × (1,000 input + 300 output tokens) on gpt-4.1 ($2 / $8 per million)
SEED_INPUT = 10_000_000 * 1_000  # 10,000,000,000 tokens
SEED_OUTPUT = 10_000_000 * 300  # 3,000,000,000 tokens
SEED_API = Decimal(SEED_INPUT) * 2 / 10**6 + Decimal(SEED_OUTPUT) * 8 / 10**6  # $20,000 + $24,000 = $44,000


@pytest.fixture
def catalog(db):
    load_default_catalog()
    catalog_cache.refresh(force=True)


@pytest.fixture
def only_self_host(monkeypatch):
    """generate() runs this module's detector alone, so other detectors' findings on the same traffic stay out."""
    monkeypatch.setattr(billing.recommendations, "DETECTORS", (self_host,))


def test_the_detector_is_registered():
    assert self_host in DETECTORS


def test_the_seed_example_breaks_even_in_month_13():
    # API: 10,000M input × $2/M + 3,000M output × $8/M = $20,000 + $24,000 = $44,000 a month
    # GPU-seconds: 3,000,000,000 ÷ 250 tok/s = 12,000,000 decode + 10,000,000,000 ÷ 2,500 tok/s = 4,000,000 prefill
    #              = 16,000,000 GPU-seconds a month
    # one GPU at 60%: 730 h × 3,600 s × 0.6 = 1,576,800 s; 16,000,000 ÷ 1,576,800 = 10.147 → 11 GPUs (≥ 2)
    # self-host: 11 × $2.50 × 730 h = $20,075 + $12,000 operations = $32,075 a month
    # saving: $44,000 − $32,075 = $11,925 a month
    # break-even: $150,000 ÷ $11,925 = 12.58 → month 13 (12 × $11,925 = $143,100 < $150,000 ≤ 13 × = $155,025)
    assert SEED_API == Decimal("44000")
    result = crossover(SEED_API, SEED_INPUT, SEED_OUTPUT)

    assert result.assumptions == DEFAULT_ASSUMPTIONS
    assert result.gpu_seconds == Decimal("16000000")
    assert result.gpus == 11
    assert result.gpu_monthly_usd == Decimal("20075")
    assert result.self_host_monthly_usd == Decimal("32075")
    assert result.monthly_saving_usd == Decimal("11925")
    assert result.setup_usd == Decimal("150000")
    assert result.break_even_month == 13
    assert 12 <= result.break_even_month <= 18
    # the chart: 36 months, self-hosting behind in month 12 and ahead from month 13
    assert len(result.series) == 36 and [point.month for point in result.series] == list(range(1, 37))
    month_12, month_13 = result.series[11], result.series[12]
    assert (month_12.api_cumulative_usd, month_12.self_host_cumulative_usd) == (Decimal("528000"), Decimal("534900"))
    assert (month_13.api_cumulative_usd, month_13.self_host_cumulative_usd) == (Decimal("572000"), Decimal("566975"))


def test_custom_assumptions_by_hand():
    assumptions = SelfHostAssumptions(gpu_hourly_usd=Decimal("4"), decode_tokens_per_second=Decimal("500"),
                                      prefill_tokens_per_second=Decimal("5000"), target_utilization=Decimal("0.5"),
                                      min_gpus=1, setup_usd=Decimal("50000"), monthly_ops_usd=Decimal("5000"))
    # GPU-seconds: 500,000,000 ÷ 500 = 1,000,000 + 2,000,000,000 ÷ 5,000 = 400,000 = 1,400,000
    # one GPU at 50%: 2,628,000 × 0.5 = 1,314,000 s; 1,400,000 ÷ 1,314,000 = 1.065 → 2 GPUs
    # self-host: 2 × $4 × 730 = $5,840 + $5,000 = $10,840; saving $30,000 − $10,840 = $19,160
    # break-even: $50,000 ÷ $19,160 = 2.61 → month 3 (month 2: $60,000 API vs $71,680; month 3: $90,000 vs $82,520)
    result = crossover(Decimal("30000"), 2_000_000_000, 500_000_000, assumptions, horizon_months=6)

    assert result.gpus == 2
    assert result.self_host_monthly_usd == Decimal("10840")
    assert result.monthly_saving_usd == Decimal("19160")
    assert result.break_even_month == 3
    assert [(p.api_cumulative_usd, p.self_host_cumulative_usd) for p in result.series[1:3]] == [
        (Decimal("60000"), Decimal("71680")), (Decimal("90000"), Decimal("82520"))]
    assert len(result.series) == 6


def test_a_whole_number_of_gpus_is_not_rounded_up_and_the_minimum_applies():
    # exactly two GPUs of work: 2 × 1,576,800 s × 250 tok/s = 788,400,000 output tokens
    one = SelfHostAssumptions(min_gpus=1)
    assert crossover(100_000, 0, 788_400_000, one).gpus == 2
    assert crossover(100_000, 0, 788_400_001, one).gpus == 3
    assert crossover(100_000, 0, 0, one).gpus == 1
    assert crossover(100_000, 0, 0).gpus == 2  # default minimum: two, for redundancy


def test_no_break_even_when_it_never_pays_or_pays_too_late():
    assert crossover(Decimal("30000"), SEED_INPUT, SEED_OUTPUT).break_even_month is None  # costs more than the API
    assert crossover(SEED_API, SEED_INPUT, SEED_OUTPUT, horizon_months=12).break_even_month is None  # month 13 > 12
    free = SelfHostAssumptions(setup_usd=Decimal(0))
    assert crossover(SEED_API, SEED_INPUT, SEED_OUTPUT, free).break_even_month == 1


@pytest.mark.parametrize(("call", "message"), [
    (lambda: crossover(Decimal("-1"), 0, 0), "api_monthly_usd cannot be negative"),
    (lambda: crossover(0, -5, 0), "monthly_input_tokens cannot be negative"),
    (lambda: crossover(0, 0, "lots"), "monthly_output_tokens must be a number"),
    (lambda: crossover(0, 0, 0, horizon_months=0), "horizon_months must be at least 1"),
    (lambda: crossover(0, 0, 0, horizon_months=1.5), "horizon_months must be a whole number"),
    (lambda: crossover(0, 0, 0, assumptions={"gpu_hourly_usd": 2}), "assumptions must be a SelfHostAssumptions"),
    (lambda: SelfHostAssumptions(gpu_hourly_usd=Decimal(0)), "gpu_hourly_usd must be greater than zero"),
    (lambda: SelfHostAssumptions(decode_tokens_per_second=-250), "decode_tokens_per_second must be greater than zero"),
    (lambda: SelfHostAssumptions(target_utilization=Decimal("1.5")), "target_utilization is a share"),
    (lambda: SelfHostAssumptions(target_utilization=0), "target_utilization must be greater than zero"),
    (lambda: SelfHostAssumptions(setup_usd=Decimal("-1")), "setup_usd cannot be negative"),
    (lambda: SelfHostAssumptions(monthly_ops_usd="NaN"), "monthly_ops_usd must be a finite number"),
    (lambda: SelfHostAssumptions(min_gpus=0), "min_gpus must be at least 1"),
])
def test_invalid_inputs_raise_a_readable_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_assumptions_accept_numbers_and_strings_as_decimals():
    assumptions = SelfHostAssumptions(gpu_hourly_usd="3.10", setup_usd=100_000)
    assert assumptions.gpu_hourly_usd == Decimal("3.10") and isinstance(assumptions.setup_usd, Decimal)
    assert assumptions.as_evidence()["gpu_hourly_usd"] == "3.10"


# The detector ------------------------------------------------------------------------------------------------------

def add_calls(org, count, *, at=NOW - timedelta(days=30), model="gpt-4.1", input_tokens=1_000_000_000,
              output_tokens=300_000_000, team=None):
    """`count` big gpt-4.1 calls a minute apart from `at` (by default 30 days before NOW: 30 days with data), each
    costing what the catalog says: 1e9 × $2/M + 3e8 × $8/M = $4,400."""
    cost = Decimal(input_tokens) * 2 / 10**6 + Decimal(output_tokens) * 8 / 10**6
    rows = []
    for i in range(count):
        n = next(_ids)
        rows.append(LLMCall(
            organization=org, trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time=at + timedelta(minutes=i),
            provider="openai", operation="chat", request_model=model, response_model=model, team=team,
            input_tokens=input_tokens, output_tokens=output_tokens, request_hash=f"req-{n}", cost_usd=cost,
            cost_status="priced",
        ))
    LLMCall.objects.bulk_create(rows)
    return cost


def self_host_recs(org, **kwargs):
    recs = generate(org.pk, now=NOW, **kwargs)
    assert {rec.kind for rec in recs} <= {"self_host"}
    return recs


@pytest.mark.usefixtures("only_self_host")
@pytest.mark.django_db
def test_the_seed_volume_over_30_days_is_recommended_with_the_exact_saving(org, team, catalog):
    # 10 calls × (1e9 input + 3e8 output) = the seed example's volume, $44,000, in 30 days with data; a month is
    # 30.44 days, so × 30.44 / 30: $44,645.33, 10,146,666,667 input and 3,044,000,000 output tokens a month
    assert add_calls(org, 10, team=team) == Decimal("4400")
    scale = Decimal("30.44") / 30

    [rec] = self_host_recs(org, window_days=30)

    # GPU-seconds: 3,044,000,000 ÷ 250 + 10,146,666,667 ÷ 2,500 = 12,176,000 + 4,058,667 = 16,234,667
    # ÷ 1,576,800 = 10.3 → 11 GPUs: 11 × $2.50 × 730 h = $20,075 + $12,000 = $32,075 a month (the seed's)
    # saving $44,645.33 − $32,075 = $12,570.33 a month; break-even ceil($150,000 ÷ $12,570.33 = 11.93) = month 12
    api = Decimal(44_000) * scale
    assert rec.model == "gpt-4.1" and rec.team == team and rec.confidence == "low"
    assert rec.fingerprint == "self_host:openai:gpt-4.1"
    assert rec.monthly_savings_usd == (api - 32_075).quantize(Decimal("0.000001")) == Decimal("12570.333333")
    # the window figure is the saving over the 30 days with data, which scales back to the month above
    assert rec.evidence_value == ((api - 32_075) * 30 / Decimal("30.44")).quantize(Decimal("1E-10"))
    assert "month 12" in rec.title
    evidence = rec.evidence
    assert evidence["api_monthly_usd"] == "44645.333333" and evidence["gpus"] == 11
    assert evidence["self_host_monthly_usd"] == "32075.000000" and evidence["setup_usd"] == "150000.000000"
    assert evidence["break_even_month"] == 12 and evidence["monthly_input_tokens"] == "10146666667"
    assert evidence["monthly_output_tokens"] == "3044000000" and evidence["days_with_data"] == "30"
    assert evidence["assumptions"]["gpu_hourly_usd"] == "2.50" and evidence["assumptions"]["min_gpus"] == "2"
    assert evidence["list_price_per_million"] == {"input": "2", "output": "8"}
    assert "11 GPUs × $2.50 × 730 h" in rec.formula and "month 12" in rec.formula
    assert "$44,000.00 recorded × 30.44 / 30 days with data" in rec.formula


@pytest.mark.usefixtures("only_self_host")
@pytest.mark.django_db
def test_fewer_days_with_data_scale_spend_and_tokens_to_a_month(org, catalog):
    add_calls(org, 10, at=NOW - timedelta(days=10))
    # 10 days with data in a 30-day window: × 30.44 / 10 = × 3.044 → $133,936, 30.44e9 input, 9.132e9 output a
    # month (× 30 / 30 used to say $44,000). GPU-seconds: 9.132e9 ÷ 250 + 30.44e9 ÷ 2,500 = 36,528,000 + 12,176,000
    # = 48,704,000 ÷ 1,576,800 = 30.9 → 31 GPUs; self-host 31 × $2.50 × 730 = $56,575 + $12,000 = $68,575;
    # saving $133,936 − $68,575 = $65,361; break-even ceil($150,000 ÷ $65,361 = 2.29) = month 3
    [rec] = self_host_recs(org, window_days=30)

    assert rec.evidence["api_monthly_usd"] == "133936.000000"
    assert rec.monthly_savings_usd == Decimal("65361")
    assert rec.evidence["gpus"] == 31 and rec.evidence["break_even_month"] == 3
    # the GPUs are priced by the hour: a shorter window holding the same 10 days gives the same month
    [again] = self_host_recs(org, window_days=12)
    assert again.monthly_savings_usd == Decimal("65361")


@pytest.mark.usefixtures("only_self_host")
@pytest.mark.django_db
def test_small_spend_or_no_payback_is_not_recommended(org, catalog):
    add_calls(org, 4)  # $17,600 in 30 days, × 30.44 / 30 = $17,858.13 a month: below $20,000
    assert self_host_recs(org) == []
    # 5 calls: $22,322.67 a month, but 5.073e9 in / 1.522e9 out need ceil((6,088,000 + 2,029,333) ÷ 1,576,800 =
    # 5.15) = 6 GPUs: 6 × $1,825 + $12,000 = $22,950 > $22,322.67: self-hosting never pays
    add_calls(org, 1)
    assert self_host_recs(org) == []
    assert MAX_BREAK_EVEN_MONTHS == 18


@pytest.mark.usefixtures("only_self_host")
@pytest.mark.django_db
def test_models_already_served_by_a_gpu_pool_are_left_out(org, catalog):
    add_calls(org, 10)
    GpuPool.objects.create(organization=org, name="h100", gpu_count=8, hourly_usd_per_gpu=Decimal("2.50"),
                           served_models=["gpt-4.1"])
    assert self_host_recs(org) == []
