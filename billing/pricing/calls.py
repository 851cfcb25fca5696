"""The cost of a model call: resolving a reported model name to a catalog price, and pricing its tokens.

Pure functions over plain data (no database); money is Decimal throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal

from billing.pricing.catalog import TOKEN_CLASSES, VARIANTS, PriceSpec, PriceTier, TokenPrices, normalize_provider
from ingest.model_names import BEDROCK_VENDOR, normalize_model_name, unique_names

TOTAL_QUANTUM = Decimal("1E-10")
STANDARD = "standard"
BEDROCK = "aws.bedrock"
MAX_PLAUSIBLE_DURATION_MS = 86_400_000  # a day: no model call runs longer (the batch API's window is 24 hours)
TEXT_MODES = ("chat", "completion", "responses")  # one prompt per call: its input is bounded by the context window

# Model families and their Bedrock vendor prefix, for names reported without it.
_BEDROCK_FAMILIES = (("claude", "anthropic."), ("llama", "meta."), ("nova", "amazon."), ("titan", "amazon."),
                     ("mistral", "mistral."), ("mixtral", "mistral."), ("pixtral", "mistral."), ("command", "cohere."),
                     ("embed-", "cohere."), ("jamba", "ai21."), ("deepseek", "deepseek."), ("qwen", "qwen."))
_CACHE_LIMIT = 100_000


class PriceIndex:
    """Catalog specs by every lower-cased name they answer to, with a memo of past resolutions.

    Build one per catalog version; ingest resolves each call through it, so repeated
    (provider, response model, request model) triples are a single dict lookup.
    """

    def __init__(self, specs: list[PriceSpec] | tuple[PriceSpec, ...]) -> None:
        ranked: dict[str, list[tuple[tuple[int, int, int], PriceSpec]]] = {}
        for position, spec in enumerate(specs):
            for name in {spec.model.lower(), spec.key.lower()}:
                # Prefer a spec whose catalog key is exactly this name, then the shortest key path.
                rank = (0 if spec.key.lower() == name else 1, spec.key.count("/"), position)
                ranked.setdefault(name, []).append((rank, spec))
        self._by_name: dict[str, tuple[PriceSpec, ...]] = {
            name: tuple(spec for _, spec in sorted(entries, key=lambda entry: entry[0])) for name, entries in ranked.items()
        }
        self._resolved: dict[tuple[str, str, str], PriceSpec | None] = {}

    def lookup(self, provider: str, model: str) -> PriceSpec | None:
        """The spec for one reported model name: a spec at the call's provider first (on Bedrock also under the
        model vendor's prefix, which some instrumentations strip: claude-… → anthropic.claude-…), else any provider."""
        names = normalize_model_name(model)
        wanted = normalize_provider(provider) if provider else ""
        if wanted == BEDROCK and names and not BEDROCK_VENDOR.match(names[0]):
            vendor = next((prefix for family, prefix in _BEDROCK_FAMILIES if names[0].startswith(family)), None)
            if vendor:
                names = unique_names([*normalize_model_name(vendor + model), *names])
        if wanted:
            for name in names:
                for spec in self._by_name.get(name, ()):
                    if spec.provider == wanted:
                        return spec
        for name in names:
            specs = self._by_name.get(name)
            if specs:
                return specs[0]
        return None

    def resolve(self, provider: str, response_model: str, request_model: str) -> PriceSpec | None:
        key = (provider, response_model, request_model)
        try:
            return self._resolved[key]
        except KeyError:
            pass
        spec = self.lookup(provider, response_model) or self.lookup(provider, request_model)
        if len(self._resolved) >= _CACHE_LIMIT:
            self._resolved.clear()
        self._resolved[key] = spec
        return spec


def resolve_price(provider: str, response_model: str, request_model: str, index: PriceIndex) -> PriceSpec | None:
    """The catalog price of a call: by the model that answered, else the one asked for; None = unknown model."""
    return index.resolve(provider, response_model, request_model)


