"""Counting each model call once when several spans report it (double instrumentation, logfire streams).

Four rules, applied to the calls of one batch. An "instrumentation" is a tracer (its scope name): two calls
from one tracer that are not nested are two calls, whatever they have in common.

1. Logfire streams. logfire reports a stream as a request span without usage plus a later
   `streaming response from ...` log-span with the usage, as siblings or as two roots (since 5.4 the request
   span no longer says it streams; the log-span is the marker). Each response span is joined to the latest
   earlier, still unpaired, usage-less and not failed logfire request span of the same request model and
   resource that is in the same trace or, when both are roots, in any trace. The request span is kept (its
   start is the call's start), extended to the response's end.
2. Nesting. A call span whose nearest call ancestor (reached directly or through non-call spans of
   the batch) agrees with it on provider and model family is the same call seen twice (the Anthropic
   SDK's own span under OpenInference's, a framework LLM span over a client span). An ancestor with
   exactly one agreeing descendant call is merged with it; an ancestor with several is a wrapper
   (retries, a chain) and is dropped as trace context while its descendants stay calls, and so is
   an ancestor whose only agreeing descendant is such a wrapper.
3. Response id, the strongest evidence: calls from different instrumentations with the same non-empty
   provider response id (chatcmpl-…, msg_…) and the same provider, whose time windows overlap, are one call
   (OpenLLMetry's `anthropic.chat` and the Anthropic SDK's own span, roots of two traces, output 78 vs 77).
   An id one tracer reports on two calls of the batch is not unique (a server reusing ids) and proves nothing.
4. Twin roots without a shared id. Two calls are twins only when all hold: different instrumentations,
   same provider, same resource identity (service.name, service.instance.id, process.pid, host.name), no
   two different response ids, and either identical non-empty usage (input, cached, cache write, output)
   with overlapping time windows, or — both without usage — the same request model and status with one
   time window inside the other. Two tracers of one library (OpenInference's LangChain span over its
   OpenAI span, roots of two traces) are layers of one process: their windows must nest.

Within a group the kept call prefers usage, then a non-native instrumentation (richer attributes and
content), then the most complete cache/reasoning counts, then the outer (earlier) span. Tokens come from
the member with the most complete cache and reasoning counts, the provider's own SDK on a tie (it reads the
API's usage as sent; OpenLLMetry adds message_start's output token to an Anthropic stream's). The response
model is the most specific one (the dated snapshot over the alias a framework layer repeats), the TTFT the
innermost span's (closest to the wire); other fields the kept call lacks (stream flag, HTTP status,
finish reason, response id, attribution, content) are filled from the others, and the dropped span ids
are listed in `attributes["observatory.duplicate_span_ids"]`. Spans of one call split across two export
requests cannot be joined here.
"""

from __future__ import annotations

from collections import defaultdict

from ingest.mappers import logfire
from ingest.mappers.normalize.tokens import settle_usage
from ingest.records import CallFields, SpanView

DUPLICATES_KEY = "observatory.duplicate_span_ids"
NATIVE_SOURCES = frozenset({"anthropic-sdk"})
MAX_ANCESTOR_HOPS = 64
_FILLED_FIELDS = (
    "provider",
    "operation",
    "request_model",
    "response_model",
    "finish_reason",
    "response_id",
    "team",
    "product",
    "feature",
    "environment",
    "end_user",
    "session",
    "service_name",
    "input_content",
    "output_content",
    "provided_cost_usd",
    "prompt_prefix_hash",
    "request_hash",
)
_TOKEN_FIELDS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")


def deduplicate(pairs: list[tuple[CallFields, SpanView]], spans: list[SpanView]) -> tuple[list[CallFields], list[SpanView]]:
    """(calls counted once, spans no longer counted as calls) for the calls of one batch."""
    if len(pairs) < 2:
        return [call for call, _ in pairs], []
    groups = _Groups(len(pairs))
    preferred: set[int] = set()
    instrumentations = {(call.source, span.scope_name) for call, span in pairs}
    if any(source == logfire.SOURCE for source, _ in instrumentations):
        _pair_logfire_streams(pairs, groups, preferred)
    wrappers = _merge_nested(pairs, spans, groups)
    if len(instrumentations) > 1:
        _merge_same_response(pairs, groups)
        _merge_twins(pairs, groups)
    if not preferred and not wrappers and not groups.merged:
        return [call for call, _ in pairs], []
    members: dict[int, list[int]] = defaultdict(list)
    for index in range(len(pairs)):
        if index not in wrappers:
            members[groups.find(index)].append(index)
    calls: list[CallFields] = []
    dropped: list[SpanView] = [pairs[index][1] for index in sorted(wrappers)]
    for indexes in members.values():
        if len(indexes) == 1:
            calls.append(pairs[indexes[0]][0])
            continue
        keeper = max(indexes, key=lambda i: (i in preferred, _rank(pairs[i])))
        others = [i for i in indexes if i != keeper]
        calls.append(_merge(pairs[keeper], [pairs[i] for i in others]))
        dropped.extend(pairs[i][1] for i in others)
    return calls, dropped


