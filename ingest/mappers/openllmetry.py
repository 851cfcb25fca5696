"""OpenLLMetry (Traceloop SDK, opentelemetry-instrumentation-{openai,anthropic,...} 0.x): gen_ai.* plus
gen_ai.is_streaming, gen_ai.usage.reasoning_tokens, association properties and chunk events."""

from __future__ import annotations

import re

from ingest.mappers.genai_semconv import FILTER, build, complete, is_model_call
from ingest.mappers.normalize import as_bool, finish_reason, label, operation_name, ttft_from_event
from ingest.records import AttrValue, CallFields, SpanView

SOURCE = "openllmetry"

_MARKERS = (
    "gen_ai.is_streaming",
    "llm.is_streaming",
    "llm.request.type",
    "gen_ai.usage.total_tokens",
    "llm.usage.total_tokens",
    "gen_ai.openai.api_base",
    "traceloop.span.kind",
    "traceloop.entity.name",
)
# Official contrib instrumentations share the opentelemetry.instrumentation.* scope prefix but carry
# pre-release versions (2.3b0, 0.66b1); OpenLLMetry releases are plain x.y.z.
_RELEASE_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_OFFICIAL_SCOPES = frozenset(
    {
        "opentelemetry.instrumentation.openai_v2",
        "opentelemetry.instrumentation.google_genai",
        "opentelemetry.instrumentation.botocore",
        "opentelemetry.instrumentation.httpx",
        "opentelemetry.instrumentation.requests",
        "opentelemetry.instrumentation.urllib3",
        "opentelemetry.instrumentation.aiohttp_client",
    }
)
_NON_CALL_KINDS = frozenset({"workflow", "task", "agent", "tool"})
_ASSOCIATION = "traceloop.association.properties."
_CHUNK_EVENTS = ("gen_ai.content.completion.chunk", "llm.content.completion.chunk")
_FILTER = FILTER.extend({"gen_ai.is_streaming", "llm.is_streaming", "llm.request.type"})


def claims(span: SpanView) -> bool:
    attrs = span.attributes
    for key in _MARKERS:
        if key in attrs:
            return True
    scope = span.scope_name
    return (
        scope.startswith("opentelemetry.instrumentation.")
        and scope not in _OFFICIAL_SCOPES
        and _RELEASE_VERSION.match(span.scope_version) is not None
    )


def _association(attrs: dict[str, AttrValue]) -> dict[str, str]:
    props: dict[str, str] = {}
    for short, key in (("user", "user_id"), ("session", "session_id")):
        value = label(attrs.get(_ASSOCIATION + key))
        if value:
            props[short] = value
    for name in ("team", "product", "feature", "environment"):
        value = label(attrs.get(_ASSOCIATION + name))
        if value:
            props[name] = value
    return props


def map_openllmetry(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    if label(attrs.get("traceloop.span.kind")).lower() in _NON_CALL_KINDS:
        return None
    if not is_model_call(attrs) and "llm.request.type" not in attrs:
        return None
    call = build(span, SOURCE, attribute_filter=_FILTER, fallback=_association(attrs))
    if not call.operation:
        call.operation = operation_name(attrs.get("llm.request.type"))
    if span.name.endswith(".response"):
        call.operation = "responses"
    streaming = as_bool(attrs.get("gen_ai.is_streaming"))
    if streaming is None:
        streaming = as_bool(attrs.get("llm.is_streaming"))
    call.streaming = call.streaming or streaming is True
    if call.ttft_ms is None and span.events:
        for name in _CHUNK_EVENTS:
            call.ttft_ms = ttft_from_event(span, name)
            if call.ttft_ms is not None:
                call.streaming = True
                break
    if not call.finish_reason:
        call.finish_reason = finish_reason(attrs.get("gen_ai.completion.0.finish_reason"))
    return complete(call, span)