def implausibility(input_tokens: int, output_tokens: int, duration_ms: float, price: PriceSpec | None) -> str | None:
    """Why a call's reported values cannot be real, or None. Such a call is stored but not billed
    (cost_status `implausible`): a fuzzed call of 100 million input tokens would otherwise count as $15,000.

    - it lasted more than a day;
    - it reports more input tokens than the model's context window (the catalog's `max_input_tokens`, cached
      reads and cache writes included), or more output tokens than its `max_output_tokens` (reasoning included).
      Token limits apply to text models only: one embeddings request may carry many inputs, each within the
      window. A price with a long-context tier at or above the stated window shows the window is out of date
      (Bedrock's claude-sonnet-4-5 states 200,000 and bills above it), so input is not checked against it.

    Example: gpt-4o-mini (128,000-token window) reporting 2,000,000 input tokens → "2,000,000 input tokens, more
    than the 128,000-token context window of gpt-4o-mini".
    """
    if duration_ms > MAX_PLAUSIBLE_DURATION_MS:
        return f"lasted {duration_ms / 3_600_000:,.1f} hours, more than a day"
    if price is None or price.mode not in TEXT_MODES:
        return None
    window = price.max_input_tokens
    if window and input_tokens > window and not any(tier.threshold >= window for tier in price.tiers):
        return f"{input_tokens:,} input tokens, more than the {window:,}-token context window of {price.model}"
    if price.max_output_tokens and output_tokens > price.max_output_tokens:
        return f"{output_tokens:,} output tokens, more than the {price.max_output_tokens:,} {price.model} can write"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallUsage:
    """Token counts of one call, in the call record's convention.

    `input_tokens` includes cached reads and cache writes; `output_tokens` includes reasoning.
    `cache_write_1h_tokens` is the part of `cache_write_tokens` written with a 1-hour lifetime.
    Failed calls are priced like any other: providers bill the tokens they report.
    """

    input_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    status: str = "ok"
    cache_write_1h_tokens: int = 0

    def __post_init__(self) -> None:
        counts = (
            self.input_tokens,
            self.output_tokens,
            self.cached_input_tokens,
            self.cache_write_tokens,
            self.reasoning_tokens,
            self.cache_write_1h_tokens,
        )
        if min(counts) < 0:
            raise ValueError(f"token counts cannot be negative: {self}")
        if self.cached_input_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError(f"cached reads and cache writes are part of input_tokens: {self}")
        if self.cache_write_1h_tokens > self.cache_write_tokens:
            raise ValueError(f"1-hour cache writes are part of cache_write_tokens: {self}")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError(f"reasoning tokens are part of output_tokens: {self}")


@dataclass(frozen=True, slots=True)
class PriceLine:
    token_class: str
    tokens: int
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PriceBreakdown:
    """How a call's cost adds up; `total` is rounded half-even to 10 decimal places of a dollar."""

    key: str
    variant: str
    tier_threshold: int | None
    lines: tuple[PriceLine, ...]
    total: Decimal


