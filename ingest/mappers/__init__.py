"""Span -> call mapping: one mapper per instrumentation convention, chosen per span, plus batch selection
that counts each model call once."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from ingest.mappers import (
    anthropic_sdk,
    genai_semconv,
    langfuse,
    litellm,
    logfire,
    mlflow,
    observatory_sdk,
    openinference,
    openlit,
    openllmetry,
    pydantic_ai,
    vercel_ai,
)
from ingest.mappers.duplicates import DUPLICATES_KEY, deduplicate
from ingest.mappers.log_events import ContentFragment, map_log_record, merge_fragments
from ingest.mappers.normalize.errors import HTTP_STATUS_KEYS, error_from_http
from ingest.mappers.normalize.tokens import InvalidSpan
from ingest.mappers.normalize.values import http_code
from ingest.records import CallFields, SpanView

__all__ = [
    "DUPLICATES_KEY",
    "ContentFragment",
    "InvalidSpan",
    "map_log_record",
    "map_span",
    "merge_fragments",
    "select_calls",
]

Mapper = Callable[[SpanView], CallFields | None]

_BY_SCOPE_PREFIX: tuple[tuple[str, Mapper], ...] = (
    (observatory_sdk.SCOPE_NAME, observatory_sdk.map_observatory_sdk),
    (anthropic_sdk.SCOPE_PREFIX, anthropic_sdk.map_anthropic_sdk),
    ("openlit", openlit.map_openlit),
    ("openinference", openinference.map_openinference),
    ("langfuse", langfuse.map_langfuse),
    (pydantic_ai.SCOPE_PREFIX, pydantic_ai.map_pydantic_ai),
    ("logfire", logfire.map_logfire),
    (litellm.SCOPE_PREFIX, litellm.map_litellm),
    (mlflow.SCOPE_PREFIX, mlflow.map_mlflow),
)
_BY_ATTRIBUTES: tuple[tuple[Callable[[SpanView], bool], Mapper], ...] = (
    (openinference.claims, openinference.map_openinference),
    (langfuse.claims, langfuse.map_langfuse),
    (logfire.claims, logfire.map_logfire),
    (openlit.claims, openlit.map_openlit),
    (openllmetry.claims, openllmetry.map_openllmetry),
)


# Attributes that mark a convention whose spans normally come under its own scope (`ai`, `mlflow...`) but may
# be exported through another tracer: the Vercel AI SDK with a custom `experimental_telemetry.tracer`.
_LATE_MARKERS: dict[str, Mapper] = {
    "ai.operationId": vercel_ai.map_vercel_ai,
    "ai.model.provider": vercel_ai.map_vercel_ai,
    "mlflow.spanType": mlflow.map_mlflow,
}


@lru_cache(maxsize=1024)
def _mapper_for_scope(scope_name: str) -> Mapper | None:
    if scope_name == vercel_ai.SCOPE_NAME:
        return vercel_ai.map_vercel_ai
    for prefix, mapper in _BY_SCOPE_PREFIX:
        if scope_name.startswith(prefix):
            return mapper
    return None


def _mapper_for(span: SpanView) -> Mapper:
    mapper = _mapper_for_scope(span.scope_name)
    if mapper is not None:
        return mapper
    for claims, candidate in _BY_ATTRIBUTES:
        if claims(span):
            return candidate
    attrs = span.attributes
    for key in _LATE_MARKERS:  # conventions rarely seen under another tracer name: one dict lookup each
        if key in attrs:
            return _LATE_MARKERS[key]
    return genai_semconv.map_genai


def map_span(span: SpanView) -> CallFields | None:
    """The model call a span reports, or None for trace context (HTTP, DB, agent/chain/tool steps).

    Raises InvalidSpan (with `.span` set) when the span's usage is garbage.
    """
    try:
        return _mapper_for(span)(span)
    except InvalidSpan as exc:
        exc.span = span
        raise


def select_calls(spans: list[SpanView], invalid: list[InvalidSpan] | None = None) -> tuple[list[CallFields], list[SpanView]]:
    """The model calls of a batch, each counted once, and the remaining spans (kept as trace context).

    Spans whose usage is garbage are appended to `invalid` (their InvalidSpan, `.span` set) and left out
    of both lists; without an `invalid` list the first one raises.
    """
    pairs: list[tuple[CallFields, SpanView]] = []
    rest: list[SpanView] = []
    for span in spans:
        try:
            call = _mapper_for(span)(span)
        except InvalidSpan as exc:
            exc.span = span
            if invalid is None:
                raise
            invalid.append(exc)
            continue
        if call is None:
            rest.append(span)
        else:
            pairs.append((call, span))
    if not pairs:
        return [], rest
    _details_from_children(pairs, rest)
    calls, dropped = deduplicate(pairs, spans)
    rest.extend(dropped)
    return calls, rest


def _details_from_children(pairs: list[tuple[CallFields, SpanView]], rest: list[SpanView]) -> None:
    """What a call's non-call child spans know: the HTTP status (openlit's httpx child `POST`, http.status_code)
    and LiteLLM's raw provider response (`raw_gen_ai_request`: the provider's response id and raw usage)."""
    if not rest:
        return
    by_key = {(call.trace_id, call.span_id): (call, span) for call, span in pairs}
    for child in rest:
        if child.parent_span_id is None:
            continue
        found = by_key.get((child.trace_id, child.parent_span_id))
        if found is None:
            continue
        call, span = found
        if call.source == litellm.SOURCE:
            litellm.add_raw_response(call, span, child)
        if call.http_status is None:
            _http_status_from(call, child)


def _http_status_from(call: CallFields, child: SpanView) -> None:
    for key in HTTP_STATUS_KEYS:
        status = http_code(child.attributes.get(key))
        if status is not None:
            call.http_status = status
            if call.status == "error" and call.error_type == "other":
                call.error_type = error_from_http(status) or "other"
            return
