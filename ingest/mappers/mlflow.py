"""MLflow Tracing exported over OTLP (autolog for OpenAI, Anthropic, LangChain, ...): every mlflow.* attribute
value is JSON-encoded (`"\\"CHAT_MODEL\\""`), usage is the JSON object mlflow.chat.tokenUsage
({input_tokens, output_tokens, total_tokens, cache_read_input_tokens, cache_creation_input_tokens}), the
model and provider are mlflow.llm.model / mlflow.llm.provider (3.x) or only inside mlflow.spanInputs.

Only CHAT_MODEL, LLM and EMBEDDING spans are model calls; CHAIN, AGENT, TOOL, RETRIEVER ... are context.
MLflow's Anthropic autolog passes Anthropic's input_tokens through, which excludes the cache.
"""

from __future__ import annotations

from decimal import Decimal

from ingest.mappers.genai_semconv import FILTER, build, complete
from ingest.mappers.normalize.providers import provider_name
from ingest.mappers.normalize.tokens import Usage, first_tokens, semconv_usage
from ingest.mappers.normalize.values import as_decimal, json_object, label, unquote
from ingest.records import AttrValue, CallFields, SpanView

SOURCE = "mlflow"
SCOPE_PREFIX = "mlflow"

_SPAN_TYPE = "mlflow.spanType"
_USAGE = "mlflow.chat.tokenUsage"
_MODEL = "mlflow.llm.model"
_PROVIDER = "mlflow.llm.provider"
_COST = "mlflow.llm.cost"
_CALL_TYPES = {"CHAT_MODEL": "chat", "LLM": "chat", "EMBEDDING": "embeddings"}
_FILTER = FILTER.extend({_SPAN_TYPE, _USAGE, _MODEL, _PROVIDER, _COST, "mlflow.trace.user", "mlflow.trace.session"})


def claims(span: SpanView) -> bool:
    return _SPAN_TYPE in span.attributes or span.scope_name.startswith(SCOPE_PREFIX)


def _text(attrs: dict[str, AttrValue], key: str) -> str:
    return label(unquote(attrs.get(key)))


def _usage(attrs: dict[str, AttrValue], provider: str) -> Usage:
    raw = json_object(attrs.get(_USAGE))
    if not raw:
        return semconv_usage(attrs)
    return Usage(
        input=first_tokens(raw, ("input_tokens",)),
        output=first_tokens(raw, ("output_tokens",)),
        cache_read=first_tokens(raw, ("cache_read_input_tokens",)),
        cache_write=first_tokens(raw, ("cache_creation_input_tokens",)),
        total=first_tokens(raw, ("total_tokens",)),
        input_excludes_cache=provider == "anthropic",
    )


def map_mlflow(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    operation = _CALL_TYPES.get(_text(attrs, _SPAN_TYPE).upper())
    if operation is None:
        return None
    provider = provider_name(_text(attrs, _PROVIDER))
    fallback = {}
    if user := _text(attrs, "mlflow.trace.user"):
        fallback["user"] = user
    if session := _text(attrs, "mlflow.trace.session"):
        fallback["session"] = session
    call = build(span, SOURCE, usage=_usage(attrs, provider), attribute_filter=_FILTER, fallback=fallback)
    call.operation = operation
    call.provider = provider or call.provider
    model = _text(attrs, _MODEL)
    if not model and not call.request_model and "mlflow.spanInputs" in attrs:
        model = label(json_object(attrs.get("mlflow.spanInputs")).get("model"))
    call.request_model = call.request_model or model
    cost = json_object(attrs.get(_COST)).get("total_cost") if _COST in attrs else None
    amount = as_decimal(cost) if cost is not None else None
    call.provided_cost_usd = amount if amount is not None and amount != Decimal(0) else None
    return complete(call, span)
