"""GPU pool efficiency: consolidation, quantization and continuous batching, each on pool-hours whose answer is
known by hand. Every pool here has 24 covered hours (the last day of the window, unless said otherwise). A pool
costs every hour, so the saving is freed GPUs × hourly rate × its hours (24 h in the window), scaled to a month by
the pool's days (× 30.44 / 1): freed × rate × 730.56 h a month, whatever the days of calls."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import billing.recommendations
from billing.models import GpuCostHour, GpuPool
from billing.recommendations import DETECTORS, generate
from billing.recommendations.gpu_efficiency import gpu_efficiency
from ingest.models import LLMCall

NOW = datetime(2026, 11, 20, tzinfo=UTC)
FIRST_HOUR = NOW - timedelta(hours=24)
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def only_gpu_efficiency(monkeypatch):
    """generate() runs this module's detector alone, so other detectors' findings on the same data stay out."""
    monkeypatch.setattr(billing.recommendations, "DETECTORS", (gpu_efficiency,))


def test_the_detector_is_registered():
    assert gpu_efficiency in DETECTORS


def make_pool(org, name, gpus, rate, models=(), **facts):
    return GpuPool.objects.create(organization=org, name=name, gpu_count=gpus, hourly_usd_per_gpu=Decimal(rate),
                                  served_models=list(models), **facts)


def pool_hours(pool, busy_seconds: list[float], team=None, first_hour=FIRST_HOUR):
    """One busy row and one idle row per hour from `first_hour`, splitting the hour's cost by GPU-seconds."""
    capacity = pool.gpu_count * 3600
    hourly = pool.gpu_count * pool.hourly_usd_per_gpu
    rows = []
    for i, busy in enumerate(busy_seconds):
        hour = first_hour + timedelta(hours=i)
        busy_cost = (hourly * Decimal(str(busy)) / capacity).quantize(Decimal("1E-10"))
        common = {"organization_id": pool.organization_id, "pool": pool, "hour": hour, "basis": "utilization"}
        rows.append(GpuCostHour(team=team, gpu_seconds=busy, cost_usd=busy_cost, **common))
        rows.append(GpuCostHour(is_idle=True, gpu_seconds=capacity - busy, cost_usd=hourly - busy_cost, **common))
    GpuCostHour.objects.bulk_create(rows)


def served_calls(org, model, output_tokens, hours=24):
    """One self-hosted call in each covered hour."""
    rows = []
    for i in range(hours):
        n = next(_ids)
        rows.append(LLMCall(
            organization=org, trace_id=f"{n:032x}", span_id=f"{n:016x}",
            start_time=FIRST_HOUR + timedelta(hours=i, minutes=10), provider="vllm", operation="chat",
            request_model=model, response_model=model, input_tokens=1000, output_tokens=output_tokens,
            cost_status="unknown_model",
        ))
    LLMCall.objects.bulk_create(rows)


def gpu_recs(org, window_days=30):
    return generate(org.pk, now=NOW, window_days=window_days)


@pytest.mark.django_db
def test_an_idle_pool_is_consolidated_to_its_p95_load(org, team):
    pool = make_pool(org, "l40s-8b", 8, "2.00", ["llama-3.1-8b"], owner_team=team)
    # 22 hours with 2 GPUs busy (7,200 s), 2 hours with 3 (10,800 s); the 95th-percentile hour (23rd of 24) has 3
    pool_hours(pool, [7200.0] * 22 + [10800.0] * 2)
    # 24 × 1,000,000 output tokens ÷ 180,000 busy GPU-seconds = 133.3 tokens/s: batching is fine (≥ 62.5)
    served_calls(org, "llama-3.1-8b", 1_000_000)

    [rec] = gpu_recs(org)

    # busy share 180,000 ÷ (24 × 28,800 = 691,200) = 26.0% < 50%; needed ceil(3 ÷ 0.8 = 3.75) = 4; freed 8 − 4 = 4
    # saving 4 × $2.00 × 24 pool hours = $192 in the window, × 30.44 / 1 day = 4 × $2.00 × 730.56 h = $5,844.48 a month
    assert rec.kind == "gpu_consolidation" and rec.confidence == "medium"
    assert rec.fingerprint == f"gpu_consolidation:pool:{pool.pk}"
    assert rec.team == team and rec.model == "llama-3.1-8b"
    assert rec.evidence_value == Decimal("192") and rec.monthly_savings_usd == Decimal("5844.48")
    assert (rec.data_start, rec.data_end) == (FIRST_HOUR, NOW)
    evidence = rec.evidence
    assert evidence["pool"] == "l40s-8b" and evidence["gpus_freed"] == 4 and evidence["gpus_needed"] == 4
    assert evidence["busy_share"] == "0.2604" and evidence["p95_busy_gpus"] == "3.000"
    # idle: 22 hours × 6/8 × $16 + 2 hours × 5/8 × $16 = $264 + $20 = $284
    assert evidence["idle_cost_usd"] == "284.000000"
    assert evidence["alternatives"] == {}
    assert "(8 − 4) GPUs × $2/h × 24 pool hours) × 30.44 / 1 day of pool hours (Nov 19)" in rec.formula


