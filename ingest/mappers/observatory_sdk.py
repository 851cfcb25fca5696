"""Observatory's own SDK (scope observatory_sdk): official gen_ai.* names plus observatory.* attribution,
prompt/request hashes and app-cache hits."""

from __future__ import annotations

from ingest.mappers.genai_semconv import build, complete, is_model_call
from ingest.mappers.normalize import as_bool, as_decimal, label
from ingest.records import CallFields, SpanView

SOURCE = "observatory-sdk"
SCOPE_NAME = "observatory_sdk"


def claims(span: SpanView) -> bool:
    return span.scope_name.startswith(SCOPE_NAME)


def map_observatory_sdk(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    if not is_model_call(attrs):
        return None
    call = build(span, SOURCE)
    call.app_cache_hit = as_bool(attrs.get("observatory.app_cache_hit")) is True
    call.cost_avoided_usd = as_decimal(attrs.get("observatory.cost_avoided_usd"))
    call.prompt_prefix_hash = label(attrs.get("observatory.prompt_prefix_hash"))
    call.request_hash = label(attrs.get("observatory.request_hash"))
    return complete(call, span)
