"""The Anthropic Python SDK's built-in tracing (scope com.anthropic.sdk.python): gen_ai.* with the
non-standard gen_ai.usage.cache_write.input_tokens, anthropic.message.stop_reason and API error types."""

from __future__ import annotations

from ingest.mappers.genai_semconv import build, complete, is_model_call
from ingest.mappers.normalize.finish_reasons import finish_reason
from ingest.records import CallFields, SpanView

SOURCE = "anthropic-sdk"
SCOPE_PREFIX = "com.anthropic"


def claims(span: SpanView) -> bool:
    return span.scope_name.startswith(SCOPE_PREFIX)


def map_anthropic_sdk(span: SpanView) -> CallFields | None:
    if not is_model_call(span.attributes):
        return None
    call = build(span, SOURCE)
    call.provider = call.provider or "anthropic"
    if not call.finish_reason:
        call.finish_reason = finish_reason(span.attributes.get("anthropic.message.stop_reason"))
    return complete(call, span)
