"""Self-host crossover: when a model's steady API spend is large enough that renting GPUs and serving an open-weights
model of the same class pays back the cost of standing it up.

Self-hosting crosses over API pricing somewhere around $20–50k a month of steady spend. The model used here is
deliberately simple, and every figure is an assumption the what-if page lets a user change (SelfHostAssumptions):

    GPU-seconds a month = output tokens ÷ decode tokens/s per GPU + input tokens ÷ prefill tokens/s per GPU
    GPUs                = max(min GPUs, ceil(GPU-seconds ÷ (730 h × 3,600 s × target utilization)))
    self-host a month   = GPUs × GPU hourly rate × 730 h + operations a month
    saving a month      = API a month − self-host a month
    break-even month    = the first month m with m × saving ≥ setup cost (none when the saving is ≤ 0 or m is
                          past the horizon)

Prefill (reading the prompt) is processed in large parallel batches and is much cheaper per token than decode
(generating one token at a time), hence the two rates. Quality parity between the API model and the open model is
not checked: that is for the team's own evaluation, which is why the confidence is low.

Default assumptions (a 70B-class open model, e.g. Llama 3.1 70B, in BF16 served by vLLM / SGLang / TGI with
continuous batching on H100-class GPUs rented from a cloud at $2.50 an hour):
- decode 250 output tokens/s per GPU sustained at interactive latency (a replica of 4 GPUs streaming ~30 requests
  at ~35 tokens/s each ≈ 1,000 tokens/s), prefill 2,500 input tokens/s per GPU (10× decode);
- target utilization 0.6: steady traffic still has daily peaks, so GPUs sized on the average never run full;
- at least 2 GPUs, for redundancy;
- setup $150,000 once: about two engineers for four months to stand up the serving stack, evaluate quality on the
  team's own eval set and migrate traffic;
- operations $12,000 a month: on-call and MLOps time (about three quarters of a fully loaded engineer), monitoring.

Seed example (the numbers tests/billing/test_selfhost.py checks): 10M queries a month × (1,000 input + 300 output
tokens) on gpt-4.1, priced $2 / $8 per million tokens:
    API: 10,000M input × $2/M + 3,000M output × $8/M = $20,000 + $24,000 = $44,000 a month
    tokens/s needed on average: 3,000,000,000 ÷ 2,628,000 s = 1,141.6 output and 3,805.2 input tokens/s
    GPU-seconds: 3,000,000,000 ÷ 250 + 10,000,000,000 ÷ 2,500 = 12,000,000 + 4,000,000 = 16,000,000
    GPUs: 16,000,000 ÷ (2,628,000 s × 0.6 = 1,576,800) = 10.15 → 11 GPUs
    self-host: 11 × $2.50 × 730 h = $20,075 + $12,000 operations = $32,075 a month
    saving: $44,000 − $32,075 = $11,925 a month
    break-even: ceil($150,000 ÷ $11,925 = 12.58) = month 13 (12 months save $143,100, 13 months $155,025)

The detector self_host: per (provider, model) of API traffic (calls of models a GpuPool serves are already
self-hosted and left out, as are application cache hits), the window's recorded cost and tokens scaled to a month by
the window's days with data (× 30.44 / days, billing.monthly: API spend accrues with the calls); at least
MIN_SELF_HOST_MONTHLY_SPEND → crossover() with the default assumptions on the month's token volume, whose GPU side
is priced by the hour (730 h a month, whatever the calls); a break-even month within MAX_BREAK_EVEN_MONTHS → a
finding whose saving is the monthly saving once paid back. Its window figure is that saving × days with data /
30.44, which generate() scales back to exactly the crossover's monthly saving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from billing.models import GpuPool
from billing.monthly import DAYS_PER_MONTH
from billing.pricing.at_ingest import catalog_cache
from billing.recommendations.base import Confidence, Finding, Kind, Window, per_million, scope_aggregates, single, usd

HOURS_PER_MONTH = Decimal(730)
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600  # 2,628,000
MIN_SELF_HOST_MONTHLY_SPEND = Decimal("20000")
MAX_BREAK_EVEN_MONTHS = 18
MAX_HORIZON_MONTHS = 600


def _decimal(name: str, value, *, positive: bool = False) -> Decimal:
    """`value` as a finite Decimal, ≥ 0 (or > 0 when `positive`), else ValueError naming `name`."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, not {value!r}.")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}.") from None
    if not number.is_finite():
        raise ValueError(f"{name} must be a finite number, not {value!r}.")
    if positive and number <= 0:
        raise ValueError(f"{name} must be greater than zero (got {number}).")
    if number < 0:
        raise ValueError(f"{name} cannot be negative (got {number}).")
    return number


def _whole(name: str, value, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum} (got {value}).")
    return value


