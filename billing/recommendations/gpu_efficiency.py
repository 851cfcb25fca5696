"""Self-hosted GPU efficiency: pools that could run on fewer GPUs, read from their hourly cost rows (GpuCostHour,
written by billing.gpu from utilization gauges or call durations) and the calls of the models they serve.

Per GpuPool of the organization, over the window's whole hours that have cost rows ("covered hours"; at least
MIN_COVERED_HOURS of them). Busy share = non-idle GPU-seconds ÷ all GPU-seconds of those rows; p95 busy GPUs = the
busy GPU-seconds of the 95th-percentile hour (percentile_disc, an actual hour) ÷ 3,600. A pool is paid for every
hour it exists, so each GPU freed saves its hourly rate over every one of the pool's hours, whether or not calls
were made in them: saving = freed GPUs × hourly rate × pool hours (from the pool's first costed hour in the window
to the window's end), scaled to a month by those same hours (billing.monthly, × 30.44 / pool days), i.e. freed ×
rate × 730.56 h a month — never by the organization's days of calls.

A pool never shrinks below the GPUs its weights need ("memory floor", when the pool says its GPU memory, model size
and precision): weights GB = params (billions) × bytes per parameter × MEMORY_OVERHEAD, GPUs = ceil(weights GB ÷
GPU memory GB). MEMORY_OVERHEAD 1.2 is headroom for the KV cache, activations and the CUDA context on top of the raw
weights. Nor below the compute floor: ceil(p95 busy GPUs ÷ TARGET_UTILIZATION), at least 1.

Kinds:
- gpu_consolidation: busy share < 50% → GPUs needed = max(compute floor, memory floor); freed = gpu count − needed.
  Evidence: idle cost in the covered hours (the is_idle rows), busy share, p95 busy GPUs. Confidence medium.
- gpu_quantization: weights at 16-bit (or FP8) whose memory floor equals the pool's GPU count (memory, not compute,
  sets the size) and busy share < 60% → INT8 (1 byte per parameter; AWQ/GPTQ-class) if it frees a GPU, else INT4
  (0.5 byte): GPUs after = max(memory floor at that precision, compute floor). The compute floor ignores that
  quantized weights also decode faster, so it is conservative. Quantization changes the outputs: the formula and
  evidence say to check quality on the team's own eval set before rollout. Confidence low.
- gpu_batching: the pool's models' output tokens in the covered hours (LLMCall whose model is in served_models)
  ÷ busy GPU-seconds < 25% of EXPECTED_TPS_PER_GPU → continuous batching in the serving engine (vLLM / SGLang /
  TGI). GPUs needed = max(ceil(output tokens ÷ (EXPECTED_TPS_PER_GPU × covered seconds × TARGET_UTILIZATION)),
  memory floor, 1). EXPECTED_TPS_PER_GPU is 250 output tokens/s per GPU, the 70B-class figure of the self-host
  assumptions (billing.recommendations.selfhost): smaller models do far more, so for them the rule is conservative.
  Confidence low.

The three overlap: each frees some of the same pool's GPUs, and fixing one changes the others' figures (batching
frees busy time, consolidation then sizes on what is left). So a pool gets at most one of them, the one freeing the
most GPUs (ties: consolidation, then batching, then quantization: the least risky change first); the others are
listed in its evidence as alternatives with the GPUs they would free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from django.db import connection
from django.db.models import Exists, OuterRef, Sum
from django.db.models.functions import Coalesce, TruncHour

from billing.models import GpuCostHour, GpuPool
from billing.monthly import DataSpan
from billing.recommendations.base import Confidence, Finding, Kind, Window, usd
from billing.recommendations.selfhost import DEFAULT_ASSUMPTIONS

SECONDS_PER_HOUR = 3600
MIN_COVERED_HOURS = 24
TARGET_UTILIZATION = Decimal("0.8")
MAX_CONSOLIDATION_BUSY_SHARE = Decimal("0.5")
MAX_QUANTIZATION_BUSY_SHARE = Decimal("0.6")
MEMORY_OVERHEAD = Decimal("1.2")
BYTES_PER_PARAMETER = {"bf16": Decimal(2), "fp16": Decimal(2), "fp8": Decimal(1), "int8": Decimal(1),
                       "int4": Decimal("0.5")}
QUANTIZED_PRECISIONS = ("int8", "int4")  # mildest first
EXPECTED_TPS_PER_GPU = DEFAULT_ASSUMPTIONS.decode_tokens_per_second
MIN_BATCHING_SHARE = Decimal("0.25")
QUALITY_NOTE = "Quantization changes the model's outputs: check quality on your own eval set before rollout."
PREFERENCE = (Kind.GPU_CONSOLIDATION, Kind.GPU_BATCHING, Kind.GPU_QUANTIZATION)

POOL_HOURS_SQL = """
SELECT pool_id, count(*) AS hours, min(hour) AS first_hour, sum(busy) AS busy_seconds, sum(total) AS total_seconds,
       sum(idle_cost) AS idle_cost, sum(cost) AS cost,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY busy) AS p95_busy_seconds
