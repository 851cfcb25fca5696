"""What-if calculator: how a month of the scope's spend changes if some traffic moves to another model, a
response cache answers a share of calls, or a share of traffic goes through the batch API.

The baseline is the scope's recorded spend per (provider, model) over a range, from the rollups, scaled to a
month by the range's days with data (× 30.44 / days with data, billing.monthly). The three changes apply in
this order, each to what the previous left:

1. Move `move_share` of one model's traffic to another model. Removed: that share of the model's recorded cost.
   Added: that share of its tokens (by class: uncached input, cached reads, cache writes, output, reasoning)
   at the target model's standard catalog prices.
2. A response cache answering `cache_hit_rate` of calls: a hit costs nothing, so every model's remaining cost
   falls by that share (hits are assumed spread evenly over the traffic).
3. Send `batch_share` of what is left through the batch API: per model, that share of its remaining cost ×
   (1 − batch list cost / standard list cost of its tokens). Models with no batch price save nothing (listed).

List costs here ignore long-context tiers (the tokens are summed over many calls, so the per-call threshold
cannot be applied); recorded costs are what they were. Money is Decimal throughout; figures are rounded to the
cent only for display.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from billing.monthly import DAYS_PER_MONTH
from billing.pricing.at_ingest import catalog_cache
from billing.pricing.calls import CallUsage, price_call
from billing.pricing.catalog import PriceSpec
from billing.queries import spend
from observatory.access import Scope

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass
class ModelUsage:
    """One (provider, model)'s tokens and recorded cost over the range, and its standard and batch prices."""

    provider: str
    model: str
    calls: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal
    price: PriceSpec | None = None

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"

    def usage(self) -> CallUsage:
        cached = min(self.cached_input_tokens, self.input_tokens)
        return CallUsage(input_tokens=self.input_tokens, cached_input_tokens=cached,
                         cache_write_tokens=min(self.cache_write_tokens, self.input_tokens - cached),
                         output_tokens=self.output_tokens, reasoning_tokens=min(self.reasoning_tokens, self.output_tokens))


@dataclass(frozen=True)
class Scenario:
    """Shares are fractions in [0, 1]. `to_model` is a catalog model name; `from_model` a ModelUsage.key."""

    from_model: str = ""
    to_model: str = ""
    move_share: Decimal = ZERO
    cache_hit_rate: Decimal = ZERO
    batch_share: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in ("move_share", "cache_hit_rate", "batch_share"):
            value = getattr(self, name)
            if not ZERO <= value <= ONE:
                raise ValueError(f"{name.replace('_', ' ')} must be between 0% and 100%, not {value * 100}%.")


@dataclass
class Step:
    label: str
    monthly_change_usd: Decimal  # negative = saving
    formula: str


@dataclass
class WhatIf:
    days: Decimal
    baseline_monthly_usd: Decimal
    new_monthly_usd: Decimal
    steps: list[Step] = field(default_factory=list)
    models: list[ModelUsage] = field(default_factory=list)
    no_batch_price: list[str] = field(default_factory=list)

    @property
    def change_usd(self) -> Decimal:
        return self.new_monthly_usd - self.baseline_monthly_usd

    @property
    def change_abs_usd(self) -> Decimal:
        return abs(self.change_usd)

    @property
    def change_percent(self) -> Decimal | None:
        return self.change_usd * 100 / self.baseline_monthly_usd if self.baseline_monthly_usd else None


def _untiered(spec: PriceSpec) -> PriceSpec:
    return dataclasses.replace(spec, tiers=(), variants=tuple(dataclasses.replace(v, tiers=()) for v in spec.variants))


def list_cost(spec: PriceSpec, usage: CallUsage, variant: str = "standard") -> Decimal:
    """What `usage` costs at `spec`'s catalog prices, summed tokens priced without long-context tiers."""
    return price_call(usage, _untiered(spec), variant).total


