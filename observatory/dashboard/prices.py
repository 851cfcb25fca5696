"""Price reads: the catalog in force (searchable), an organization's negotiated overrides, and the models its
calls used that have no price yet."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import BigIntegerField, Case, Count, Max, Q, QuerySet, TextField, Value, When
from django.db.models.functions import Coalesce, NullIf

from billing.models import Price, PriceOverride
from billing.models.prices import CATALOG_START
from billing.queries import spend
from ingest.model_names import canonical_model
from ingest.models import CostStatus, LLMCall
from observatory.access import Scope
from observatory.dashboard.filters import Period
from observatory.models import Organization

MILLION = Decimal(1_000_000)
PAGE_SIZE = 50
MAX_QUERY_LENGTH = 100


def per_million(value: Decimal | None) -> str:
    """A per-token price as dollars per million tokens: at least 2 decimals, no trailing zeros beyond."""
    if value is None:
        return "—"
    amount = (value * MILLION).normalize()
    exponent = amount.as_tuple().exponent
    decimals = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"${amount:,.{decimals}f}"


def calls_per_price(scope: Scope, period: Period) -> dict[int, int]:
    """Price in force (id) → the scope's calls in the range of its model, from the rollups: every price of a model the
    calls used (`gpt-4o` and its snapshots, under the calls' provider) counts that model's calls."""
    used: dict[tuple[str, str], int] = {}
    for row in spend(scope, period.start, period.end, ["provider", "model"]):
        name = (row["provider"], canonical_model(row["model"]))
        if name[1] and row["calls"]:
            used[name] = used.get(name, 0) + int(row["calls"])
    if not used:
        return {}
    counts = {}
    prices = Price.objects.filter(effective_to=None, provider__in={provider for provider, _ in used})
    for price_id, provider, model, key in prices.values_list("id", "provider", "model", "key"):
        calls = used.get((provider, canonical_model(model))) or used.get((provider, canonical_model(key)))
        if calls:
            counts[price_id] = calls
    return counts


def catalog(query: str, used: dict[int, int] | None = None) -> QuerySet[Price]:
    """Prices in force whose model, catalog key or provider contains every word of the query: the models the
    calls used first (`used`, from calls_per_price: most calls first), then the rest by model name."""
    prices = Price.objects.filter(effective_to=None)
    for word in query.split()[:5]:
        prices = prices.filter(Q(model__icontains=word) | Q(key__icontains=word) | Q(provider__icontains=word))
    calls = Case(*(When(pk=pk, then=Value(n)) for pk, n in (used or {}).items()), default=Value(0),
                 output_field=BigIntegerField())
    return prices.annotate(calls_in_range=calls).order_by("-calls_in_range", "model", "provider", "key")


SUGGESTIONS = 20


def model_suggestions(text: str, limit: int = SUGGESTIONS) -> list[str]:
    """Model names in the catalog in force containing every word typed, shortest first: the what-if's target list."""
    prices = Price.objects.filter(effective_to=None).exclude(model="")
    for word in text.split()[:5]:
        prices = prices.filter(model__icontains=word[:MAX_QUERY_LENGTH])
    names = prices.values_list("model", flat=True).distinct()
    return sorted(set(names.order_by()[:500]), key=lambda name: (len(name), name))[:limit]


def effective_date(price: Price) -> datetime | None:
    """When the price took effect; None for the bundled catalog's prices, which carry a placeholder date (they
    apply to every call, however old), not a real one."""
    return None if price.effective_from == CATALOG_START else price.effective_from


def override_terms(override: PriceOverride) -> str:
    """A negotiated rate in words: "12.5% off", or the per-class prices it sets."""
    if override.discount_percent is not None:
        return f"{override.discount_percent.normalize():f}% off"
    classes = (("input", override.input), ("cached input", override.cached_input_read), ("cache write", override.cache_write),
               ("output", override.output), ("reasoning", override.reasoning))
    return ", ".join(f"{name} {per_million(value)} / 1M" for name, value in classes if value is not None) or "list price"


def overrides(organization: Organization) -> list[dict]:
    rows = PriceOverride.objects.filter(organization=organization).order_by("provider", "model_pattern", "effective_from")
    return [{"override": row, "terms": override_terms(row)} for row in rows]


def models_needing_a_price(scope: Scope, period: Period, limit: int = 100) -> list[dict]:
    """Models of the scope's calls in the range priced `unknown_model`, with call counts, most used first."""
    return list(
        LLMCall.objects.filter(scope.q(), cost_status=CostStatus.UNKNOWN_MODEL, start_time__gte=period.start,
                               start_time__lt=period.end)
        .values("provider", model_name=Coalesce(NullIf("response_model", Value("")), "request_model", output_field=TextField()))
        .annotate(calls=Count("id"), last_seen=Max("start_time")).order_by("-calls", "model_name")[:limit]
    )