def price_call(usage: CallUsage, price: PriceSpec, variant: str = STANDARD) -> PriceBreakdown:
    """The cost of one call's tokens at one price.

    Above a long-context threshold the whole call is billed at the tier's prices, as providers
    do. A service variant (batch, flex, priority) uses its own prices where the catalog has them
    and the standard ones elsewhere. Cache reads and writes without a price of their own cost
    the input price; reasoning tokens cost the output price unless the catalog says otherwise.
    """
    if variant != STANDARD and variant not in VARIANTS:
        raise ValueError(f"unknown price variant {variant!r}: use {STANDARD!r} or one of {VARIANTS}")
    chosen = price.variant(variant) if variant != STANDARD else None
    variant_tiers = chosen.tiers if chosen else ()
    threshold = max(
        (tier.threshold for tier in (*price.tiers, *variant_tiers) if usage.input_tokens > tier.threshold),
        default=None,
    )
    layers: list[TokenPrices | PriceSpec] = []
    if threshold is not None:
        layers += [tier.prices for tier in variant_tiers if tier.threshold == threshold]
        layers += [tier.prices for tier in price.tiers if tier.threshold == threshold]
    if chosen:
        layers.append(chosen.prices)
    layers.append(price)

    def unit(token_class: str) -> Decimal | None:
        for layer in layers:
            value = getattr(layer, token_class)
            if value is not None:
                return value
        return None

    input_price = unit("input") or Decimal(0)
    output_price = unit("output") or Decimal(0)
    cache_read_price = unit("cached_input_read")
    cache_write_price = unit("cache_write")
    cache_write_1h_price = unit("cache_write_1h")
    if cache_read_price is None:
        cache_read_price = input_price
    if cache_write_price is None:
        cache_write_price = input_price
    if cache_write_1h_price is None:
        cache_write_1h_price = cache_write_price

    uncached = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens
    counted = [
        ("input", uncached, input_price),
        ("cached_input_read", usage.cached_input_tokens, cache_read_price),
        ("cache_write", usage.cache_write_tokens - usage.cache_write_1h_tokens, cache_write_price),
        ("cache_write_1h", usage.cache_write_1h_tokens, cache_write_1h_price),
    ]
    if price.reasoning is not None and price.reasoning != output_price:
        counted.append(("output", usage.output_tokens - usage.reasoning_tokens, output_price))
        counted.append(("reasoning", usage.reasoning_tokens, price.reasoning))
    else:
        counted.append(("output", usage.output_tokens, output_price))

    lines = tuple(
        PriceLine(token_class=name, tokens=tokens, unit_price=unit_price, amount=tokens * unit_price)
        for name, tokens, unit_price in counted
        if tokens
    )
    total = sum((line.amount for line in lines), Decimal(0))
    return PriceBreakdown(
        key=price.key,
        variant=variant if chosen else STANDARD,
        tier_threshold=threshold,
        lines=lines,
        total=total.quantize(TOTAL_QUANTUM, rounding=ROUND_HALF_EVEN),
    )


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """An organization's negotiated rate: either a percentage off every price, or per-class prices.

    A per-class price is what that class costs in every long-context tier and service variant.
    """

    discount_percent: Decimal | None = None
    input: Decimal | None = None
    cached_input_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    output: Decimal | None = None
    reasoning: Decimal | None = None

    def __post_init__(self) -> None:
        replaced = [getattr(self, name) for name in (*TOKEN_CLASSES, "reasoning")]
        has_prices = any(value is not None for value in replaced)
        if (self.discount_percent is None) == (not has_prices):
            raise ValueError("an override is either a discount_percent or per-class prices, not both or neither")
        if self.discount_percent is not None and not Decimal(0) <= self.discount_percent <= Decimal(100):
            raise ValueError(f"discount_percent must be between 0 and 100, not {self.discount_percent}")
        if any(value is not None and value < 0 for value in replaced):
            raise ValueError("override prices cannot be negative")


def apply_override(price: PriceSpec, override: PriceOverride) -> PriceSpec:
    """The spec as the organization pays it."""
    if override.discount_percent is not None:
        factor = (Decimal(100) - override.discount_percent) / Decimal(100)
        return _scaled(price, factor)

    replaced = {name: getattr(override, name) for name in (*TOKEN_CLASSES, "reasoning") if getattr(override, name) is not None}
    cleared = {name: None for name in replaced if name != "reasoning"}

    def without_replaced(tiers: tuple[PriceTier, ...]) -> tuple[PriceTier, ...]:
        kept = (replace(tier, prices=replace(tier.prices, **cleared)) for tier in tiers)
        return tuple(tier for tier in kept if tier.prices != TokenPrices())

    return replace(
        price,
        **replaced,
        tiers=without_replaced(price.tiers),
        variants=tuple(
            replace(variant, prices=replace(variant.prices, **cleared), tiers=without_replaced(variant.tiers))
            for variant in price.variants
        ),
    )


def _scaled(price: PriceSpec, factor: Decimal) -> PriceSpec:
    def scale(value: Decimal | None) -> Decimal | None:
        return None if value is None else value * factor

    def scale_prices(prices: TokenPrices) -> TokenPrices:
        return TokenPrices(**{name: scale(getattr(prices, name)) for name in TOKEN_CLASSES})

    def scale_tiers(tiers: tuple[PriceTier, ...]) -> tuple[PriceTier, ...]:
        return tuple(replace(tier, prices=scale_prices(tier.prices)) for tier in tiers)

    return replace(
        price,
        **{name: scale(getattr(price, name)) for name in (*TOKEN_CLASSES, "reasoning")},
        tiers=scale_tiers(price.tiers),
        variants=tuple(
            replace(variant, prices=scale_prices(variant.prices), tiers=scale_tiers(variant.tiers)) for variant in price.variants
        ),
    )
