"""The model price catalog: LiteLLM-format JSON parsed into PriceSpec records, and the diff of two catalogs.

Prices are USD per token as exact Decimals; providers use the OpenTelemetry `gen_ai.provider.name` names.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

DEFAULT_CATALOG_PATH = Path(__file__).resolve().parents[1] / "data" / "model_prices.json"

TOKEN_CLASSES = ("input", "cached_input_read", "cache_write", "cache_write_1h", "output")
VARIANTS = ("batch", "flex", "priority")

# LiteLLM provider names (and older OTel `gen_ai.system` values) → OTel `gen_ai.provider.name`.
_PROVIDER_NAMES = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "az.ai.openai": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "az.ai.inference": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "bedrock_mantle": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "codestral": "mistral_ai",
    "text-completion-codestral": "mistral_ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai",
}

# input_cost_per_token, ..._above_200k_tokens, ..._batches, ..._above_200k_tokens_priority, and so on.
# The 1-hour cache-write key must come before its 5-minute prefix in the alternation.
_PRICE_KEY = re.compile(
    r"^(?P<base>input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost_above_1hr|cache_creation_input_token_cost"
    r"|output_cost_per_reasoning_token)"
    r"(?:_above_(?P<thousands>\d+)k_tokens)?"
    r"(?:_(?P<variant>batches|flex|priority))?$"
)
_CLASS_OF_KEY = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input_read",
    "cache_creation_input_token_cost": "cache_write",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "output_cost_per_reasoning_token": "reasoning",
}
_VARIANT_OF_SUFFIX = {"batches": "batch", "flex": "flex", "priority": "priority"}


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """Per-token prices of one tier or variant; None means "not stated here, use the standard price"."""

    input: Decimal | None = None
    cached_input_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    output: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Long-context prices: the whole call is billed at these when its input tokens exceed `threshold`."""

    threshold: int
    prices: TokenPrices


@dataclass(frozen=True, slots=True)
class PriceVariant:
    """Prices of a service tier (batch, flex, priority), with its own long-context tiers if any."""

    name: str
    prices: TokenPrices
    tiers: tuple[PriceTier, ...] = ()


@dataclass(frozen=True, slots=True)
class PriceSpec:
    """One catalog entry: a model at a provider and what each token class costs, in USD per token.

    `model` is the bare name (the catalog key without provider or path prefix); `key` is the
    catalog key itself, also an alias. Missing cache prices fall back to the input price when a
    call is priced; `reasoning` is None when reasoning tokens cost the same as output tokens.
    `max_input_tokens` (the context window) and `max_output_tokens` are the catalog's limits, None when
    it states none; a call reporting more is implausible (see billing.pricing.calls.implausibility).
    """

    key: str
    provider: str
    model: str
    mode: str
    input: Decimal
    output: Decimal
    cached_input_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()
    variants: tuple[PriceVariant, ...] = ()
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names the spec answers to: the full catalog key when it differs from the bare name."""
        return (self.key,) if self.key != self.model else ()

    def variant(self, name: str) -> PriceVariant | None:
        for variant in self.variants:
            if variant.name == name:
                return variant
        return None


@dataclass(frozen=True, slots=True)
class CatalogParse:
    """What a catalog file yielded: the priced specs, and the keys skipped for having no per-token prices
    with why each was skipped (see `skip_reason`)."""

    specs: tuple[PriceSpec, ...]
    skipped: tuple[str, ...]
    skip_reasons: tuple[str, ...] = ()

    @property
    def entries(self) -> int:
        return len(self.specs) + len(self.skipped)

    def skipped_summary(self) -> str:
        """"677 priced per image, second, character, query or page, 95 without any price, …", most first."""
        counts = Counter(self.skip_reasons)
        return ", ".join(f"{count:,} {reason}" for reason, count in counts.most_common())


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    old: object
    new: object


@dataclass(frozen=True, slots=True)
class SpecChange:
    key: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True, slots=True)
class CatalogDiff:
    added: tuple[PriceSpec, ...]
    removed: tuple[PriceSpec, ...]
    changed: tuple[SpecChange, ...]


def normalize_provider(name: str) -> str:
    """The OTel provider name for a LiteLLM provider (`vertex_ai-anthropic_models` → `gcp.vertex_ai`)."""
    cleaned = name.strip().lower()
    if cleaned.startswith("vertex_ai"):
        return "gcp.vertex_ai"
    return _PROVIDER_NAMES.get(cleaned, cleaned)


def _decimal(value: object) -> Decimal | None:
    """A catalog number as the Decimal it was written as: 1.5e-07 → Decimal('1.5E-7'), never float noise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    return result if result.is_finite() else None


