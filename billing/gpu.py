"""GPU cost of self-hosted models: each pool-hour's cost split over the teams it served, idle time on its own.

Utilization comes from GPU metric samples (DCGM / NVML exporters); without them, from the durations of the calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import transaction
from django.db.models import Avg, Count, F, Max, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce

from billing.models import GpuCostHour, GpuPool
from ingest.models import LLMCall, MetricSample

HOUR = timedelta(hours=1)
SECONDS_PER_HOUR = 3600
MONEY_QUANTUM = Decimal("1E-10")
DCGM_UTILIZATION = "DCGM_FI_DEV_GPU_UTIL"  # always a percentage
UTILIZATION_MARKERS = ("gpu_util", "gpu.utilization")  # also matches DCGM_FI_DEV_GPU_UTIL, nvidia_gpu_utilization


@dataclass(frozen=True, slots=True)
class DeviceUtilization:
    """One device's (metric series') utilization over an hour."""

    pool: str
    metric: str
    series: str
    mean: float
    peak: float

    @property
    def fraction(self) -> float:
        """0–1; a series that never exceeds 1.0 is already a fraction (NVML-style), others are percentages."""
        scale = 100.0 if self.metric == DCGM_UTILIZATION or self.peak > 1.0 else 1.0
        return min(max(self.mean / scale, 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class TeamUsage:
    team_id: int | None
    tokens: int
    calls: int
    seconds: float


def hour_start(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("GPU cost hours are UTC-aware datetimes")
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def used_seconds_from_utilization(devices: list[DeviceUtilization]) -> float:
    """GPU-seconds in use: one metric per pool (DCGM first, else the one covering most devices), so two
    exporters on the same GPUs are not counted twice."""
    by_metric: dict[str, list[DeviceUtilization]] = {}
    for device in devices:
        by_metric.setdefault(device.metric, []).append(device)
    chosen = min(by_metric, key=lambda name: (name != DCGM_UTILIZATION, -len(by_metric[name]), name))
    return sum(device.fraction for device in by_metric[chosen]) * SECONDS_PER_HOUR


def split_exactly(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`total` in proportion to `weights`, quantized to 1E-10, the rounding remainder on the largest share."""
    whole = sum(weights)
    shares = [(total * weight / whole).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN) for weight in weights]
    largest = max(range(len(shares)), key=lambda i: shares[i])
    shares[largest] += total - sum(shares)
    return shares


def pool_cost_rows(
    pool: GpuPool, hour: datetime, devices: list[DeviceUtilization], usage: list[TeamUsage]
) -> list[GpuCostHour]:
    """One pool-hour's rows: a share per team that used it (team None = unattributed calls), plus idle."""
    capacity = pool.gpu_count * SECONDS_PER_HOUR
    if capacity == 0:
        return []
    if devices:
        basis, used = "utilization", used_seconds_from_utilization(devices)
    else:
        basis, used = "tokens", sum(team.seconds for team in usage)
    used = Decimal(str(round(min(used, capacity), 3)))
    common = {"organization_id": pool.organization_id, "pool": pool, "hour": hour, "basis": basis}
    shares: list[tuple[GpuCostHour, Decimal]] = []  # (row, GPU-seconds)
    if used and usage:
        by_tokens = any(team.tokens for team in usage)
        weights = [Decimal(team.tokens if by_tokens else team.calls) for team in usage]
        for team, weight in zip(usage, weights, strict=True):
            seconds = used * weight / sum(weights)
            shares.append((GpuCostHour(team_id=team.team_id, tokens=team.tokens, **common), seconds))
    elif used:
        shares.append((GpuCostHour(team_id=pool.owner_team_id, **common), used))
    if used < capacity:
        shares.append((GpuCostHour(team_id=None, is_idle=True, **common), capacity - used))
    cost = pool.gpu_count * pool.hourly_usd_per_gpu
    for (row, seconds), share in zip(shares, split_exactly(cost, [seconds for _, seconds in shares]), strict=True):
        row.gpu_seconds, row.cost_usd = float(seconds), share
    return [row for row, _ in shares]


def pool_label() -> Coalesce:
    """The pool a metric point names: observatory.gpu_pool, else gpu_pool, else pool."""
    return Coalesce(KT("attributes__observatory.gpu_pool"), KT("attributes__gpu_pool"), KT("attributes__pool"))


def device_utilization(organization_id: int, hour: datetime) -> dict[str, list[DeviceUtilization]]:
    """Pool name → each device's mean utilization that hour, from the utilization gauges naming a pool."""
    names = Q()
    for marker in UTILIZATION_MARKERS:
        names |= Q(name__icontains=marker)
    points = (
        MetricSample.objects.filter(names, organization_id=organization_id, time__gte=hour, time__lt=hour + HOUR)
        .annotate(pool=pool_label())
        .filter(pool__isnull=False)
        .values("pool", "name", "series")
        .annotate(mean=Avg("value"), peak=Max("value"))
    )
    found: dict[str, list[DeviceUtilization]] = {}
    for point in points:
        device = DeviceUtilization(point["pool"], point["name"], point["series"], point["mean"], point["peak"])
        found.setdefault(device.pool, []).append(device)
    return found


def team_usage(pool: GpuPool, hour: datetime) -> list[TeamUsage]:
    """Tokens, calls and busy seconds per team of the calls the pool served that hour, biggest user first."""
    if not pool.served_models:
        return []
    served = (Q(model__in=pool.served_models) | Q(response_model__in=pool.served_models)
              | Q(request_model__in=pool.served_models))
    groups = (
        LLMCall.objects.filter(served, organization_id=pool.organization_id, start_time__gte=hour, start_time__lt=hour + HOUR)
        .values("team_id")
        .annotate(tokens=Sum(F("input_tokens") + F("output_tokens")), calls=Count("id"), duration=Sum("duration_ms"))
    )
    usage = [TeamUsage(g["team_id"], g["tokens"] or 0, g["calls"], (g["duration"] or 0) / 1000) for g in groups]
    return sorted(usage, key=lambda team: (-team.tokens, -team.calls, team.team_id is None, team.team_id or 0))


def compute_gpu_cost(organization_id: int, hour: datetime) -> list[GpuCostHour]:
    """Recompute the organization's GPU cost rows for the UTC hour containing `hour` (replacing earlier ones)."""
    hour = hour_start(hour)
    utilization = device_utilization(organization_id, hour)
    rows: list[GpuCostHour] = []
    for pool in GpuPool.objects.filter(organization_id=organization_id).order_by("name"):
        rows += pool_cost_rows(pool, hour, utilization.get(pool.name, []), team_usage(pool, hour))
    with transaction.atomic():
        GpuCostHour.objects.filter(organization_id=organization_id, hour=hour).delete()
        GpuCostHour.objects.bulk_create(rows)
    return rows


def compute_gpu_cost_range(organization_id: int, since: datetime, until: datetime) -> int:
    """Recompute every hour from the one containing `since` up to `until` (exclusive). Returns rows written."""
    written, hour = 0, hour_start(since)
    while hour < until:
        written += len(compute_gpu_cost(organization_id, hour))
        hour += HOUR
    return written