def model_usage(scope: Scope, start: datetime, end: datetime) -> list[ModelUsage]:
    """The scope's spend per (provider, model) in [start, end), most expensive first, with catalog prices."""
    catalog_cache.refresh()
    rows = []
    for row in spend(scope, start, end, ("provider", "model")):
        if not row["calls"] or not row["model"]:
            continue
        rows.append(ModelUsage(
            provider=row["provider"], model=row["model"], calls=row["calls"], input_tokens=row["input_tokens"],
            cached_input_tokens=row["cached_input_tokens"], cache_write_tokens=row["cache_write_tokens"],
            output_tokens=row["output_tokens"], reasoning_tokens=row["reasoning_tokens"],
            cost_usd=Decimal(row["cost_usd"] or 0), price=catalog_cache.index.lookup(row["provider"], row["model"]),
        ))
    return rows


def _money(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.01')):,}"


def _pct(share: Decimal) -> str:
    return f"{(share * 100).normalize():f}%"


def what_if(models: list[ModelUsage], days: Decimal | int, scenario: Scenario) -> WhatIf:
    """Apply `scenario` to the per-model usage of a range with `days` days of data; every figure is per month."""
    days = Decimal(days)
    if days <= 0:
        raise ValueError("the range must be longer than zero days.")
    scale = DAYS_PER_MONTH / days
    # remaining monthly cost per model key, and the tokens behind it (for batch ratios)
    cost = {m.key: m.cost_usd * scale for m in models}
    prices = {m.key: m.price for m in models}
    usages = {m.key: m.usage() for m in models}
    baseline = sum(cost.values(), ZERO)
    result = WhatIf(days=days, baseline_monthly_usd=baseline, new_monthly_usd=baseline, models=models)

    if scenario.move_share and scenario.from_model:
        source = next((m for m in models if m.key == scenario.from_model), None)
        if source is None:
            raise ValueError(f"no traffic on {scenario.from_model} in this range.")
        target = catalog_cache.index.lookup(source.provider, scenario.to_model)
        if target is None:
            raise ValueError(f"the price catalog has no model {scenario.to_model!r}.")
        removed = cost[source.key] * scenario.move_share
        added = list_cost(target, source.usage()) * scale * scenario.move_share
        cost[source.key] -= removed
        target_key = f"{target.provider}/{target.model}"
        cost[target_key] = cost.get(target_key, ZERO) + added
        prices.setdefault(target_key, target)
        if target_key not in usages:
            usages[target_key] = source.usage()
        result.steps.append(Step(
            f"Move {_pct(scenario.move_share)} of {source.model} to {target.model}", added - removed,
            f"− {_pct(scenario.move_share)} × {_money(source.cost_usd * scale)} recorded + {_pct(scenario.move_share)} × "
            f"{_money(list_cost(target, source.usage()) * scale)} for the same tokens at {target.model}'s prices"))

    if scenario.cache_hit_rate:
        before = sum(cost.values(), ZERO)
        cost = {key: value * (ONE - scenario.cache_hit_rate) for key, value in cost.items()}
        result.steps.append(Step(f"Serve {_pct(scenario.cache_hit_rate)} of calls from a response cache",
                                 -before * scenario.cache_hit_rate,
                                 f"− {_pct(scenario.cache_hit_rate)} × {_money(before)}"))

    if scenario.batch_share:
        saved = ZERO
        parts = []
        for key, value in cost.items():
            spec = prices.get(key)
            if spec is None or spec.variant("batch") is None or not value:
                if value:
                    result.no_batch_price.append(key)
                continue
            standard = list_cost(spec, usages[key])
            if not standard:
                continue
            ratio = list_cost(spec, usages[key], "batch") / standard
            saving = value * scenario.batch_share * (ONE - ratio)
            cost[key] = value - saving
            saved += saving
            parts.append(f"{_money(value)} × (1 − {ratio.quantize(Decimal('0.01'))}) on {key}")
        result.steps.append(Step(f"Send {_pct(scenario.batch_share)} of traffic through the batch API", -saved,
                                 f"− {_pct(scenario.batch_share)} × (" + (" + ".join(parts) or "no model with a batch price")
                                 + ")"))

    result.new_monthly_usd = sum(cost.values(), ZERO)
    return result
