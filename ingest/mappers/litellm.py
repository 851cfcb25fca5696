"""LiteLLM's OpenTelemetry callback (`callbacks=["otel"]`, tracer `litellm`): one `litellm_request` span per call.

gen_ai.system is LiteLLM's custom_llm_provider (openai, anthropic, bedrock, vertex_ai, azure, ...), usage is
LiteLLM's OpenAI-shaped usage (prompt_tokens counts Anthropic's cache too), llm.request.type and
gen_ai.operation.name carry the call type (completion, acompletion, embedding, ...), llm.is_streaming is the
string "True"/"False", LiteLLM's own cost is in gen_ai.cost.* (cost_breakdown) and the proxy's key, team
and end user in metadata.*. Cache and reasoning counts are only in metadata.usage_object, LiteLLM's usage
dict written with str() (a Python repr: single quotes, None).

The child `raw_gen_ai_request` span is not a second call: it holds the provider's raw response fields as
llm.<provider>.* (llm.openai.usage / llm.anthropic.usage as Python reprs, llm.<provider>.id the provider's
response id, where gen_ai.response.id may be LiteLLM's own `chatcmpl-<uuid>` for providers it translates).
"""

from __future__ import annotations

from decimal import Decimal

from ingest.mappers.genai_semconv import FILTER, build, complete, is_model_call
from ingest.mappers.normalize.operations import operation_name
from ingest.mappers.normalize.tokens import InvalidSpan, Usage, apply_usage, semconv_usage, usage_from_object
from ingest.mappers.normalize.values import as_bool, as_decimal, json_object, label, text_object
from ingest.records import AttrValue, CallFields, SpanView

SOURCE = "litellm"
SCOPE_PREFIX = "litellm"

# LiteLLM's call types for chat completions (text completions are text_completion / atext_completion)
_CHAT_CALL_TYPES = frozenset({"completion", "acompletion"})
_USAGE_OBJECT = "metadata.usage_object"
_CALL_ID = "litellm.call_id"
_RAW_REQUEST = "raw_gen_ai_request"
_FILTER = FILTER.extend({"llm.is_streaming", "llm.request.type", "gen_ai.cost.total_cost", _USAGE_OBJECT})


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


def _usage(attrs: dict[str, AttrValue]) -> Usage:
    """LiteLLM's usage object for the cache and reasoning counts, the gen_ai.usage.* attributes for the rest."""
    usage = semconv_usage(attrs)
    raw = text_object(attrs.get(_USAGE_OBJECT)) if _USAGE_OBJECT in attrs else {}
    if not raw:
        return usage
    full = usage_from_object(raw, _USAGE_OBJECT)
    full.fill_from(usage)
    return full


def map_litellm(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    if not is_model_call(attrs):
        return None
    call = build(span, SOURCE, usage=_usage(attrs), attribute_filter=_FILTER, fallback=_attribution(attrs))
    if call.response_id and call.response_id == label(attrs.get(_CALL_ID)):
        call.response_id = ""  # a failed call: LiteLLM puts its own call id there
    if not call.operation:
        call_type = label(attrs.get("llm.request.type"))
        call.operation = "chat" if call_type in _CHAT_CALL_TYPES else operation_name(call_type)
    call.streaming = call.streaming or as_bool(attrs.get("llm.is_streaming")) is True
    cost = as_decimal(attrs.get("gen_ai.cost.total_cost"))
    if cost is None and "hidden_params" in attrs:
        cost = as_decimal(json_object(attrs.get("hidden_params")).get("response_cost"))
    call.provided_cost_usd = cost if cost is not None and cost != Decimal(0) else None
    return complete(call, span)


def add_raw_response(call: CallFields, span: SpanView, child: SpanView) -> None:
    """Details from the `raw_gen_ai_request` child span: the provider's own response id, and its raw usage
    when the request span had no usage object to read the cache and reasoning counts from."""
    if child.name != _RAW_REQUEST:
        return
    provider_id = ""
    raw_usage: dict = {}
    for key, value in child.attributes.items():
        if not key.startswith("llm."):
            continue
        if key.endswith(".id") and key.count(".") == 2:
            provider_id = label(value)
        elif key.endswith(".usage") and key.count(".") == 2:
            raw_usage = text_object(value)
    if provider_id:
        call.response_id = provider_id
    if raw_usage and not text_object(span.attributes.get(_USAGE_OBJECT)):
        try:
            usage = usage_from_object(raw_usage, "raw_gen_ai_request usage")
            usage.fill_from(semconv_usage(span.attributes))
        except InvalidSpan:
            return  # garbage in the child: the request span's own counts stand
        apply_usage(call, usage)
