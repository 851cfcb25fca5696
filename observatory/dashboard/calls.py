"""The calls explorer and a call's page: filtered raw calls paged by keyset, a trace as a tree of spans,
and how a call's price adds up line by line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.http import Http404

from billing.models import Price
from billing.pricing.at_ingest import usage_of
from billing.pricing.calls import PriceBreakdown, implausibility, price_call
from billing.pricing.rows import spec_from_price
from ingest.models import CallContent, CostStatus, LLMCall, TraceSpan
from observatory.access import Scope, Viewer
from observatory.dashboard.filters import CallFilters, Period, decode_cursor, encode_cursor
from observatory.dashboard.prices import per_million

PAGE_SIZE = 50
TRACE_LIMIT = 500


def filtered_calls(scope: Scope, period: Period, filters: CallFilters) -> QuerySet[LLMCall]:
    """The scope's calls in the range matching the filters, newest first."""
    calls = LLMCall.objects.filter(scope.q(), start_time__gte=period.start, start_time__lt=period.end)
    if filters.team:
        calls = calls.filter(team__slug=filters.team)
    if filters.product:
        calls = calls.filter(product__slug=filters.product)
    if filters.model:
        calls = calls.filter(Q(model=filters.model) | Q(response_model=filters.model) | Q(request_model=filters.model))
    if filters.status:
        calls = calls.filter(status=filters.status)
    if filters.user:
        calls = calls.filter(end_user=filters.user)
    if filters.session:
        calls = calls.filter(session=filters.session)
    if filters.feature:
        calls = calls.filter(feature=filters.feature)
    if filters.cost_status:
        calls = calls.filter(cost_status=filters.cost_status)
    return calls.select_related("team", "product").order_by("-start_time", "-id")


@dataclass(frozen=True)
class CallPage:
    calls: list[LLMCall]
    next_cursor: str | None


def page_after(calls: QuerySet[LLMCall], cursor: str, size: int = PAGE_SIZE) -> CallPage:
    """One page of `calls` after the cursor (keyset on start_time, id: stable while new calls arrive)."""
    position = decode_cursor(cursor) if cursor else None
    if position is not None:
        start_time, call_id = position
        calls = calls.filter(Q(start_time__lt=start_time) | Q(start_time=start_time, id__lt=call_id))
    rows = list(calls[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return CallPage(calls=rows, next_cursor=encode_cursor(rows[-1].start_time, rows[-1].id) if more else None)


def call_or_404(scope: Scope, trace_id: str, span_id: str) -> LLMCall:
    call = LLMCall.objects.filter(scope.q(), trace_id=trace_id, span_id=span_id).select_related("team", "product").first()
    if call is None:
        raise Http404("No such call.")
    return call


@dataclass(frozen=True)
class TraceNode:
    """One span of a trace as drawn: indentation depth and its bar's position in percent of the trace."""

    span_id: str
    name: str
    start_time: datetime
    duration_ms: float
    status: str
    depth: int
    offset_pct: float
    width_pct: float
    call: LLMCall | None


def _name(item: LLMCall | TraceSpan) -> str:
    if isinstance(item, LLMCall):
        return f"{item.operation or 'call'} {item.response_model or item.model_name}".strip()
    return item.name or item.span_id


def trace_tree(items: Sequence[LLMCall | TraceSpan]) -> list[TraceNode]:
    """Spans in depth-first order, children by start time; a span whose parent is missing is a root."""
    by_id: dict[str, LLMCall | TraceSpan] = {}
    for item in sorted(items, key=lambda i: i.start_time):
        by_id.setdefault(item.span_id, item)
    if not by_id:
        return []
    children: dict[str, list[str]] = {}
    roots = []
    for span_id, item in by_id.items():
        parent = item.parent_span_id
        if parent and parent in by_id and parent != span_id:
            children.setdefault(parent, []).append(span_id)
        else:
            roots.append(span_id)
    begin = min(item.start_time for item in by_id.values())
    finish = max(item.start_time + timedelta(milliseconds=item.duration_ms) for item in by_id.values())
    length_ms = max((finish - begin) / timedelta(milliseconds=1), 0.001)
    nodes: list[TraceNode] = []
    seen: set[str] = set()
    # Roots first; spans caught in a parent cycle (bad input) follow, each cycle drawn from its earliest span.
    for start in [*roots, *by_id]:
        stack = [(start, 0)]
        while stack:
            span_id, depth = stack.pop()
            if span_id in seen:
                continue
            seen.add(span_id)
            item = by_id[span_id]
            offset = (item.start_time - begin) / timedelta(milliseconds=1)
            nodes.append(TraceNode(
                span_id=span_id, name=_name(item), start_time=item.start_time, duration_ms=item.duration_ms,
                status=item.status, depth=depth, offset_pct=round(100 * offset / length_ms, 2),
                width_pct=round(max(100 * item.duration_ms / length_ms, 0.5), 2),
                call=item if isinstance(item, LLMCall) else None,
            ))
            stack.extend((child, depth + 1) for child in reversed(children.get(span_id, [])))
    return nodes


def trace_of(viewer: Viewer, call: LLMCall) -> list[TraceNode]:
    """The call's trace as the viewer may read it: the calls and context spans with the same trace id, each kept to
    the viewer's teams (observatory.access) — another team's span names and attributes never reach the page."""
    calls = viewer.readable(LLMCall.objects.filter(trace_id=call.trace_id)).order_by("start_time")
    spans = viewer.readable(TraceSpan.objects.filter(trace_id=call.trace_id)).order_by("start_time")
    return trace_tree([*calls[:TRACE_LIMIT], *spans[:TRACE_LIMIT]])


def spans_outside(viewer: Viewer, call: LLMCall) -> int:
    """How many calls and spans of the call's trace the viewer may not read (other teams', or no team's): a number
    for a placeholder, so the tree stays understandable without saying anything else about them."""
    return (viewer.unreadable_count(LLMCall.objects.filter(trace_id=call.trace_id))
            + viewer.unreadable_count(TraceSpan.objects.filter(trace_id=call.trace_id)))


@dataclass(frozen=True)
class PriceLineView:
    token_class: str
    tokens: int
    per_million: str
    amount: Decimal


@dataclass(frozen=True)
class PriceView:
    """A call's cost recomputed from the catalog price it was priced with."""

    price: Price
    breakdown: PriceBreakdown
    lines: list[PriceLineView]

    def matches(self, recorded: Decimal | None) -> bool:
        return recorded is not None and recorded == self.breakdown.total


def price_view(call: LLMCall) -> PriceView | None:
    price = Price.objects.filter(pk=call.price_id).first() if call.price_id else None
    if price is None:
        return None
    breakdown = price_call(usage_of(call), spec_from_price(price))
    lines = [PriceLineView(line.token_class.replace("_", " "), line.tokens, per_million(line.unit_price), line.amount)
             for line in breakdown.lines]
    return PriceView(price=price, breakdown=breakdown, lines=lines)


def implausible_values(call: LLMCall, price: PriceView | None) -> str | None:
    """What makes a call's values implausible, in words (as billing.pricing.calls.implausibility decided at ingest)."""
    if call.cost_status != CostStatus.IMPLAUSIBLE:
        return None
    spec = spec_from_price(price.price) if price is not None else None
    return implausibility(call.input_tokens, call.output_tokens, call.duration_ms, spec) or "values that cannot be real"


def content_of(call: LLMCall) -> CallContent | None:
    return CallContent.objects.filter(organization_id=call.organization_id, trace_id=call.trace_id, span_id=call.span_id,
                                      start_time=call.start_time).first()