@pytest.mark.django_db
def test_a_memory_bound_16_bit_pool_is_quantized_to_int8(org):
    pool = make_pool(org, "l40s-70b", 4, "1.50", ["llama-3.1-70b"], gpu_memory_gb=48,
                     model_params_billion=Decimal("70"), weight_precision="bf16")
    pool_hours(pool, [5760.0] * 24)  # 1.6 GPUs busy every hour: 40%
    served_calls(org, "llama-3.1-70b", 500_000)  # 12,000,000 ÷ 138,240 busy GPU-seconds = 86.8 tokens/s: fine

    [rec] = gpu_recs(org)

    # bf16: 70 × 2 × 1.2 = 168 GB ÷ 48 = 3.5 → 4 GPUs = the pool; busy 40% < 60%
    # int8: 70 × 1 × 1.2 = 84 GB ÷ 48 = 1.75 → 2; compute floor ceil(1.6 ÷ 0.8) = 2 → 2 GPUs; freed 2
    # saving 2 × $1.50 × 730.56 h = $2,191.68 a month. (Consolidation: max(2, 4 for the bf16 weights) = 4: nothing
    # freed.)
    assert rec.kind == "gpu_quantization" and rec.confidence == "low"
    assert rec.model == "llama-3.1-70b" and "frees 2 of 4 GPUs" in rec.title and "INT8" in rec.title
    assert rec.monthly_savings_usd == Decimal("2191.68")
    evidence = rec.evidence
    assert evidence["pool"] == "l40s-70b" and evidence["suggested_precision"] == "int8"
    assert evidence["gpus_by_precision"] == {"bf16": 4, "int8": 2, "int4": 2}
    assert evidence["weights_gb"] == {"bf16": "168", "int8": "84", "int4": "42"}
    assert evidence["gpus_freed"] == 2 and evidence["alternatives"] == {}
    assert "eval set" in evidence["quality_note"] and "eval set" in rec.formula
    assert "(4 − 2) GPUs × $1.5/h × 24 pool hours" in rec.formula and "84 GB ÷ 48 GB" in rec.formula


@pytest.mark.django_db
def test_no_quantization_when_memory_does_not_set_the_pool_size(org):
    # same load, but 80 GB GPUs: 168 GB ÷ 80 = 2.1 → 3 GPUs < 4: compute or redundancy sets the size, not memory
    pool = make_pool(org, "h100-70b", 4, "2.50", gpu_memory_gb=80, model_params_billion=Decimal("70"),
                     weight_precision="bf16")
    pool_hours(pool, [10080.0] * 24)  # 2.8 GPUs busy: 70%, not idle enough to consolidate
    assert gpu_recs(org) == []