def _limit(value: object) -> int | None:
    """A token limit from the catalog: a positive whole number, else None (not stated)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if value >= 1 else None


def parse_entry(key: str, entry: Mapping[str, object]) -> PriceSpec | None:
    """The PriceSpec of one catalog entry, or None when it has no per-token input or output price."""
    base: dict[str, Decimal] = {}
    tiers: dict[int, dict[str, Decimal]] = {}
    variants: dict[str, dict[str, Decimal]] = {}
    variant_tiers: dict[str, dict[int, dict[str, Decimal]]] = {}
    for name, raw in entry.items():
        match = _PRICE_KEY.match(name)
        price = _decimal(raw) if match else None
        if match is None or price is None:
            continue
        kind = _CLASS_OF_KEY[match["base"]]
        threshold = int(match["thousands"]) * 1000 if match["thousands"] else None
        variant = _VARIANT_OF_SUFFIX.get(match["variant"] or "")
        if kind == "reasoning":
            if threshold is None and variant is None:
                base[kind] = price
        elif variant and threshold:
            variant_tiers.setdefault(variant, {}).setdefault(threshold, {})[kind] = price
        elif variant:
            variants.setdefault(variant, {})[kind] = price
        elif threshold:
            tiers.setdefault(threshold, {})[kind] = price
        else:
            base[kind] = price
    if "input" not in base and "output" not in base:
        return None

    output = base.get("output", Decimal(0))
    reasoning = base.get("reasoning")
    provider = str(entry.get("litellm_provider") or "")
    return PriceSpec(
        key=key,
        provider=normalize_provider(provider),
        model=key.rsplit("/", 1)[-1],
        mode=str(entry.get("mode") or ""),
        input=base.get("input", Decimal(0)),
        output=output,
        cached_input_read=base.get("cached_input_read"),
        cache_write=base.get("cache_write"),
        cache_write_1h=base.get("cache_write_1h"),
        reasoning=None if reasoning == output else reasoning,
        tiers=_tiers(tiers),
        variants=tuple(
            PriceVariant(
                name=name,
                prices=TokenPrices(**variants.get(name, {})),
                tiers=_tiers(variant_tiers.get(name, {})),
            )
            for name in VARIANTS
            if name in variants or name in variant_tiers
        ),
        max_input_tokens=_limit(entry.get("max_input_tokens")),
        max_output_tokens=_limit(entry.get("max_output_tokens")),
    )


def _tiers(by_threshold: Mapping[int, Mapping[str, Decimal]]) -> tuple[PriceTier, ...]:
    return tuple(
        PriceTier(threshold=threshold, prices=TokenPrices(**prices)) for threshold, prices in sorted(by_threshold.items())
    )


def skip_reason(entry: Mapping[str, object]) -> str:
    """Why an entry yields no PriceSpec. Image, audio, video, search and OCR models are priced per image, second,
    character, query or page, which a call record cannot be billed by; subscription plans (GitHub Copilot, ChatGPT)
    have no price at all; a few models state prices only by input-size range (`tiered_pricing`) or only for the
    batch or priority service tier."""
    if "tiered_pricing" in entry:
        return "with prices by input-size range only"
    prices = [name for name in entry if "cost" in name]
    if not prices:
        return "without any price"
    if any(_PRICE_KEY.match(name) for name in prices):
        return "with batch or priority prices only"
    return "priced per image, second, character, query or page"


def parse_catalog(data: Mapping[str, object]) -> CatalogParse:
    """Every priced entry of a LiteLLM-format catalog, in file order; `sample_spec` is not a model."""
    specs: list[PriceSpec] = []
    skipped: list[str] = []
    reasons: list[str] = []
    for key, entry in data.items():
        if key == "sample_spec" or not isinstance(entry, Mapping):
            continue
        spec = parse_entry(key, entry)
        if spec is None:
            skipped.append(key)
            reasons.append(skip_reason(entry))
        else:
            specs.append(spec)
    return CatalogParse(specs=tuple(specs), skipped=tuple(skipped), skip_reasons=tuple(reasons))


def read_catalog(path: Path | str = DEFAULT_CATALOG_PATH) -> CatalogParse:
    with open(path, encoding="utf-8") as handle:
        return parse_catalog(json.load(handle))


def load_catalog(path: Path | str = DEFAULT_CATALOG_PATH) -> list[PriceSpec]:
    """The priced specs of a catalog file (read_catalog gives the skipped keys too)."""
    return list(read_catalog(path).specs)


def _flat_fields(spec: PriceSpec) -> dict[str, object]:
    """The spec as field name → value, tiers and variants spelled out (`batch.above_200000.input`)."""
    fields: dict[str, object] = {
        "provider": spec.provider,
        "model": spec.model,
        "mode": spec.mode,
        "reasoning": spec.reasoning,
        "max_input_tokens": spec.max_input_tokens,
        "max_output_tokens": spec.max_output_tokens,
    }
    layers: list[tuple[str, object]] = [("", spec)]
    layers += [(f"above_{tier.threshold}.", tier.prices) for tier in spec.tiers]
    for variant in spec.variants:
        layers.append((f"{variant.name}.", variant.prices))
        layers += [(f"{variant.name}.above_{tier.threshold}.", tier.prices) for tier in variant.tiers]
    for prefix, prices in layers:
        for token_class in TOKEN_CLASSES:
            fields[prefix + token_class] = getattr(prices, token_class)
    return {name: value for name, value in fields.items() if value is not None}


def diff_catalogs(old: list[PriceSpec], new: list[PriceSpec]) -> CatalogDiff:
    """What an import would change, matched by catalog key; a field absent on one side shows as None."""
    old_by_key = {spec.key: spec for spec in old}
    new_by_key = {spec.key: spec for spec in new}
    changed: list[SpecChange] = []
    for key, new_spec in new_by_key.items():
        old_spec = old_by_key.get(key)
        if old_spec is None or old_spec == new_spec:
            continue
        before, after = _flat_fields(old_spec), _flat_fields(new_spec)
        changes = tuple(
            FieldChange(field=name, old=before.get(name), new=after.get(name))
            for name in sorted(before.keys() | after.keys())
            if before.get(name) != after.get(name)
        )
        if changes:
            changed.append(SpecChange(key=key, changes=changes))
    return CatalogDiff(
        added=tuple(spec for key, spec in new_by_key.items() if key not in old_by_key),
        removed=tuple(spec for key, spec in old_by_key.items() if key not in new_by_key),
        changed=tuple(changed),
    )
