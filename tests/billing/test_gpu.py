"""GPU pool cost per hour: utilization from metric samples, shares per team by tokens, idle on its own."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from billing.gpu import compute_gpu_cost, compute_gpu_cost_range
from billing.models import GpuCostHour, GpuPool
from ingest.models import MetricSample
from ingest.records import CallFields
from ingest.services import store_calls
from observatory.models import Organization
from observatory.services import create_api_key

HOUR = datetime(2026, 11, 20, 14, tzinfo=UTC)


@pytest.fixture
def pool(org):
    return GpuPool.objects.create(organization=org, name="a100-pool", gpu_model="A100", gpu_count=4,
                                  hourly_usd_per_gpu=Decimal("2.00"), served_models=["llama-3.1-70b"])


@pytest.fixture
def api_key(org):
    return create_api_key(org, "gpu").api_key


def _samples(org, pool_name: str, percent_by_gpu: dict[str, list[float]], name="DCGM_FI_DEV_GPU_UTIL",
             label="observatory.gpu_pool", hour=HOUR) -> None:
    rows = []
    for gpu, values in percent_by_gpu.items():
        for minute, value in enumerate(values):
            rows.append(MetricSample(organization=org, name=name, series=f"{pool_name}-{gpu}", value=value,
                                     time=hour + timedelta(minutes=10 * minute),
                                     attributes={label: pool_name, "gpu": gpu, "service.name": "dcgm-exporter"}))
    MetricSample.objects.bulk_create(rows)


def _calls(api_key, *calls: tuple[str, int, float], model="llama-3.1-70b", hour=HOUR) -> None:
    """Store (team name, tokens, seconds) calls of a self-hosted model in `hour`."""
    fields = [
        CallFields(trace_id=f"{i:032x}", span_id=f"{i:016x}", parent_span_id=None, start_time=hour + timedelta(minutes=i),
                   duration_ms=seconds * 1000, provider="vllm", request_model=model, response_model=model,
                   input_tokens=tokens * 3 // 4, output_tokens=tokens - tokens * 3 // 4, team=team)
        for i, (team, tokens, seconds) in enumerate(calls, start=1)
    ]
    store_calls(api_key, fields)


def _costs(pool) -> dict[str, tuple[Decimal, float]]:
    """who → (cost, GPU-seconds) for the pool's rows in HOUR."""
    rows = GpuCostHour.objects.filter(pool=pool, hour=HOUR).select_related("team")
    return {
        ("idle" if row.is_idle else row.team.slug if row.team else "unattributed"): (row.cost_usd, row.gpu_seconds)
        for row in rows
    }


FOUR_GPUS_HALF_BUSY = {"0": [70.0, 80.0, 75.0, 75.0], "1": [75.0, 75.0], "2": [20.0, 30.0, 25.0], "3": [25.0, 25.0]}


def test_it_splits_used_cost_by_tokens_and_shows_idle(org, pool, api_key):
    _samples(org, "a100-pool", FOUR_GPUS_HALF_BUSY)
    _calls(api_key, ("search", 2000, 30.0), ("search", 1000, 30.0), ("ads", 1000, 30.0))

    rows = compute_gpu_cost(org.id, HOUR + timedelta(minutes=42))

    assert _costs(pool) == {
        "idle": (Decimal("4.00"), 7200.0),
        "search": (Decimal("3.00"), 5400.0),
        "ads": (Decimal("1.00"), 1800.0),
    }
    assert {row.basis for row in rows} == {"utilization"}
    assert sum(row.cost_usd for row in rows) == Decimal("8.00")
    tokens = dict(GpuCostHour.objects.filter(pool=pool, is_idle=False).values_list("team__slug", "tokens"))
    assert tokens == {"search": 3000, "ads": 1000}


def test_it_reads_fractions_and_other_pool_labels(org, pool, api_key):
    _samples(org, "a100-pool", {"0": [0.5, 0.5], "1": [1.0, 1.0]}, name="gpu.utilization", label="gpu_pool")
    _calls(api_key, ("search", 100, 1.0))

    compute_gpu_cost(org.id, HOUR)

    assert _costs(pool) == {"idle": (Decimal("5.00"), 9000.0), "search": (Decimal("3.00"), 5400.0)}


def test_without_metrics_it_uses_call_durations(org, pool, api_key):
    _calls(api_key, ("search", 3000, 1200.0), ("ads", 1000, 2400.0))

    rows = compute_gpu_cost(org.id, HOUR)

    # 3,600 of 14,400 GPU-seconds busy: $2.00 used, split 3:1 by tokens served
    assert _costs(pool) == {
        "idle": (Decimal("6.00"), 10800.0),
        "search": (Decimal("1.50"), 2700.0),
        "ads": (Decimal("0.50"), 900.0),
    }
    assert {row.basis for row in rows} == {"tokens"}
    assert sum(row.cost_usd for row in rows) == Decimal("8.00")