FROM (
    SELECT pool_id, hour, coalesce(sum(gpu_seconds) FILTER (WHERE NOT is_idle), 0) AS busy,
           sum(gpu_seconds) AS total, coalesce(sum(cost_usd) FILTER (WHERE is_idle), 0) AS idle_cost,
           sum(cost_usd) AS cost
    FROM {table}
    WHERE organization_id = %s AND hour >= %s AND hour < %s
    GROUP BY pool_id, hour
) hourly
GROUP BY pool_id
"""


def _seconds(value) -> Decimal:
    """GPU-seconds are stored as floats rounded to the millisecond (billing.gpu)."""
    return Decimal(str(round(value or 0.0, 3)))


def ceil(value) -> int:
    return math.ceil(Fraction(value))


def plain(value: Decimal) -> str:
    """A Decimal without trailing zeros or exponent: 288.0000 → 288."""
    return f"{value.normalize():f}"


@dataclass
class PoolUsage:
    pool: GpuPool
    hours: int
    busy_seconds: Decimal
    total_seconds: Decimal
    idle_cost: Decimal
    cost: Decimal
    p95_busy_gpus: Decimal
    first_hour: datetime
    output_tokens: int = 0

    @property
    def busy_share(self) -> Decimal:
        return self.busy_seconds / self.total_seconds if self.total_seconds else Decimal(0)

    @property
    def covered_seconds(self) -> int:
        return self.hours * SECONDS_PER_HOUR

    @property
    def compute_floor(self) -> int:
        return max(1, ceil(self.p95_busy_gpus / TARGET_UTILIZATION))

    def facts(self) -> dict:
        return {"pool": self.pool.name, "pool_id": self.pool.pk, "gpu_model": self.pool.gpu_model,
                "gpu_count": self.pool.gpu_count, "hourly_usd_per_gpu": str(self.pool.hourly_usd_per_gpu),
                "served_models": list(self.pool.served_models or []), "covered_hours": self.hours,
                "busy_share": f"{self.busy_share:.4f}", "p95_busy_gpus": f"{self.p95_busy_gpus:.3f}",
                "idle_cost_usd": usd(self.idle_cost), "pool_cost_usd": usd(self.cost)}


@dataclass
class Plan:
    kind: str
    gpus_after: int
    title: str
    formula: str
    confidence: str
    evidence: dict = field(default_factory=dict)
    note: str = ""  # said after the saving in the formula


def memory_gpus(pool: GpuPool, precision: str) -> int | None:
    """GPUs the weights need at `precision`; None when the pool does not say its GPU memory or model size."""
    if not pool.gpu_memory_gb or not pool.model_params_billion or precision not in BYTES_PER_PARAMETER:
        return None
    return ceil(weights_gb(pool, precision) / pool.gpu_memory_gb)


def weights_gb(pool: GpuPool, precision: str) -> Decimal:
    return Decimal(pool.model_params_billion) * BYTES_PER_PARAMETER[precision] * MEMORY_OVERHEAD


def memory_floor(pool: GpuPool) -> int:
    return memory_gpus(pool, pool.weight_precision) or 1


def consolidation(usage: PoolUsage) -> Plan | None:
    pool, share = usage.pool, usage.busy_share
    if share >= MAX_CONSOLIDATION_BUSY_SHARE:
        return None
    floor = memory_floor(pool)
    needed = max(usage.compute_floor, floor)
    if needed >= pool.gpu_count:
        return None
    return Plan(
        Kind.GPU_CONSOLIDATION, needed, confidence=Confidence.MEDIUM,
        title=f"Shrink GPU pool {pool.name} from {pool.gpu_count} to {needed} GPUs: busy {share:.0%} of the time",
        formula=(f"busy share {usage.busy_seconds:,.0f} ÷ {usage.total_seconds:,.0f} GPU-seconds = {share:.1%} < "
                 f"{MAX_CONSOLIDATION_BUSY_SHARE:.0%}; GPUs needed = max(ceil({usage.p95_busy_gpus:.3f} p95 busy GPUs ÷ "
                 f"{TARGET_UTILIZATION}), {floor} for the weights) = {needed}"),
        evidence={"gpus_needed": needed, "memory_floor_gpus": floor},
    )


def quantization(usage: PoolUsage) -> Plan | None:
    pool, share = usage.pool, usage.busy_share
    current = pool.weight_precision
    at_current = memory_gpus(pool, current)
    if at_current is None or at_current != pool.gpu_count or share >= MAX_QUANTIZATION_BUSY_SHARE:
        return None
    options = {}
    for precision in QUANTIZED_PRECISIONS:
        if BYTES_PER_PARAMETER[precision] < BYTES_PER_PARAMETER[current]:
            options[precision] = max(memory_gpus(pool, precision), usage.compute_floor)
    chosen = next((precision for precision, gpus in options.items() if gpus < pool.gpu_count), None)
    if chosen is None:
        return None
    after, params, memory = options[chosen], plain(pool.model_params_billion), pool.gpu_memory_gb
    label = chosen.upper()
    return Plan(
        Kind.GPU_QUANTIZATION, after, confidence=Confidence.LOW,
        title=(f"Quantize {usage_model(pool) or 'the model'} on GPU pool {pool.name} to {label}: frees "
               f"{pool.gpu_count - after} of {pool.gpu_count} GPUs"),
        formula=(f"{params}B parameters × {plain(BYTES_PER_PARAMETER[current])} bytes ({current}) × {MEMORY_OVERHEAD} "
                 f"overhead = {plain(weights_gb(pool, current))} GB ÷ {memory} GB = {at_current} GPUs = the pool (busy "
                 f"{share:.1%} < {MAX_QUANTIZATION_BUSY_SHARE:.0%}); at {label}: {params}B × "
                 f"{plain(BYTES_PER_PARAMETER[chosen])} × {MEMORY_OVERHEAD} = {plain(weights_gb(pool, chosen))} GB ÷ "
                 f"{memory} GB → max("
                 f"{memory_gpus(pool, chosen)}, ceil({usage.p95_busy_gpus:.3f} p95 busy GPUs ÷ {TARGET_UTILIZATION})) = "
                 f"{after} GPUs"),
        note=QUALITY_NOTE,
        evidence={"weight_precision": current, "suggested_precision": chosen, "gpus_after": after,
                  "model_params_billion": params, "gpu_memory_gb": memory, "memory_overhead": str(MEMORY_OVERHEAD),
                  "weights_gb": {precision: plain(weights_gb(pool, precision)) for precision in (current, *options)},
                  "gpus_by_precision": {current: at_current} | options, "quality_note": QUALITY_NOTE},
    )


def batching(usage: PoolUsage) -> Plan | None:
    pool = usage.pool
    tokens, busy = usage.output_tokens, usage.busy_seconds
    if not pool.served_models or tokens <= 0 or busy <= 0:
        return None  # nothing measured: no calls recorded for the pool's models, or never busy
    per_gpu = tokens / busy
    if per_gpu >= MIN_BATCHING_SHARE * EXPECTED_TPS_PER_GPU:
        return None
    floor = memory_floor(pool)
    at_expected = max(1, ceil(tokens / (EXPECTED_TPS_PER_GPU * usage.covered_seconds * TARGET_UTILIZATION)))
    needed = max(at_expected, floor)
    if needed >= pool.gpu_count:
        return None
    return Plan(
        Kind.GPU_BATCHING, needed, confidence=Confidence.LOW,
        title=(f"Turn on continuous batching on GPU pool {pool.name}: {per_gpu:.1f} output tokens/s per busy GPU, "
               f"{pool.gpu_count - needed} GPUs freed"),
        formula=(f"{tokens:,} output tokens ÷ {busy:,.0f} busy GPU-seconds = {per_gpu:.1f} tokens/s per GPU < "
                 f"{MIN_BATCHING_SHARE:.0%} of {EXPECTED_TPS_PER_GPU} expected; GPUs needed = max(ceil({tokens:,} ÷ "
                 f"({EXPECTED_TPS_PER_GPU} × {usage.covered_seconds:,} s × {TARGET_UTILIZATION})), {floor} for the "
                 f"weights) = {needed}"),
        evidence={"output_tokens": tokens, "tokens_per_busy_gpu_second": f"{per_gpu:.3f}",
                  "expected_tokens_per_gpu_second": str(EXPECTED_TPS_PER_GPU), "gpus_needed": needed,
                  "memory_floor_gpus": floor},
    )


def usage_model(pool: GpuPool) -> str:
    """The pool's model when it serves exactly one."""
    models = [name for name in pool.served_models or () if isinstance(name, str)]
    return models[0] if len(models) == 1 else ""


