"""Observatory's own SDK (scope observatory_sdk): official gen_ai.* names plus observatory.* attribution,
prompt/request hashes and app-cache hits."""

from __future__ import annotations

from ingest.mappers.genai_semconv import build, complete, is_model_call
from ingest.mappers.normalize.values import as_bool, as_decimal, label
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
    get = attrs.get
    if (hit := get("observatory.app_cache_hit")) is not None:
        call.app_cache_hit = as_bool(hit) is True
    if (avoided := get("observatory.cost_avoided_usd")) is not None:
        call.cost_avoided_usd = as_decimal(avoided)
    if (prefix_hash := get("observatory.prompt_prefix_hash")) is not None:
        call.prompt_prefix_hash = label(prefix_hash)
    if (request_hash := get("observatory.request_hash")) is not None:
        call.request_hash = label(request_hash)
    return complete(call, span)
