"""OpenInference (Arize; openinference.instrumentation.*): its own llm.* / embedding.* convention, model in
JSON invocation parameters, flattened messages, TTFT as the `First Token Stream Event` span event."""

from __future__ import annotations

from ingest.mappers.genai_semconv import FILTER, build, complete
from ingest.mappers.normalize.finish_reasons import finish_reason
from ingest.mappers.normalize.providers import provider_name
from ingest.mappers.normalize.response_ids import response_id_in
from ingest.mappers.normalize.timing import ttft_from_event
from ingest.mappers.normalize.tokens import Usage, first_tokens
from ingest.mappers.normalize.values import as_bool, first_label, json_object, label
from ingest.records import CallFields, SpanView

SOURCE = "openinference"

_CALL_KINDS = {"LLM": "chat", "EMBEDDING": "embeddings"}
_SPAN_NAME_OPERATIONS = {"Response": "responses", "Completion": "text_completion"}
_MAX_OUTPUT_READ = 1_000_000  # output.value longer than this is not parsed for the response id
_FILTER = FILTER.extend(
    {
        "openinference.span.kind",
        "llm.provider",
        "llm.system",
        "llm.model_name",
        "llm.request.model_name",
        "llm.response.model_name",
        "embedding.model_name",
        "llm.token_count.prompt",
        "llm.token_count.completion",
        "llm.token_count.total",
        "llm.token_count.prompt_details.cache_read",
        "llm.token_count.prompt_details.cache_write",
        "llm.token_count.completion_details.reasoning",
        "llm.finish_reason",
    }
)


def claims(span: SpanView) -> bool:
    return span.scope_name.startswith("openinference") or "openinference.span.kind" in span.attributes


def _provider(attrs: dict) -> str:
    """llm.provider (who served: openai, azure, aws, google) over llm.system (the model family); Google's
    provider value covers both Gemini APIs, the system `vertexai` says which."""
    provider = provider_name(attrs.get("llm.provider"))
    system = attrs.get("llm.system")
    if provider == "gcp.gen_ai" and system is not None:
        return provider_name(system) or provider
    return provider or provider_name(system)


def _usage(attrs: dict) -> Usage:
    return Usage(
        input=first_tokens(attrs, ("llm.token_count.prompt",)),
        output=first_tokens(attrs, ("llm.token_count.completion",)),
        total=first_tokens(attrs, ("llm.token_count.total",)),
        cache_read=first_tokens(attrs, ("llm.token_count.prompt_details.cache_read",)),
        cache_write=first_tokens(attrs, ("llm.token_count.prompt_details.cache_write",)),
        reasoning=first_tokens(attrs, ("llm.token_count.completion_details.reasoning",)),
    )


def _context(attrs: dict, params: dict) -> dict[str, str]:
    """Attribution from `metadata` (JSON from using_attributes) and the request's own user fields."""
    found: dict[str, str] = {}
    metadata = json_object(attrs.get("metadata"))
    for name in ("team", "product", "feature", "environment"):
        value = label(metadata.get(name))
        if value:
            found[name] = value
    request_meta = params.get("metadata")
    user = label(metadata.get("user_id")) or label(params.get("user"))
    if not user and type(request_meta) is dict:
        user = label(request_meta.get("user_id"))
    if user:
        found["user"] = user
    session = label(metadata.get("session_id"))
    if session:
        found["session"] = session
    return found


def _response_id(attrs: dict) -> str:
    """OpenInference has no response id attribute; the provider's id is inside the JSON `output.value` (the
    response object; LangChain's LLMResult), present while outputs are recorded (the default)."""
    output = attrs.get("output.value")
    if type(output) is not str or len(output) > _MAX_OUTPUT_READ or '"id"' not in output:
        return ""
    return response_id_in(json_object(output))


def map_openinference(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    operation = _CALL_KINDS.get(label(attrs.get("openinference.span.kind")).upper())
    if operation is None:
        return None
    params = json_object(attrs.get("llm.invocation_parameters") or attrs.get("embedding.invocation_parameters"))
    call = build(span, SOURCE, usage=_usage(attrs), attribute_filter=_FILTER, fallback=_context(attrs, params))
    call.operation = _SPAN_NAME_OPERATIONS.get(span.name, operation)
    call.provider = _provider(attrs)
    call.request_model = first_label(attrs, ("llm.request.model_name",)) or label(params.get("model"))
    call.response_model = first_label(attrs, ("llm.response.model_name", "llm.model_name", "embedding.model_name"))
    if call.status == "error" and call.response_model == call.request_model:
        call.response_model = ""
    call.ttft_ms = ttft_from_event(span, "First Token Stream Event") if span.events else None
    call.streaming = as_bool(params.get("stream")) is True or call.ttft_ms is not None
    call.finish_reason = finish_reason(attrs.get("llm.finish_reason"))
    call.response_id = call.response_id or _response_id(attrs)
    return complete(call, span)