def pool_usage(window: Window) -> list[PoolUsage]:
    pools = {pool.pk: pool for pool in GpuPool.objects.filter(organization_id=window.organization_id)}
    if not pools:
        return []
    with connection.cursor() as cursor:
        cursor.execute(POOL_HOURS_SQL.format(table=GpuCostHour._meta.db_table),
                       [window.organization_id, window.since, window.until])
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    found = []
    for row in rows:
        pool = pools.get(row["pool_id"])
        if pool is None or pool.gpu_count == 0 or row["hours"] < MIN_COVERED_HOURS:
            continue
        usage = PoolUsage(pool, row["hours"], _seconds(row["busy_seconds"]), _seconds(row["total_seconds"]),
                          row["idle_cost"], row["cost"], _seconds(row["p95_busy_seconds"]) / SECONDS_PER_HOUR,
                          row["first_hour"])
        if pool.served_models:
            covered = GpuCostHour.objects.filter(pool_id=pool.pk, hour=OuterRef("call_hour"))
            usage.output_tokens = (window.calls.filter(model_name__in=pool.served_models)
                                   .annotate(call_hour=TruncHour("start_time", tzinfo=UTC)).filter(Exists(covered))
                                   .aggregate(tokens=Coalesce(Sum("output_tokens"), 0))["tokens"])
        found.append(usage)
    return found


