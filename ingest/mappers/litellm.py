"""LiteLLM's OpenTelemetry callback (`callbacks=["otel"]`, tracer `litellm`): one `litellm_request` span per call.

gen_ai.system is LiteLLM's custom_llm_provider (openai, anthropic, bedrock, vertex_ai, azure, ...), usage is
LiteLLM's OpenAI-shaped usage (prompt_tokens counts Anthropic's cache too), llm.request.type and
gen_ai.operation.name carry the call type (completion, acompletion, embedding, ...), llm.is_streaming is the
string "True"/"False", LiteLLM's own cost is in gen_ai.cost.* (cost_breakdown) and the proxy's key, team
and end user in metadata.*. The child `raw_gen_ai_request` span (llm.<provider>.* request fields) is not
a second call.
"""

from __future__ import annotations

from decimal import Decimal

from ingest.mappers.genai_semconv import FILTER, build, complete, is_model_call
from ingest.mappers.normalize.operations import operation_name
from ingest.mappers.normalize.values import as_bool, as_decimal, json_object, label
from ingest.records import AttrValue, CallFields, SpanView

SOURCE = "litellm"
SCOPE_PREFIX = "litellm"

# LiteLLM's call types for chat completions (text completions are text_completion / atext_completion)
_CHAT_CALL_TYPES = frozenset({"completion", "acompletion"})
_FILTER = FILTER.extend({"llm.is_streaming", "llm.request.type", "gen_ai.cost.total_cost"})


def claims(span: SpanView) -> bool:
    return span.scope_name.startswith(SCOPE_PREFIX)


def _attribution(attrs: dict[str, AttrValue]) -> dict[str, str]:
    found: dict[str, str] = {}
    user = label(attrs.get("metadata.user_api_key_end_user_id"))
    if user:
        found["user"] = user
    team = label(attrs.get("metadata.user_api_key_team_alias")) or label(attrs.get("metadata.user_api_key_team_id"))
    if team:
        found["team"] = team
    return found


def map_litellm(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    if not is_model_call(attrs):
        return None
    call = build(span, SOURCE, attribute_filter=_FILTER, fallback=_attribution(attrs))
    if not call.operation:
        call_type = label(attrs.get("llm.request.type"))
        call.operation = "chat" if call_type in _CHAT_CALL_TYPES else operation_name(call_type)
    call.streaming = call.streaming or as_bool(attrs.get("llm.is_streaming")) is True
    cost = as_decimal(attrs.get("gen_ai.cost.total_cost"))
    if cost is None and "hidden_params" in attrs:
        cost = as_decimal(json_object(attrs.get("hidden_params")).get("response_cost"))
    call.provided_cost_usd = cost if cost is not None and cost != Decimal(0) else None
    return complete(call, span)
