"""OpenLLMetry (Traceloop SDK, opentelemetry-instrumentation-{openai,anthropic,...} 0.x): gen_ai.* plus
gen_ai.is_streaming, gen_ai.usage.reasoning_tokens, association properties and chunk events."""

from __future__ import annotations

import re

from ingest.mappers.genai_semconv import FILTER, build, complete, is_model_call
from ingest.mappers.normalize.finish_reasons import finish_reason
from ingest.mappers.normalize.operations import operation_name
from ingest.mappers.normalize.timing import ttft_from_event
from ingest.mappers.normalize.tokens import INPUT_KEYS, OUTPUT_KEYS, TOTAL_KEYS
from ingest.mappers.normalize.values import as_bool, label
from ingest.records import AttrValue, CallFields, SpanView

SOURCE = "openllmetry"

_MARKERS = (
    "gen_ai.is_streaming",
    "llm.is_streaming",
    "llm.request.type",
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
_USAGE_HINTS = (*INPUT_KEYS, *OUTPUT_KEYS, *TOTAL_KEYS)
# OpenLLMetry's Bedrock instrumentation: gen_ai.system was the model vendor ("anthropic") before it became
# "AWS"; the scope and the `bedrock.*` span names say who served the call.
_BEDROCK_SCOPE = "opentelemetry.instrumentation.bedrock"
_FINISH_KEYS = ("gen_ai.completion.0.finish_reason", "llm.response.finish_reason", "llm.response.stop_reason")
_ASSOCIATION = "traceloop.association.properties."
_CHUNK_EVENTS = ("gen_ai.content.completion.chunk", "llm.content.completion.chunk")
_FILTER = FILTER.extend(
    {"gen_ai.is_streaming", "llm.is_streaming", "llm.request.type", "llm.response.finish_reason", "llm.response.stop_reason"}
)
_UNKNOWN_MODEL = "unknown"  # what the LangChain callback records when it finds no model name


def claims(span: SpanView) -> bool:
    attrs = span.attributes
    for key in _MARKERS:
        if key in attrs:
            return True
    scope = span.scope_name
    return scope.startswith("@traceloop/") or (  # OpenLLMetry JS
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


def _reports_model_call(attrs: dict[str, AttrValue]) -> bool:
    """A task span that still reports one model call: LlamaIndex's LLM spans are `OpenAI.task` spans
    carrying the model and usage (and llm.request.type in later versions)."""
    for key in _USAGE_HINTS:
        if key in attrs:
            return True
    return "llm.request.type" in attrs and "gen_ai.request.model" in attrs


def map_openllmetry(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    kind = attrs.get("traceloop.span.kind")
    if kind is not None:
        kind = label(kind).lower()
        if kind in _NON_CALL_KINDS and (kind != "task" or not _reports_model_call(attrs)):
            return None
    if not is_model_call(attrs) and "llm.request.type" not in attrs:
        return None
    call = build(span, SOURCE, attribute_filter=_FILTER, fallback=_association(attrs))
    if call.request_model == _UNKNOWN_MODEL:
        call.request_model = ""
    if call.response_model == _UNKNOWN_MODEL:
        call.response_model = ""
    if span.scope_name == _BEDROCK_SCOPE or span.name.startswith("bedrock."):
        call.provider = "aws.bedrock"
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
        for key in _FINISH_KEYS:
            value = attrs.get(key)
            if value is not None:
                call.finish_reason = finish_reason(value)
                break
    return complete(call, span)