@dataclass(frozen=True)
class SelfHostAssumptions:
    """What serving the model yourself costs; the defaults are described in the module docstring."""

    gpu_hourly_usd: Decimal = Decimal("2.50")  # one H100-class GPU rented from a cloud
    decode_tokens_per_second: Decimal = Decimal("250")  # output tokens/s per GPU, 70B-class, continuous batching
    prefill_tokens_per_second: Decimal = Decimal("2500")  # input tokens/s per GPU
    target_utilization: Decimal = Decimal("0.6")  # share of GPU time steady traffic keeps busy
    min_gpus: int = 2  # redundancy
    setup_usd: Decimal = Decimal("150000")  # once: stand up, evaluate and migrate
    monthly_ops_usd: Decimal = Decimal("12000")  # on-call and MLOps share

    def __post_init__(self) -> None:
        for name in ("gpu_hourly_usd", "decode_tokens_per_second", "prefill_tokens_per_second", "target_utilization"):
            object.__setattr__(self, name, _decimal(name, getattr(self, name), positive=True))
        for name in ("setup_usd", "monthly_ops_usd"):
            object.__setattr__(self, name, _decimal(name, getattr(self, name)))
        if self.target_utilization > 1:
            raise ValueError(f"target_utilization is a share of GPU time, at most 1 (got {self.target_utilization}).")
        _whole("min_gpus", self.min_gpus, minimum=1)

    def as_evidence(self) -> dict:
        """JSON-safe: numbers as strings, as money is everywhere in evidence."""
        return {item.name: str(getattr(self, item.name)) for item in fields(self)}


DEFAULT_ASSUMPTIONS = SelfHostAssumptions()


@dataclass(frozen=True)
class CrossoverMonth:
    """Month `month` (1-based) of the chart: what each option has cost so far."""

    month: int
    api_cumulative_usd: Decimal
    self_host_cumulative_usd: Decimal  # setup + month × self-host a month


@dataclass(frozen=True)
class Crossover:
    api_monthly_usd: Decimal
    monthly_input_tokens: Decimal
    monthly_output_tokens: Decimal
    gpu_seconds: Decimal  # GPU-seconds of work a month at full speed
    gpus: int
    gpu_monthly_usd: Decimal  # gpus × hourly rate × 730 h
    self_host_monthly_usd: Decimal  # + operations
    monthly_saving_usd: Decimal  # API − self-host (negative: self-hosting costs more)
    setup_usd: Decimal
    break_even_month: int | None
    series: tuple[CrossoverMonth, ...]
    assumptions: SelfHostAssumptions

    @property
    def extra_cost_usd(self) -> Decimal:
        """How much more self-hosting costs a month than the API (0 when it saves)."""
        return max(-self.monthly_saving_usd, Decimal(0))

    @property
    def busy_gpus(self) -> Decimal:
        """GPUs the work would keep fully busy around the clock, before the utilization target."""
        return self.gpu_seconds / SECONDS_PER_MONTH


def crossover(api_monthly_usd, monthly_input_tokens, monthly_output_tokens,
              assumptions: SelfHostAssumptions = DEFAULT_ASSUMPTIONS, horizon_months: int = 36) -> Crossover:
    """API vs self-hosting a month of traffic, and the month self-hosting has paid back its setup.

    Money and token counts may be Decimal, int or numeric strings; ValueError (with a readable message) for
    negative amounts, a horizon outside 1–600 months, or assumptions that are not a SelfHostAssumptions."""
    api = _decimal("api_monthly_usd", api_monthly_usd)
    input_tokens = _decimal("monthly_input_tokens", monthly_input_tokens)
    output_tokens = _decimal("monthly_output_tokens", monthly_output_tokens)
    horizon = _whole("horizon_months", horizon_months, minimum=1)
    if horizon > MAX_HORIZON_MONTHS:
        raise ValueError(f"horizon_months must be at most {MAX_HORIZON_MONTHS} (got {horizon}).")
    if not isinstance(assumptions, SelfHostAssumptions):
        raise ValueError("assumptions must be a SelfHostAssumptions.")
    a = assumptions
    # exact arithmetic for the ceilings: a GPU count that is a whole number must not become one more
    work = (Fraction(output_tokens) / Fraction(a.decode_tokens_per_second)
            + Fraction(input_tokens) / Fraction(a.prefill_tokens_per_second))
    capacity = Fraction(SECONDS_PER_MONTH) * Fraction(a.target_utilization)
    gpus = max(a.min_gpus, math.ceil(work / capacity))
    gpu_monthly = gpus * a.gpu_hourly_usd * HOURS_PER_MONTH
    self_host = gpu_monthly + a.monthly_ops_usd
    saving = api - self_host
    break_even = None
    if saving > 0:
        month = max(1, math.ceil(Fraction(a.setup_usd) / Fraction(saving)))
        break_even = month if month <= horizon else None
    series = tuple(CrossoverMonth(month, api * month, a.setup_usd + self_host * month) for month in range(1, horizon + 1))
    gpu_seconds = Decimal(work.numerator) / Decimal(work.denominator)
    return Crossover(api, input_tokens, output_tokens, gpu_seconds, gpus, gpu_monthly, self_host, saving, a.setup_usd,
                     break_even, series, a)