def gpu_efficiency(window: Window) -> list[Finding]:
    """At most one finding per pool: the plan freeing the most GPUs (see the module docstring)."""
    findings = []
    for usage in pool_usage(window):
        pool = usage.pool
        span = DataSpan(usage.first_hour, window.until)  # the pool's hours: its month does not follow the calls
        pool_hours = (span.days * 24).quantize(Decimal("0.01"))
        plans = [plan for plan in (consolidation(usage), batching(usage), quantization(usage)) if plan is not None]
        if not plans:
            continue
        best = min(plans, key=lambda plan: (plan.gpus_after, PREFERENCE.index(plan.kind)))
        freed = pool.gpu_count - best.gpus_after
        saving = freed * pool.hourly_usd_per_gpu * span.days * 24
        evidence = usage.facts() | best.evidence | {
            "gpus_freed": freed, "pool_hours": plain(pool_hours),
            "alternatives": {str(plan.kind): pool.gpu_count - plan.gpus_after for plan in plans if plan is not best},
        }
        findings.append(Finding(
            kind=best.kind, fingerprint=f"{best.kind}:pool:{pool.pk}", title=best.title, window_savings_usd=saving,
            span=span,
            formula=(f"{best.formula}; saving = ({pool.gpu_count} − {best.gpus_after}) GPUs × "
                     f"${plain(pool.hourly_usd_per_gpu)}/h × {plain(pool_hours)} pool hours"
                     f"{f'. {best.note}' if best.note else ''}"),
            confidence=best.confidence, evidence=evidence, team_id=pool.owner_team_id, model=usage_model(pool),
        ))
    return findings
