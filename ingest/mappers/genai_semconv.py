"""The official OpenTelemetry GenAI semantic conventions, current and deprecated names (otel-v2 2.4b0 and
the older 2.3b0 line, any other library emitting gen_ai.*), plus `build`, the base the vendor mappers refine."""

from __future__ import annotations

from ingest.mappers.normalize.attribute_filter import AttributeFilter
from ingest.mappers.normalize.attribution import ENVIRONMENT_KEYS, SESSION_KEYS, USER_KEYS, apply_attribution
from ingest.mappers.normalize.content import event_content, split_content
from ingest.mappers.normalize.errors import HTTP_STATUS_KEYS, apply_status
from ingest.mappers.normalize.finish_reasons import finish_reason
from ingest.mappers.normalize.operations import MODEL_OPERATIONS, NON_CALL_OPERATIONS, STREAMING_OPERATIONS, operation_name
from ingest.mappers.normalize.providers import provider_from_model, provider_name
from ingest.mappers.normalize.response_ids import RESPONSE_ID_KEY, provider_from_response_id
from ingest.mappers.normalize.timing import timestamp, ttft_from_seconds
from ingest.mappers.normalize.tokens import (
    CACHE_READ_KEYS,
    CACHE_WRITE_KEYS,
    INPUT_KEYS,
    OUTPUT_KEYS,
    REASONING_KEYS,
    TOTAL_KEYS,
    Usage,
    apply_usage,
    semconv_usage,
    settle_usage,
    token_count,
    usage_from_object,
)
from ingest.mappers.normalize.values import as_bool, as_seconds, first_label, json_object, label
from ingest.records import AttrValue, CallFields, SpanView

SOURCE = "otel-genai"

PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system")
REQUEST_MODEL_KEY = "gen_ai.request.model"
RESPONSE_MODEL_KEY = "gen_ai.response.model"
FINISH_KEYS = ("gen_ai.response.finish_reasons",)

# Attributes whose value becomes a CallFields column; they leave `attributes`.
CONSUMED = frozenset(
    {
        *PROVIDER_KEYS,
        REQUEST_MODEL_KEY,
        RESPONSE_MODEL_KEY,
        *INPUT_KEYS,
        *OUTPUT_KEYS,
        *TOTAL_KEYS,
        *CACHE_READ_KEYS,
        *CACHE_WRITE_KEYS,
        *REASONING_KEYS,
        *USER_KEYS,
        *SESSION_KEYS,
        *HTTP_STATUS_KEYS,
        *ENVIRONMENT_KEYS,
        "gen_ai.operation.name",
        "gen_ai.request.stream",
        "gen_ai.response.time_to_first_chunk",
        "error.type",
    }
)
FILTER = AttributeFilter(CONSUMED)

_CALL_HINTS = (REQUEST_MODEL_KEY, RESPONSE_MODEL_KEY, *INPUT_KEYS, *OUTPUT_KEYS)


def is_model_call(attrs: dict[str, AttrValue]) -> bool:
    """A model call: a model operation, or no operation but a model or usage attribute."""
    operation = attrs.get("gen_ai.operation.name")
    if operation is not None:
        name = operation_name(operation)
        if name in MODEL_OPERATIONS:
            return True
        if name in NON_CALL_OPERATIONS:
            return False
    for key in _CALL_HINTS:
        if key in attrs:
            return True
    return False


def build(
    span: SpanView,
    source: str,
    *,
    usage: Usage | None = None,
    input_excludes_cache: bool = False,
    attribute_filter: AttributeFilter = FILTER,
    fallback: dict[str, str] | None = None,
) -> CallFields:
    """A call from the gen_ai.* attributes every convention shares; mappers then refine it."""
    attrs = span.attributes
    get = attrs.get
    start = span.start_ns
    keep, content = attribute_filter.split(attrs)
    response_id = get(RESPONSE_ID_KEY)
    call = CallFields(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        start_time=timestamp(start),
        duration_ms=(span.end_ns - start) / 1e6,
        provider=provider_name(first_label(attrs, PROVIDER_KEYS)),
        operation=operation_name(get("gen_ai.operation.name")),
        request_model=label(get(REQUEST_MODEL_KEY)),
        response_model=label(get(RESPONSE_MODEL_KEY)),
        response_id="" if response_id is None else label(response_id),
        source=source,
        source_version=span.scope_version,
        attributes=keep,
    )
    apply_usage(call, semconv_usage(attrs) if usage is None else usage, input_excludes_cache=input_excludes_cache)
    stream = get("gen_ai.request.stream")
    call.streaming = stream is True or (stream is not None and as_bool(stream) is True)
    ttft = get("gen_ai.response.time_to_first_chunk")
    if ttft is not None:
        call.ttft_ms = ttft_from_seconds(ttft)
    finish = get("gen_ai.response.finish_reasons")
    if finish is not None:
        call.finish_reason = finish_reason(finish)
    apply_status(call, span, get("error.type"))
    apply_attribution(call, span, fallback)
    if content:
        call.input_content, call.output_content = split_content(content)
    if span.events and (call.input_content is None or call.output_content is None):
        prompt, completion = event_content(span)
        call.input_content = call.input_content or prompt
        call.output_content = call.output_content or completion
    return call


