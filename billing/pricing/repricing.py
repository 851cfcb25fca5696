"""Re-pricing stored calls at the prices and overrides now recorded for their start times (asked for, never automatic).

Calls are read a UTC day at a time (one partition) in keyset pages; each page's changes are one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from fnmatch import fnmatchcase

from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.pricing.at_ingest import catalog_cache, cost_of
from ingest.models import LLMCall

COST_FIELDS = ("cost_usd", "cost_status", "price_id", "cost_avoided_usd")
PRICING_INPUTS = (
    "organization_id", "start_time", "provider", "request_model", "response_model", "input_tokens",
    "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "status",
    "provided_cost_usd", "app_cache_hit", "duration_ms",
)
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class RepriceResult:
    examined: int
    changed: int


def day_windows(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """[since, until) cut at UTC midnights, so each window reads one daily partition."""
    windows, start = [], since
    while start < until:
        midnight = datetime.combine(start.astimezone(UTC).date() + timedelta(days=1), time.min, tzinfo=UTC)
        windows.append((start, min(midnight, until)))
        start = windows[-1][1]
    return windows


def call_pages(calls: QuerySet[LLMCall], batch: int) -> Iterator[list[LLMCall]]:
    """`calls` in (start_time, id) order, `batch` rows at a time, each page a fresh query (keyset pagination)."""
    ordered = calls.order_by("start_time", "id")
    page = list(ordered[:batch])
    while page:
        yield page
        last = page[-1]
        after = Q(start_time__gt=last.start_time) | Q(start_time=last.start_time, id__gt=last.id)
        page = list(ordered.filter(after)[:batch])


def model_filter(model: str) -> Q:
    """Calls whose response or request model is `model`; for a shell pattern, those starting like it
    (the pattern itself is checked by `matches_model`)."""
    prefix = _GLOB.split(model, maxsplit=1)[0]
    if prefix == model:
        return Q(response_model=model) | Q(request_model=model)
    return Q(response_model__startswith=prefix) | Q(request_model__startswith=prefix)


def matches_model(call: LLMCall, pattern: str) -> bool:
    return fnmatchcase(call.response_model, pattern) or fnmatchcase(call.request_model, pattern)


def reprice_call(call: LLMCall) -> bool:
    """Set the call's cost to what the catalog says now; True when that changed anything."""
    cost = cost_of(call.organization_id, call, call.start_time)
    new = (cost.cost_usd, cost.cost_status, cost.price_id, cost.cost_avoided_usd)
    if new == tuple(getattr(call, name) for name in COST_FIELDS):
        return False
    call.cost_usd, call.cost_status, call.price_id, call.cost_avoided_usd = new
    return True


def reprice(
    organization_id: int | None,
    since: datetime,
    until: datetime | None = None,
    model: str | None = None,
    batch: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> RepriceResult:
    """Recompute the cost of stored calls that started in [since, until) (all organizations when None),
    optionally only calls of `model` (exact or shell pattern). Changed rows get a new `ingested_at`, which
    marks their hours for the rollup job. `progress(examined, changed)` is called after each UTC day.
    Idempotent: a second run changes nothing."""
    catalog_cache.refresh(force=True)
    calls = LLMCall.objects.all()
    if organization_id is not None:
        calls = calls.filter(organization_id=organization_id)
    if model:
        calls = calls.filter(model_filter(model))
    examined = changed = 0
    for start, end in day_windows(since, until or timezone.now()):
        window = calls.filter(start_time__gte=start, start_time__lt=end)
        day_examined = day_changed = 0
        for page in call_pages(window.only(*PRICING_INPUTS, *COST_FIELDS), batch):
            if model:
                page = [call for call in page if matches_model(call, model)]
            stale = [call for call in page if reprice_call(call)]
            if stale:
                now = timezone.now()
                for call in stale:
                    call.ingested_at = now
                window.bulk_update(stale, [*COST_FIELDS, "ingested_at"], batch_size=1000)
            day_examined += len(page)
            day_changed += len(stale)
        examined += day_examined
        changed += day_changed
        if progress is not None:
            progress(day_examined, day_changed)
    return RepriceResult(examined=examined, changed=changed)