class _Groups:
    """Union-find over call indexes."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))
        self.merged = False

    def find(self, index: int) -> int:
        parent = self.parent
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def union(self, a: int, b: int) -> int:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[root_b] = root_a
            self.merged = True
        return root_a


def _rank(pair: tuple[CallFields, SpanView]) -> tuple[bool, bool, int, int]:
    call, span = pair
    return (call.usage_reported, call.source not in NATIVE_SOURCES, _completeness(call), -span.start_ns)


def _instrumentation(pair: tuple[CallFields, SpanView]) -> tuple[str, str]:
    return pair[0].source, pair[1].scope_name


def _overlap(a: SpanView, b: SpanView) -> bool:
    return a.start_ns < b.end_ns and b.start_ns < a.end_ns


def _completeness(call: CallFields) -> int:
    return (call.cached_input_tokens > 0) + (call.cache_write_tokens > 0) + (call.reasoning_tokens > 0)


def _same_model(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return a == b or a.startswith(b) or b.startswith(a)


def agree(a: CallFields, b: CallFields) -> bool:
    """Provider and model family do not contradict each other (unknown values agree with anything)."""
    if a.provider and b.provider and a.provider != b.provider:
        return False
    if a.operation and b.operation and (a.operation == "embeddings") != (b.operation == "embeddings"):
        return False
    models_a = {m for m in (a.request_model, a.response_model) if m}
    models_b = {m for m in (b.request_model, b.response_model) if m}
    if models_a and models_b:
        return any(_same_model(x, y) for x in models_a for y in models_b)
    return True


def _resource_identity(span: SpanView) -> tuple[str, ...]:
    resource = span.resource
    return (
        str(resource.get("service.name", "")),
        str(resource.get("service.instance.id", "")),
        str(resource.get("process.pid", "")),
        str(resource.get("host.name", "")),
    )


def _pair_logfire_streams(pairs: list[tuple[CallFields, SpanView]], groups: _Groups, preferred: set[int]) -> None:
    requests: list[int] = []
    responses: list[int] = []
    for index, (call, span) in enumerate(pairs):
        if call.source != logfire.SOURCE:
            continue
        if logfire.is_stream_response(span):
            responses.append(index)
        elif not call.usage_reported and call.status != "error":
            requests.append(index)
    if not requests or not responses:
        return
    taken: set[int] = set()
    for response in sorted(responses, key=lambda i: pairs[i][1].end_ns):
        response_call, response_span = pairs[response]
        best = None
        for request in requests:
            if request in taken:
                continue
            request_call, request_span = pairs[request]
            same_place = request_span.trace_id == response_span.trace_id or (
                request_span.parent_span_id is None and response_span.parent_span_id is None
            )
            if (
                same_place
                and request_span.start_ns <= response_span.end_ns
                and _same_model(request_call.request_model, response_call.request_model)
                and _resource_identity(request_span) == _resource_identity(response_span)
                and (best is None or request_span.start_ns > pairs[best][1].start_ns)
            ):
                best = request
        if best is not None:
            taken.add(best)
            groups.union(best, response)
            preferred.add(best)
            request_call = pairs[best][0]
            request_call.duration_ms = max(request_call.duration_ms, (response_span.end_ns - pairs[best][1].start_ns) / 1e6)


def _merge_nested(pairs: list[tuple[CallFields, SpanView]], spans: list[SpanView], groups: _Groups) -> set[int]:
    """Union each call with its nearest agreeing call ancestor; returns wrapper ancestors to drop."""
    if all(span.parent_span_id is None for _, span in pairs):
        return set()
    call_index = {(span.trace_id, span.span_id): index for index, (_, span) in enumerate(pairs)}
    by_key = {(span.trace_id, span.span_id): span for span in spans}
    children: dict[int, list[int]] = defaultdict(list)
    for index, (call, span) in enumerate(pairs):
        ancestor = _nearest_call_ancestor(span, call_index, by_key)
        if ancestor is not None and agree(pairs[ancestor][0], call):
            children[ancestor].append(index)
    wrappers = {ancestor for ancestor, descendants in children.items() if len(descendants) > 1}
    grew = bool(wrappers)
    while grew:  # an ancestor whose only call descendant is a wrapper wraps the same calls
        grown = {
            ancestor for ancestor, descendants in children.items() if ancestor not in wrappers and descendants[0] in wrappers
        }
        wrappers |= grown
        grew = bool(grown)
    for ancestor, descendants in children.items():
        if ancestor not in wrappers:
            groups.union(ancestor, descendants[0])
    return wrappers


def _nearest_call_ancestor(
    span: SpanView, call_index: dict[tuple[str, str], int], by_key: dict[tuple[str, str], SpanView]
) -> int | None:
    trace_id = span.trace_id
    parent_id = span.parent_span_id
    for _ in range(MAX_ANCESTOR_HOPS):
        if parent_id is None:
            return None
        key = (trace_id, parent_id)
        index = call_index.get(key)
        if index is not None:
            return index
        parent = by_key.get(key)
        if parent is None:
            return None
        parent_id = parent.parent_span_id
    return None


def _merge_same_response(pairs: list[tuple[CallFields, SpanView]], groups: _Groups) -> None:
    """Rule 3: one provider response id, one provider, overlapping windows, different instrumentations."""
    by_response: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, (call, _) in enumerate(pairs):
        if call.response_id:
            by_response[(call.provider, call.response_id)].append(index)
    for indexes in by_response.values():
        if len(indexes) < 2:
            continue
        tracers = [_instrumentation(pairs[i]) for i in indexes]
        if len(set(tracers)) < len(tracers):
            continue  # one tracer saw the id twice: the server reuses ids (small random ranges), no evidence
        for position, first in enumerate(indexes):
            for second in indexes[position + 1 :]:
                if _instrumentation(pairs[first]) != _instrumentation(pairs[second]) and _overlap(
                    pairs[first][1], pairs[second][1]
                ):
                    groups.union(first, second)


def _merge_twins(pairs: list[tuple[CallFields, SpanView]], groups: _Groups) -> None:
    """Rule 4: identical usage (or none, same model and status) from two instrumentations of one process."""
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for index, (call, span) in enumerate(pairs):
        if call.usage_reported:
            signature: tuple = (
                call.input_tokens,
                call.cached_input_tokens,
                call.cache_write_tokens,
                call.output_tokens,
            )
        else:
            signature = (call.request_model.lower(), call.status, call.error_type)
        buckets[(call.provider, call.usage_reported, _resource_identity(span), signature)].append(index)
    for key, indexes in buckets.items():
        if len(indexes) < 2 or not key[0]:
            continue
        if len({_instrumentation(pairs[i]) for i in indexes}) < 2:
            continue
        with_usage = key[1]
        if not with_usage and not key[3][0]:
            continue
        ordered = sorted(indexes, key=lambda i: pairs[i][1].start_ns)
        for position, first in enumerate(ordered):
            first_call, first_span = pairs[first]
            for second in ordered[position + 1 :]:
                second_call, second_span = pairs[second]
                if second_span.start_ns >= first_span.end_ns:
                    break
                if _instrumentation(pairs[first]) == _instrumentation(pairs[second]) or groups.find(first) == groups.find(
                    second
                ):
                    continue
                if first_call.response_id and second_call.response_id and first_call.response_id != second_call.response_id:
                    continue  # two responses: two calls
                nested = _contains(first_span, second_span) or _contains(second_span, first_span)
                if nested or (with_usage and first_call.source != second_call.source):
                    groups.union(first, second)


def _contains(outer: SpanView, inner: SpanView) -> bool:
    return outer.start_ns <= inner.start_ns and inner.end_ns <= outer.end_ns


def _more_specific(kept: str, other: str) -> str:
    """`gpt-4o-mini-2024-07-18` over `gpt-4o-mini`: the request span of a logfire stream or a framework layer
    repeats the alias it was asked for."""
    if len(other) > len(kept) and other.lower().startswith(kept.lower()):
        return other
    return kept or other


def _merge(kept: tuple[CallFields, SpanView], others: list[tuple[CallFields, SpanView]]) -> CallFields:
    call = kept[0]
    members = [kept, *others]
    token_source = max(
        members, key=lambda pair: (pair[0].usage_reported, _completeness(pair[0]), pair[0].source in NATIVE_SOURCES)
    )[0]
    if token_source is not call:
        for name in _TOKEN_FIELDS:
            setattr(call, name, getattr(token_source, name))
        call.usage_reported = token_source.usage_reported
    timed = [pair for pair in members if pair[0].ttft_ms is not None]
    if timed:
        call.ttft_ms = max(timed, key=lambda pair: pair[1].start_ns)[0].ttft_ms
    duplicates = list(call.attributes.get(DUPLICATES_KEY) or [])
    for other, span in others:
        call.response_model = _more_specific(call.response_model, other.response_model)
        for name in _FILLED_FIELDS:
            if not getattr(call, name) and getattr(other, name):
                setattr(call, name, getattr(other, name))
        if call.http_status is None:
            call.http_status = other.http_status
        call.streaming = call.streaming or other.streaming
        if other.status == "error":
            call.status = "error"
            if call.error_type in ("", "other"):
                call.error_type = other.error_type
        for key, value in other.attributes.items():
            call.attributes.setdefault(key, value)
        duplicates.append(span.span_id)
    call.attributes[DUPLICATES_KEY] = duplicates
    settle_usage(call)
    return call
