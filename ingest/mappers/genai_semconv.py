"""The official OpenTelemetry GenAI semantic conventions, current and deprecated names (otel-v2 2.4b0 and
the older 2.3b0 line, any other library emitting gen_ai.*), plus `build`, the base the vendor mappers refine."""

from __future__ import annotations

from ingest.mappers.normalize import (
    CACHE_READ_KEYS,
    CACHE_WRITE_KEYS,
    ENVIRONMENT_KEYS,
    HTTP_STATUS_KEYS,
    INPUT_KEYS,
    MODEL_OPERATIONS,
    NON_CALL_OPERATIONS,
    OUTPUT_KEYS,
    REASONING_KEYS,
    SESSION_KEYS,
    TOTAL_KEYS,
    USER_KEYS,
    AttributeFilter,
    Usage,
    apply_attribution,
    apply_status,
    apply_usage,
    as_bool,
    event_content,
    finish_reason,
    first_label,
    label,
    operation_name,
    provider_from_model,
    provider_name,
    semconv_usage,
    split_content,
    timestamp,
    ttft_from_seconds,
)
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
    """Fill what is still unknown from a `{operation} {model}` span name and from the model name."""
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
    return call


def map_genai(span: SpanView) -> CallFields | None:
    """Map a span following the official conventions (any library not recognized otherwise)."""
    if not is_model_call(span.attributes):
        return None
    return complete(build(span, SOURCE), span)
