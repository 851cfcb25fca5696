"""Converting between catalog `PriceSpec`s and `Price` rows (tiers and variants as JSON with decimal strings)."""

from __future__ import annotations

from decimal import Decimal

from billing.models import Price
from billing.pricing.catalog import PriceSpec, PriceTier, PriceVariant, TokenPrices

SCALAR_FIELDS = ("input", "output", "cached_input_read", "cache_write", "cache_write_1h", "reasoning")
LIMIT_FIELDS = ("max_input_tokens", "max_output_tokens")
TOKEN_PRICE_FIELDS = ("input", "cached_input_read", "cache_write", "cache_write_1h", "output")


def _prices_json(prices: TokenPrices) -> dict:
    return {name: str(getattr(prices, name)) for name in TOKEN_PRICE_FIELDS if getattr(prices, name) is not None}


def _prices_from_json(data: dict) -> TokenPrices:
    return TokenPrices(**{name: Decimal(value) for name, value in data.items() if name in TOKEN_PRICE_FIELDS})


def _tiers_json(tiers: tuple[PriceTier, ...]) -> list:
    return [{"threshold": tier.threshold, "prices": _prices_json(tier.prices)} for tier in tiers]


def _tiers_from_json(data: list) -> tuple[PriceTier, ...]:
    return tuple(PriceTier(threshold=int(t["threshold"]), prices=_prices_from_json(t["prices"])) for t in data)


def price_fields(spec: PriceSpec) -> dict:
    """Model field values for a spec (without effective dates or source)."""
    fields = {name: getattr(spec, name) for name in SCALAR_FIELDS}
    fields.update(
        provider=spec.provider,
        model=spec.model,
        key=spec.key,
        mode=spec.mode,
        max_input_tokens=spec.max_input_tokens,
        max_output_tokens=spec.max_output_tokens,
        tiers=_tiers_json(spec.tiers),
        variants=[
            {"name": v.name, "prices": _prices_json(v.prices), "tiers": _tiers_json(v.tiers)} for v in spec.variants
        ],
    )
    return fields


def spec_from_price(price: Price) -> PriceSpec:
    return PriceSpec(
        key=price.key,
        provider=price.provider,
        model=price.model,
        mode=price.mode,
        input=Decimal(price.input),
        output=Decimal(price.output),
        cached_input_read=price.cached_input_read,
        cache_write=price.cache_write,
        cache_write_1h=price.cache_write_1h,
        reasoning=price.reasoning,
        tiers=_tiers_from_json(price.tiers or []),
        variants=tuple(
            PriceVariant(name=v["name"], prices=_prices_from_json(v["prices"]), tiers=_tiers_from_json(v.get("tiers", [])))
            for v in price.variants or []
        ),
        max_input_tokens=price.max_input_tokens,
        max_output_tokens=price.max_output_tokens,
    )


def normalized(value: Decimal | None) -> Decimal | None:
    """Decimal as stored in NUMERIC(24,18): used to compare a catalog file with the database."""
    return None if value is None else Decimal(value).quantize(Decimal("1E-18"))