def complete(call: CallFields, span: SpanView) -> CallFields:
    """Fill what is still unknown from a `{operation} {model}` span name and from the model name (or the
    response id's shape); an OpenAI call to an Azure endpoint is Azure OpenAI; a stream of zero counts
    reported no usage."""
    if not call.operation or not call.request_model:
        head, _, tail = span.name.partition(" ")
        named = operation_name(head)
        if named in MODEL_OPERATIONS:
            call.operation = call.operation or named
            if not call.request_model and tail and " " not in tail:
                call.request_model = tail[:512]
        call.operation = call.operation or "chat"
    if not call.provider:
        call.provider = provider_from_model(call.response_model or call.request_model)
        if not call.provider and call.response_id:
            call.provider = provider_from_response_id(call.response_id)
    elif call.provider == "openai" and _azure_endpoint(span.attributes):
        call.provider = "azure.ai.openai"  # the OpenAI client pointed at Azure: instrumentations still say openai
    if call.streaming:
        settle_usage(call)
    return call


def _azure_endpoint(attrs: dict[str, AttrValue]) -> bool:
    host = attrs.get("server.address")
    if host is None:
        host = attrs.get("gen_ai.openai.api_base")  # OpenLLMetry
    return type(host) is str and ".azure.com" in host


# Semantic Kernel before it took the official names: gen_ai.response.{prompt,completion}_tokens, -1 = unknown.
_SK_LEGACY_USAGE = ("gen_ai.response.prompt_tokens", "gen_ai.response.completion_tokens")
_STRANDS = "strands-agents"
_ADK = "gcp.vertex.agent"
_ADK_RESPONSE = "gcp.vertex.agent.llm_response"
_ADK_SESSION = "gcp.vertex.agent.session_id"
_FILTER_GENAI = FILTER.extend({*_SK_LEGACY_USAGE, "gen_ai.response.finish_reason", _ADK_SESSION})


def _sk_legacy_usage(attrs: dict[str, AttrValue]) -> Usage:
    counts = []
    for key in _SK_LEGACY_USAGE:
        value = attrs.get(key)
        counts.append(None if value is None or value == -1 or value == "-1" else token_count(value, key))
    return Usage(input=counts[0], output=counts[1])


def _adk_usage(attrs: dict[str, AttrValue], usage: Usage) -> Usage:
    """Google ADK reports candidates (no thoughts) as output; its llm_response JSON has the whole usage_metadata."""
    raw = attrs.get(_ADK_RESPONSE)
    if type(raw) is not str or "usage_metadata" not in raw:
        return usage
    metadata = json_object(raw).get("usage_metadata")
    if type(metadata) is not dict or not metadata:
        return usage
    full = usage_from_object(metadata, _ADK_RESPONSE)
    full.fill_from(usage)
    return full


def map_genai(span: SpanView) -> CallFields | None:
    """Map a span following the official conventions (any library not recognized otherwise).

    Also the frameworks that emit them with quirks: AWS Strands Agents (gen_ai.system `strands-agents`,
    TTFT in milliseconds in gen_ai.server.time_to_first_token), Google ADK (`gcp.vertex.agent`, usage
    JSON in gcp.vertex.agent.llm_response), Semantic Kernel (legacy usage names), Spring AI, Azure AI
    Inference.
    """
    attrs = span.attributes
    get = attrs.get
    sk_legacy = _SK_LEGACY_USAGE[0] in attrs
    if not sk_legacy and not is_model_call(attrs):
        return None
    system = get("gen_ai.system") or get("gen_ai.provider.name")
    usage = semconv_usage(attrs)
    fallback = None
    if sk_legacy and not usage.reported():
        usage = _sk_legacy_usage(attrs)
    elif system == _ADK:
        usage = _adk_usage(attrs, usage)
        if session := label(get(_ADK_SESSION)):
            fallback = {"session": session}
    call = build(span, SOURCE, usage=usage, attribute_filter=_FILTER_GENAI, fallback=fallback)
    operation = get("gen_ai.operation.name")
    if type(operation) is str and operation in STREAMING_OPERATIONS:
        call.streaming = True  # Semantic Kernel's chat.streaming_completions
    if not call.finish_reason and (finish := get("gen_ai.response.finish_reason")) is not None:
        call.finish_reason = finish_reason(finish)  # Semantic Kernel: singular name, `["Stop"]`
    if system == _STRANDS and call.ttft_ms is None:
        # Strands records the model's timeToFirstByteMs here: milliseconds, unlike OpenLIT's seconds.
        ttft = as_seconds(attrs.get("gen_ai.server.time_to_first_token"))
        if ttft is not None:
            call.ttft_ms = ttft
            call.streaming = True
    return complete(call, span)