@pytest.mark.django_db
def test_few_tokens_per_busy_gpu_calls_for_continuous_batching(org):
    pool = make_pool(org, "a10-8b", 4, "2.50", ["llama-3.1-8b"])
    pool_hours(pool, [10800.0] * 24)  # 3 of 4 GPUs busy: 75%, no consolidation
    served_calls(org, "llama-3.1-8b", 135_000)
    served_calls(org, "some-api-model", 9_000_000)  # not served by the pool: not counted

    [rec] = gpu_recs(org)

    # 24 × 135,000 = 3,240,000 output tokens ÷ (24 × 10,800 = 259,200) busy GPU-seconds = 12.5 tokens/s < 25% of 250
    # needed at 250 tokens/s: ceil(3,240,000 ÷ (250 × 86,400 s × 0.8 = 17,280,000) = 0.19) = 1; freed 4 − 1 = 3
    # saving 3 × $2.50 × 730.56 h = $5,479.20 a month
    assert rec.kind == "gpu_batching" and rec.confidence == "low"
    assert rec.model == "llama-3.1-8b" and rec.evidence["pool"] == "a10-8b"
    assert rec.monthly_savings_usd == Decimal("5479.2")
    assert rec.evidence["output_tokens"] == 3_240_000 and rec.evidence["tokens_per_busy_gpu_second"] == "12.500"
    assert rec.evidence["gpus_freed"] == 3
    # a 10-day window holds the same 24 pool hours: $2.50 × 3 × 24 h = $180, the same $5,479.20 a month
    [rec] = gpu_recs(org, window_days=10)
    assert rec.monthly_savings_usd == Decimal("5479.2") and rec.evidence_value == Decimal("180")


@pytest.mark.django_db
def test_overlapping_kinds_give_one_recommendation_the_one_freeing_most(org):
    pool = make_pool(org, "a100-mixed", 8, "2.00", ["llama-3.1-8b"])
    pool_hours(pool, [7200.0] * 24)  # 2 of 8 GPUs busy: 25%
    served_calls(org, "llama-3.1-8b", 100_000)

    [rec] = gpu_recs(org)

    # consolidation: ceil(2 ÷ 0.8) = 3 GPUs, frees 5
    # batching: 2,400,000 ÷ 172,800 = 13.9 tokens/s < 62.5; ceil(2,400,000 ÷ 17,280,000) = 1 GPU, frees 7: wins
    # saving 7 × $2.00 × 730.56 h = $10,227.84 a month
    assert rec.kind == "gpu_batching"
    assert rec.monthly_savings_usd == Decimal("10227.84")
    assert rec.evidence["alternatives"] == {"gpu_consolidation": 5}


@pytest.mark.django_db
def test_a_busy_well_sized_pool_and_a_pool_without_a_days_data_get_nothing(org):
    busy = make_pool(org, "h100-70b", 4, "2.00", ["llama-3.1-70b"], gpu_memory_gb=80,
                     model_params_billion=Decimal("70"), weight_precision="bf16")
    pool_hours(busy, [12240.0] * 24)  # 3.4 of 4 GPUs busy: 85%
    served_calls(busy.organization, "llama-3.1-70b", 10_000_000)  # 240e6 ÷ 293,760 = 817 tokens/s
    idle = make_pool(org, "new-pool", 8, "2.00")
    pool_hours(idle, [0.0] * 23)  # all idle, but only 23 hours of rows so far

    assert gpu_recs(org) == []


@pytest.mark.django_db
def test_a_pool_is_scaled_by_its_own_hours_not_by_the_days_of_calls(org):
    """10 days of pool rows, calls on the last day only: the organization has 1 day with data, the pool 10. Scaled
    by the calls' day the pool's 240 hours would read as 10 months of GPUs; by its own hours it is one month."""
    first = NOW - timedelta(days=10)
    pool = make_pool(org, "l40s-8b", 8, "2.00", ["llama-3.1-8b"])
    # 2 GPUs busy in 227 hours, 3 in 13: the 95th-percentile hour (228th of 240) has 3 → keep ceil(3 ÷ 0.8) = 4
    pool_hours(pool, [7200.0] * 227 + [10800.0] * 13, first_hour=first)
    served_calls(org, "llama-3.1-8b", 10_000_000)  # the last 24 hours only: 24 × 1e7 ÷ busy seconds ≫ 62.5 tok/s

    [rec] = gpu_recs(org)

    # 4 × $2.00 × 240 pool hours = $1,920 in the window; × 30.44 / 10 pool days = $5,844.48 a month
    # (× 30.44 / 1 day of calls would have said $58,444.80)
    assert rec.kind == "gpu_consolidation" and rec.evidence["gpus_freed"] == 4
    assert rec.evidence_value == Decimal("1920") and rec.monthly_savings_usd == Decimal("5844.48")
    assert (rec.data_start, rec.data_end) == (first, NOW) and rec.evidence["pool_hours"] == "240"
    assert rec.formula.endswith("× 30.44 / 10 days of pool hours (Nov 10 – Nov 19)")
