"""Langfuse (scope langfuse-sdk, langfuse.observation.*): usage only inside the JSON usage_details string,
JSON-quoted metadata values, completion_start_time as an ISO timestamp, and no provider attribute."""

from __future__ import annotations

from ingest.mappers.genai_semconv import FILTER, build, complete
from ingest.mappers.normalize.errors import apply_status
from ingest.mappers.normalize.finish_reasons import finish_reason
from ingest.mappers.normalize.providers import provider_from_model, provider_name
from ingest.mappers.normalize.timing import ttft_from_iso
from ingest.mappers.normalize.tokens import Usage, usage_from_object
from ingest.mappers.normalize.values import json_object, label, unquote
from ingest.records import AttrValue, CallFields, SpanView

SOURCE = "langfuse"

_OBSERVATION = "langfuse.observation."
_TRACE_METADATA = "langfuse.trace.metadata."
_OPERATIONS = {"generation": "chat", "embedding": "embeddings"}
_NAME_PROVIDERS = (
    ("azureopenai", "azure.ai.openai"),
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("bedrock", "aws.bedrock"),
    ("vertex", "gcp.vertex_ai"),
    ("gemini", "gcp.gemini"),
    ("mistral", "mistral_ai"),
    ("cohere", "cohere"),
    ("groq", "groq"),
)
_FILTER = FILTER.extend(
    {
        _OBSERVATION + "type",
        _OBSERVATION + "model.name",
        _OBSERVATION + "usage_details",
        _OBSERVATION + "completion_start_time",
        _OBSERVATION + "level",
        _OBSERVATION + "status_message",
        _OBSERVATION + "metadata.finish_reason",
    }
)


def claims(span: SpanView) -> bool:
    return span.scope_name.startswith("langfuse") or _OBSERVATION + "type" in span.attributes


def _provider(span: SpanView, model: str) -> str:
    explicit = provider_name(span.attributes.get("gen_ai.provider.name") or span.attributes.get("gen_ai.system"))
    if explicit:
        return explicit
    name = span.name.lower().replace(" ", "").replace("_", "")
    for fragment, provider in _NAME_PROVIDERS:
        if name.startswith(fragment):
            return provider
    return provider_from_model(model)


def _metadata(attrs: dict[str, AttrValue]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in ("team", "product", "feature", "environment"):
        for prefix in (_OBSERVATION + "metadata.", _TRACE_METADATA):
            value = label(unquote(attrs.get(prefix + name)))
            if value:
                found[name] = value
                break
    environment = label(attrs.get("langfuse.environment"))
    if environment and "environment" not in found:
        found["environment"] = environment
    return found


def map_langfuse(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    operation = _OPERATIONS.get(label(attrs.get(_OBSERVATION + "type")).lower())
    if operation is None:
        return None
    usage_details = json_object(attrs.get(_OBSERVATION + "usage_details"))
    usage = usage_from_object(usage_details, "usage_details") if usage_details else Usage()
    level = label(attrs.get(_OBSERVATION + "level")).upper()
    call = build(span, SOURCE, usage=usage, attribute_filter=_FILTER, fallback=_metadata(attrs))
    if level == "ERROR" or call.status == "error":
        message = attrs.get(_OBSERVATION + "status_message")
        apply_status(call, span, attrs.get("error.type"), extra_message=label(unquote(message)), failed=level == "ERROR")
    model = label(unquote(attrs.get(_OBSERVATION + "model.name")))
    # Langfuse reports one model name: the response model, or the request model when the call failed.
    call.request_model = call.request_model or model
    if call.status == "ok":
        call.response_model = call.response_model or model
    call.provider = _provider(span, model)
    call.operation = operation
    if operation == "chat" and "input_tokens" in usage_details and "prompt_tokens" not in usage_details:
        call.operation = "responses" if call.provider in ("openai", "azure.ai.openai") else operation
    start_time = attrs.get(_OBSERVATION + "completion_start_time")
    if start_time is not None:
        call.ttft_ms = ttft_from_iso(start_time, span.start_ns)
        call.streaming = True
    parameters = json_object(unquote(attrs.get(_OBSERVATION + "model.parameters")))
    if parameters.get("stream") is True:
        call.streaming = True
    streamed_finish = attrs.get(_OBSERVATION + "metadata.finish_reason")
    if streamed_finish is not None:
        call.finish_reason = call.finish_reason or finish_reason(unquote(streamed_finish))
        call.streaming = True
    return complete(call, span)