def formula_of(result: Crossover) -> str:
    a = result.assumptions
    if result.monthly_saving_usd <= 0:
        tail = f"−${-result.monthly_saving_usd:,.2f}/month: self-hosting costs more, it never pays back"
    else:
        months = f"month {result.break_even_month}" if result.break_even_month else "not within the horizon"
        tail = (f"${result.monthly_saving_usd:,.2f}/month; break-even: ceil(${a.setup_usd:,.2f} setup ÷ "
                f"${result.monthly_saving_usd:,.2f}) = {months}")
    return (f"API ${result.api_monthly_usd:,.2f}/month − self-host [max({a.min_gpus}, ceil(("
            f"{result.monthly_output_tokens:,.0f} output tokens ÷ {a.decode_tokens_per_second:,} tok/s + "
            f"{result.monthly_input_tokens:,.0f} input tokens ÷ {a.prefill_tokens_per_second:,} tok/s) ÷ "
            f"({SECONDS_PER_MONTH:,} s × {a.target_utilization}))) = {result.gpus} GPUs × ${a.gpu_hourly_usd} × "
            f"{HOURS_PER_MONTH} h = ${result.gpu_monthly_usd:,.2f} + ${a.monthly_ops_usd:,.2f} operations = "
            f"${result.self_host_monthly_usd:,.2f}/month] = {tail}")


def chart_of(result: Crossover) -> dict:
    """The cumulative cost of each option per month, for the what-if page's Chart.js line chart."""
    return {
        "type": "line", "unit": "usd", "stacked": False,
        "labels": [f"Month {point.month}" for point in result.series],
        "datasets": [
            {"label": "API", "color": "#3157d5", "data": [str(p.api_cumulative_usd) for p in result.series]},
            {"label": "Self-host (setup + monthly)", "color": "#e67e22",
             "data": [str(p.self_host_cumulative_usd) for p in result.series]},
        ],
    }


def self_hosted_models(organization_id: int) -> set[str]:
    served: set[str] = set()
    for models in GpuPool.objects.filter(organization_id=organization_id).values_list("served_models", flat=True):
        served.update(name for name in models or () if isinstance(name, str))
    return served


def self_host(window: Window) -> list[Finding]:
    span = window.span
    if span.first is None:
        return []
    days = span.days
    calls = window.calls.filter(app_cache_hit=False).exclude(model_name="")
    served = self_hosted_models(window.organization_id)
    if served:
        calls = calls.exclude(Q(response_model__in=served) | Q(request_model__in=served))
    rows = (calls.values("provider", "model_name")
            .annotate(**scope_aggregates(), cost=Coalesce(Sum("cost_usd"), Decimal(0)),
                      input_tokens=Coalesce(Sum("input_tokens"), 0), output_tokens=Coalesce(Sum("output_tokens"), 0))
            .filter(cost__gte=MIN_SELF_HOST_MONTHLY_SPEND * days / DAYS_PER_MONTH))
    findings = []
    for row in rows:
        api_monthly = span.monthly(row["cost"])
        if api_monthly < MIN_SELF_HOST_MONTHLY_SPEND:
            continue
        result = crossover(api_monthly, span.monthly(row["input_tokens"]), span.monthly(row["output_tokens"]))
        if result.break_even_month is None or result.break_even_month > MAX_BREAK_EVEN_MONTHS:
            continue
        saving = result.monthly_saving_usd
        price = catalog_cache.index.lookup(row["provider"], row["model_name"])
        model = row["model_name"]
        findings.append(Finding(
            kind=Kind.SELF_HOST, fingerprint=f"{Kind.SELF_HOST}:{row['provider']}:{model}",
            title=(f"Self-host {model} on {result.gpus} GPUs: pays back its setup in month {result.break_even_month}, "
                   f"then saves ${saving:,.0f}/month"),
            window_savings_usd=saving * days / DAYS_PER_MONTH, confidence=Confidence.LOW,
            formula=(f"{formula_of(result)}; API a month = ${row['cost']:,.2f} recorded × {DAYS_PER_MONTH} / "
                     f"{days.quantize(Decimal('0.01')).normalize():f} days with data; in those days: "
                     f"${saving:,.2f}/month × {days.quantize(Decimal('0.01')).normalize():f} / {DAYS_PER_MONTH}"),
            evidence={
                "provider": row["provider"], "calls": row["calls"], "window_cost_usd": usd(row["cost"]),
                "api_monthly_usd": usd(api_monthly), "monthly_input_tokens": f"{result.monthly_input_tokens:.0f}",
                "monthly_output_tokens": f"{result.monthly_output_tokens:.0f}",
                "gpu_seconds_per_month": f"{result.gpu_seconds:.0f}", "gpus": result.gpus,
                "gpu_monthly_usd": usd(result.gpu_monthly_usd), "self_host_monthly_usd": usd(result.self_host_monthly_usd),
                "monthly_saving_usd": usd(saving), "setup_usd": usd(result.setup_usd),
                "break_even_month": result.break_even_month, "assumptions": result.assumptions.as_evidence(),
                "list_price_per_million": None if price is None else {"input": per_million(price.input),
                                                                      "output": per_million(price.output)},
                "note": "Assumes an open-weights model of similar quality; check it on your own eval set first.",
            },
            team_id=single(row, "team"), product_id=single(row, "product"), model=model,
        ))
    return findings
