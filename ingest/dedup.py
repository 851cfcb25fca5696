"""Counting a call once when its spans arrive in different exports (batch boundaries, two libraries exporting on
their own schedules). Within one export, `ingest.mappers.duplicates` already joins them; this finds what it could
not see, among the calls stored since the last run, and merges each group into one stored call.

Evidence, strongest first:

1. The provider's response id (`gen_ai.response.id` and its equivalents): calls of one organization and provider
   with the same id, started within a day of each other, are one call.
2. Parent and child: a call whose parent span is a call of the same trace, provider and canonical model, when that
   parent has no other call child, is the same call seen by a framework and by the client under it.
3. Logfire streams (rule 1 of `ingest.mappers.duplicates`, across exports): logfire's `streaming response from ...`
   log-span (its message template is stored with the call) carries the usage of a request span that may have been
   exported in an earlier or a later batch. It is joined to the latest earlier, still unpaired, usage-less and not
   failed logfire request of the same service and request model, in the same trace or, both being roots, in any
   trace. The request is kept (its start is the call's start), with the response's tokens and cost, the dated
   response model and the response's end.

The kept call is the one with usage, then with the most complete cache and reasoning counts, then the provider's
own instrumentation (it reports what the provider billed), then the earlier start. It keeps its tokens and cost;
fields it lacks (TTFT, stream flag, HTTP status, models, finish reason, attribution, response id) are filled from
the others, its content is kept (or taken from another), and the others are deleted. The kept call's
`ingested_at` moves to now and the hours of every member are returned, so the rollups of those hours are
recomputed: a late duplicate corrects the earlier record instead of adding to it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from ingest.mappers.logfire import SOURCE as LOGFIRE
from ingest.mappers.logfire import STREAM_RESPONSE_PREFIX
from ingest.models import CallContent, LLMCall

NATIVE_SOURCES = frozenset({"anthropic-sdk"})
WINDOW = timedelta(days=1)
FILLED = ("ttft_ms", "http_status", "request_model", "response_model", "model", "finish_reason", "team_id",
          "product_id", "feature", "environment", "end_user", "session", "response_id", "prompt_prefix_hash",
          "request_hash")

SAME_RESPONSE_SQL = """
SELECT n.id, o.id FROM ingest_llmcall n
JOIN ingest_llmcall o ON o.organization_id = n.organization_id AND o.response_id = n.response_id AND o.id <> n.id
     AND o.provider = n.provider AND o.start_time >= n.start_time - %(window)s AND o.start_time <= n.start_time + %(window)s
WHERE n.organization_id = %(org)s AND n.ingested_at > %(since)s AND n.ingested_at <= %(until)s AND n.response_id <> ''
"""

# a new child under a stored (or new) parent, and a new parent over a stored child
PARENT_CHILD_SQL = """
SELECT c.id, p.id FROM ingest_llmcall c
JOIN ingest_llmcall p ON p.organization_id = c.organization_id AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
     AND p.start_time >= c.start_time - %(window)s AND p.start_time <= c.start_time + %(window)s
     AND p.provider = c.provider AND p.model = c.model AND p.model <> ''
WHERE c.organization_id = %(org)s AND c.parent_span_id <> '' AND {new} > %(since)s AND {new} <= %(until)s
  AND NOT EXISTS (SELECT 1 FROM ingest_llmcall s WHERE s.organization_id = p.organization_id AND s.trace_id = p.trace_id
                  AND s.parent_span_id = p.span_id AND s.id <> c.id AND s.provider = p.provider AND s.model = p.model)