def test_calls_without_a_team_are_unattributed_not_idle(org, pool, api_key):
    _samples(org, "a100-pool", {"0": [100.0], "1": [100.0], "2": [0.0], "3": [0.0]})
    _calls(api_key, ("", 500, 2.0), ("search", 500, 2.0))

    compute_gpu_cost(org.id, HOUR)

    assert _costs(pool) == {
        "idle": (Decimal("4.00"), 7200.0),
        "search": (Decimal("2.00"), 3600.0),
        "unattributed": (Decimal("2.00"), 3600.0),
    }


def test_an_unused_pool_is_all_idle(org, pool):
    compute_gpu_cost(org.id, HOUR)

    assert _costs(pool) == {"idle": (Decimal("8.00"), 14400.0)}


def test_busy_gpus_without_calls_are_charged_to_the_owner_team(org, pool, team):
    pool.owner_team = team
    pool.save()
    _samples(org, "a100-pool", {"0": [100.0], "1": [100.0], "2": [100.0], "3": [100.0]})

    compute_gpu_cost(org.id, HOUR)

    assert _costs(pool) == {"search": (Decimal("8.00"), 14400.0)}


def test_shares_add_up_to_the_pool_cost_exactly(org, api_key):
    pool = GpuPool.objects.create(organization=org, name="l4", gpu_count=1, hourly_usd_per_gpu=Decimal("1.00"),
                                  served_models=["llama-3.1-8b"])
    _samples(org, "l4", {"0": [100.0]})
    _calls(api_key, ("search", 100, 1.0), ("ads", 100, 1.0), ("", 100, 1.0), model="llama-3.1-8b")

    compute_gpu_cost(org.id, HOUR)

    costs = sorted(cost for cost, _ in _costs(pool).values())
    assert costs == [Decimal("0.3333333333"), Decimal("0.3333333333"), Decimal("0.3333333334")]
    assert sum(costs) == Decimal("1.00")


def test_recomputing_replaces_the_rows(org, pool, api_key):
    _samples(org, "a100-pool", FOUR_GPUS_HALF_BUSY)
    _calls(api_key, ("search", 3000, 1.0), ("ads", 1000, 1.0))

    compute_gpu_cost(org.id, HOUR)
    first = _costs(pool)
    compute_gpu_cost(org.id, HOUR)

    assert _costs(pool) == first
    assert GpuCostHour.objects.filter(pool=pool).count() == 3


def test_it_ignores_samples_of_other_pools_and_organizations(org, pool, api_key):
    other = Organization.objects.create(name="Other", slug="other")
    GpuPool.objects.create(organization=other, name="a100-pool", gpu_count=4, hourly_usd_per_gpu=Decimal("2.00"))
    _samples(other, "a100-pool", {"0": [100.0], "1": [100.0], "2": [100.0], "3": [100.0]})
    _samples(org, "h100-pool", {"0": [100.0], "1": [100.0]}, label="pool")
    _samples(org, "a100-pool", {"0": [100.0]}, hour=HOUR - timedelta(hours=1))
    _calls(api_key, ("search", 1000, 1.0), model="some-api-model")

    compute_gpu_cost(org.id, HOUR)

    assert _costs(pool) == {"idle": (Decimal("8.00"), 14400.0)}


def test_two_exporters_on_the_same_gpus_are_not_counted_twice(org, pool, api_key):
    _samples(org, "a100-pool", {"0": [50.0], "1": [50.0], "2": [50.0], "3": [50.0]})
    _samples(org, "a100-pool", {"0": [0.5], "1": [0.5], "2": [0.5], "3": [0.5]}, name="nvidia_gpu_utilization")
    _calls(api_key, ("search", 1000, 1.0))

    compute_gpu_cost(org.id, HOUR)

    assert _costs(pool) == {"idle": (Decimal("4.00"), 7200.0), "search": (Decimal("4.00"), 7200.0)}


def test_it_computes_a_range_of_hours(org, pool):
    written = compute_gpu_cost_range(org.id, HOUR + timedelta(minutes=30), HOUR + timedelta(hours=3))

    assert written == 3
    assert list(GpuCostHour.objects.values_list("hour", flat=True).order_by("hour")) == [
        HOUR, HOUR + timedelta(hours=1), HOUR + timedelta(hours=2)
    ]


def test_the_command_computes_each_organizations_hours(org, pool):
    out = StringIO()
    call_command("compute_gpu_cost", "--since", "2026-11-20T14:00", "--until", "2026-11-20T16:00", stdout=out)

    assert GpuCostHour.objects.filter(pool=pool, is_idle=True).count() == 2
    assert out.getvalue().splitlines() == ["GPU cost for the hours 2026-11-20 14:00 to 2026-11-20 16:00 UTC", "acme: 2 rows"]


def test_the_command_rejects_a_bad_date(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--since"):
        call_command("compute_gpu_cost", "--since", "yesterday")


def test_the_command_defaults_to_the_last_complete_hour(org, pool):
    from django.utils import timezone

    call_command("compute_gpu_cost", stdout=StringIO())

    last_hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    assert list(GpuCostHour.objects.values_list("hour", "cost_usd")) == [(last_hour, Decimal("8.00"))]
