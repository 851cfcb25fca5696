"""Calls grouped per scope and long-context tier, and their summed tokens priced exactly as one call is priced.

The capacity detectors (batch_api, context_trimming) price what they find with billing.pricing.calls.price_call, so
cached reads, cache writes, reasoning tokens, service variants and long-context tiers cost what they cost when a
call is priced: `input_tokens` includes cached reads and cache writes, a class without a price of its own falls
back to the next layer (tier of the variant, tier, variant, standard), and above a long-context threshold the
whole call is billed at the tier's prices. Calls are summed per price tier (tier_bucket) so that this stays exact.
Prices come from the catalog (billing.pricing.at_ingest.catalog_cache); an organization's negotiated overrides
are not applied.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db import connection
from django.db.models import BigIntegerField, Case, F, Sum, Value, When
from django.db.models.functions import Least

from billing.models import Price
from billing.pricing.calls import STANDARD, CallUsage, PriceBreakdown, price_call
from billing.pricing.catalog import PriceSpec
from billing.recommendations.base import single

ZERO = Decimal(0)


THRESHOLDS_SQL = """
SELECT DISTINCT (threshold #>> '{{}}')::bigint AS threshold FROM (
    SELECT jsonb_path_query(tiers, '$[*].threshold') AS threshold FROM {table} WHERE effective_to IS NULL
    UNION ALL
    SELECT jsonb_path_query(variants, '$[*].tiers[*].threshold') FROM {table} WHERE effective_to IS NULL
) thresholds
ORDER BY 1
"""


def tier_thresholds() -> list[int]:
    """Every long-context threshold of a price in force (standard or variant tiers), ascending."""
    with connection.cursor() as cursor:
        cursor.execute(THRESHOLDS_SQL.format(table=Price._meta.db_table))
        return [row[0] for row in cursor.fetchall()]


def tier_bucket(thresholds: list[int]) -> Case:
    """The largest catalog threshold a call's input is above (NULL below all): calls in one bucket share a price
    tier whatever their model, so their summed tokens can be priced at once."""
    whens = [When(input_tokens__gt=threshold, then=Value(threshold)) for threshold in sorted(thresholds, reverse=True)]
    return Case(*whens, default=Value(None), output_field=BigIntegerField())


def clamped_tokens() -> dict:
    """Per-call token classes clamped the way billing.pricing.at_ingest.usage_of does."""
    cached = Least(F("cached_input_tokens"), F("input_tokens"))
    return {"cached_read": cached, "cache_write": Least(F("cache_write_tokens"), F("input_tokens") - cached),
            "reasoning": Least(F("reasoning_tokens"), F("output_tokens"))}


def usage_sums() -> dict:
    """Token sums of a grouped queryset annotated with clamped_tokens() before grouping."""
    return {"input_tokens": Sum("input_tokens"), "cached_tokens": Sum("cached_read"), "write_tokens": Sum("cache_write"),
            "output_tokens": Sum("output_tokens"), "reasoning_tokens": Sum("reasoning")}


TOKEN_KEYS = ("input_tokens", "cached_tokens", "write_tokens", "output_tokens", "reasoning_tokens")


def at_tier(spec: PriceSpec, bucket: int | None) -> PriceSpec:
    """The spec with only the tiers a call in `bucket` is above: price_call then picks the same tier for the bucket's
    summed usage as for each of its calls (every call in the bucket has more input tokens than `bucket`)."""

    def kept(tiers):
        return tuple(tier for tier in tiers if bucket is not None and tier.threshold <= bucket)

    return replace(spec, tiers=kept(spec.tiers),
                   variants=tuple(replace(variant, tiers=kept(variant.tiers)) for variant in spec.variants))


def priced(usage: dict, spec: PriceSpec, bucket: int | None, variant: str = STANDARD) -> PriceBreakdown:
    """price_call over the summed tokens of one tier bucket."""
    return price_call(CallUsage(input_tokens=usage["input_tokens"], cached_input_tokens=usage["cached_tokens"],
                                cache_write_tokens=usage["write_tokens"], output_tokens=usage["output_tokens"],
                                reasoning_tokens=usage["reasoning_tokens"]),
                      at_tier(spec, bucket), variant)


@dataclass
class Group:
    """Rows of one scope (one per tier bucket, or per hour too) merged: scope counts, tokens by bucket, hours."""

    calls: int = 0
    team_min: int | None = None
    team_max: int | None = None
    team_n: int = 0
    product_min: int | None = None
    product_max: int | None = None
    product_n: int = 0
    streamed: int = 0
    buckets: dict = field(default_factory=dict)
    hours: Counter = field(default_factory=Counter)
    # hour of the day → distinct UTC dates with calls in it (the most of its tier rows: a lower bound when one hour's
    # calls fall in several price tiers)
    hour_days: dict = field(default_factory=dict)

    def add(self, row: dict) -> None:
        self.calls += row["calls"]
        for name in ("team", "product"):
            low, high = row[f"{name}_min"], row[f"{name}_max"]
            if low is not None:
                current_low, current_high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
                setattr(self, f"{name}_min", low if current_low is None else min(current_low, low))
                setattr(self, f"{name}_max", high if current_high is None else max(current_high, high))
            setattr(self, f"{name}_n", getattr(self, f"{name}_n") + row[f"{name}_n"])
        self.streamed += row.get("streamed", 0)
        usage = self.buckets.setdefault(row["tier"], dict.fromkeys(TOKEN_KEYS, 0))
        for key in TOKEN_KEYS:
            usage[key] += int(row[key] or 0)
        if "hour" in row:
            self.hours[row["hour"]] += row["calls"]
            self.hour_days[row["hour"]] = max(self.hour_days.get(row["hour"], 0), row["days"])

    def scope(self) -> dict:
        return {"team_id": single(vars(self), "team"), "product_id": single(vars(self), "product")}

    def tokens(self, key: str) -> int:
        return sum(usage[key] for usage in self.buckets.values())


def token_classes(breakdowns: list[PriceBreakdown]) -> dict[str, tuple[int, Decimal]]:
    """Tokens and amount per token class over several breakdowns."""
    totals: dict[str, tuple[int, Decimal]] = {}
    for breakdown in breakdowns:
        for line in breakdown.lines:
            tokens, amount = totals.get(line.token_class, (0, ZERO))
            totals[line.token_class] = (tokens + line.tokens, amount + line.amount)
    return totals