"""


def _groups(pairs: Iterable[tuple[int, int]]) -> list[set[int]]:
    parent: dict[int, int] = {}

    def root(item: int) -> int:
        while parent.setdefault(item, item) != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[int, set[int]] = defaultdict(set)
    for item in parent:
        groups[root(item)].add(item)
    return [group for group in groups.values() if len(group) > 1]


def _rank(call: LLMCall) -> tuple:
    completeness = sum(1 for n in (call.cached_input_tokens, call.cache_write_tokens, call.reasoning_tokens) if n)
    return (not call.usage_reported, -completeness, call.source not in NATIVE_SOURCES, call.start_time, call.id)


def _merge(calls: list[LLMCall], kept: LLMCall | None = None) -> LLMCall:
    if kept is None:
        kept, *others = sorted(calls, key=_rank)
    else:
        others = [call for call in calls if call is not kept]
    for field in FILLED:
        if getattr(kept, field) in (None, ""):
            value = next((getattr(o, field) for o in others if getattr(o, field) not in (None, "")), None)
            if value is not None:
                setattr(kept, field, value)
    kept.streaming = kept.streaming or any(o.streaming for o in others)
    duplicates = sorted(o.span_id for o in others)
    kept.attributes = {**kept.attributes, DUPLICATES_KEY: duplicates}
    kept.ingested_at = timezone.now()
    LLMCall.objects.filter(pk=kept.pk, start_time=kept.start_time).update(
        **{field: getattr(kept, field) for field in (*FILLED, "streaming", "attributes", "ingested_at")})
    contents = CallContent.objects.filter(organization_id=kept.organization_id)
    if not contents.filter(trace_id=kept.trace_id, span_id=kept.span_id).exists():
        for other in others:
            moved = contents.filter(trace_id=other.trace_id, span_id=other.span_id).update(
                trace_id=kept.trace_id, span_id=kept.span_id, start_time=kept.start_time)
            if moved:
                break
    for other in others:
        contents.filter(trace_id=other.trace_id, span_id=other.span_id).delete()
        LLMCall.objects.filter(pk=other.pk, start_time=other.start_time).delete()
    return kept


USAGE = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
         "usage_reported", "cost_usd", "cost_status", "price_id", "provided_cost_usd")
DUPLICATES_KEY = "observatory.duplicate_span_ids"


def _is_stream_response(call: LLMCall) -> bool:
    return str(call.attributes.get("logfire.msg_template") or "").startswith(STREAM_RESPONSE_PREFIX)


def _same_model(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return a == b or a.startswith(b) or b.startswith(a)


def _end(call: LLMCall) -> datetime:
    return call.start_time + timedelta(milliseconds=call.duration_ms)


def _logfire_stream_pairs(organization_id: int, since: datetime, until: datetime) -> list[tuple[int, int]]:
    """(request, response) ids of logfire streams whose two spans were stored by different exports."""
    logfire = LLMCall.objects.filter(organization_id=organization_id, source=LOGFIRE)
    new = list(logfire.filter(ingested_at__gt=since, ingested_at__lte=until).values_list("start_time", flat=True))
    if not new:
        return []
    candidates = logfire.filter(start_time__gte=min(new) - WINDOW, start_time__lte=max(new) + WINDOW)
    requests, responses = [], []
    for call in candidates:
        if _is_stream_response(call):
            responses.append(call)
        elif not call.usage_reported and call.status != "error" and not call.attributes.get(DUPLICATES_KEY):
            requests.append(call)
    pairs: list[tuple[int, int]] = []
    taken: set[int] = set()
    for response in sorted(responses, key=_end):
        best = None
        for request in requests:
            if request.id in taken or not (since < request.ingested_at <= until or since < response.ingested_at <= until):
                continue
            same_place = request.trace_id == response.trace_id or (not request.parent_span_id and not response.parent_span_id)
            if (same_place and request.service_name == response.service_name
                    and _end(response) - WINDOW <= request.start_time <= _end(response)
                    and _same_model(request.request_model, response.request_model)
                    and (best is None or request.start_time > best.start_time)):
                best = request
        if best is not None:
            taken.add(best.id)
            pairs.append((best.id, response.id))
    return pairs


def _join_stream(request: LLMCall, response: LLMCall) -> None:
    """The request span is the call; the response log-span brings its usage, cost, answer and end."""
    for field in USAGE:
        setattr(request, field, getattr(response, field))
    if len(response.response_model) > len(request.response_model) and response.response_model.lower().startswith(
            request.response_model.lower()):
        request.response_model = response.response_model
    request.duration_ms = max(request.duration_ms, (_end(response) - request.start_time).total_seconds() * 1000)
    request.streaming = True
    request.attributes = {**response.attributes, **request.attributes}
    LLMCall.objects.filter(pk=request.pk, start_time=request.start_time).update(
        **{field: getattr(request, field) for field in (*USAGE, "response_model", "duration_ms", "streaming", "attributes")})


def merge_late_duplicates(organization_id: int, since: datetime, until: datetime) -> set[datetime]:
    """Merge the duplicate groups touching calls stored in (since, until]; returns the hours whose rollups change."""
    hours: set[datetime] = set()
    for request_id, response_id in _logfire_stream_pairs(organization_id, since, until):
        with transaction.atomic():
            calls = {c.id: c for c in LLMCall.objects.select_for_update().filter(
                organization_id=organization_id, id__in=(request_id, response_id))}
            if len(calls) < 2:
                continue
            request, response = calls[request_id], calls[response_id]
            hours |= {c.start_time.astimezone(UTC).replace(minute=0, second=0, microsecond=0) for c in calls.values()}
            _join_stream(request, response)
            _merge([request, response], kept=request)
    params = {"org": organization_id, "since": since, "until": until, "window": WINDOW}
    with connection.cursor() as cursor:
        pairs: list[tuple[int, int]] = []
        for sql in (SAME_RESPONSE_SQL, PARENT_CHILD_SQL.format(new="c.ingested_at"),
                    PARENT_CHILD_SQL.format(new="p.ingested_at")):
            cursor.execute(sql, params)
            pairs += cursor.fetchall()
    for group in _groups(pairs):
        with transaction.atomic():
            calls = list(LLMCall.objects.select_for_update().filter(organization_id=organization_id, id__in=group))
            if len(calls) < 2:
                continue
            hours |= {c.start_time.astimezone(UTC).replace(minute=0, second=0, microsecond=0) for c in calls}
            _merge(calls)
    return hours
