"""MLflow Tracing exported over OTLP (autolog for OpenAI, Anthropic, LangChain, ...), in either of its modes.

Default mode: every mlflow.* attribute value is JSON-encoded (`"\\"CHAT_MODEL\\""`); usage is the JSON object
mlflow.chat.tokenUsage ({input_tokens, output_tokens, total_tokens, cache_read_input_tokens,
cache_creation_input_tokens}), whose input_tokens already holds the cache in 3.x (its total is input + output)
and which has no reasoning count: that is only in the provider's usage inside mlflow.spanOutputs. The request's
keyword arguments are attributes too (`model`, `stream`, JSON-encoded): `model` is the request model, while
mlflow.llm.model is whatever the autolog found (OpenAI: the response snapshot; Anthropic: the request alias),
so the response model is read from mlflow.spanOutputs. Streamed chunks are `mlflow.chunk.item.<n>` events.
Only CHAT_MODEL, LLM and EMBEDDING spans are model calls; CHAIN, AGENT, TOOL, RETRIEVER ... are context.

GenAI semconv mode (MLFLOW_ENABLE_OTEL_GENAI_SEMCONV=true): the same scope, gen_ai.* only (no mlflow.spanType),
mapped by the official conventions, with gen_ai.request.model holding the response snapshot for OpenAI and no
provider attribute there; the request kwargs `model` / `stream` still say what was asked for.
"""

from __future__ import annotations

from decimal import Decimal

from ingest.mappers.genai_semconv import FILTER, build, complete, map_genai
from ingest.mappers.normalize.providers import provider_name
from ingest.mappers.normalize.response_ids import response_id_in
from ingest.mappers.normalize.timing import ttft_from_event
from ingest.mappers.normalize.tokens import Usage, first_tokens, semconv_usage, settle_usage, usage_from_object
from ingest.mappers.normalize.values import as_bool, as_decimal, json_object, label, text_object, unquote
from ingest.records import AttrValue, CallFields, SpanView

SOURCE = "mlflow"
SCOPE_PREFIX = "mlflow"

_SPAN_TYPE = "mlflow.spanType"
_USAGE = "mlflow.chat.tokenUsage"
_MODEL = "mlflow.llm.model"
_PROVIDER = "mlflow.llm.provider"
_COST = "mlflow.llm.cost"
_INPUTS = "mlflow.spanInputs"
_OUTPUTS = "mlflow.spanOutputs"
_REQUEST_MODEL = "model"  # the request's keyword arguments, recorded as attributes
_REQUEST_STREAM = "stream"
_FIRST_CHUNK = "mlflow.chunk.item.0"
_CALL_TYPES = {"CHAT_MODEL": "chat", "LLM": "chat", "EMBEDDING": "embeddings"}
_FILTER = FILTER.extend(
    {_SPAN_TYPE, _USAGE, _MODEL, _PROVIDER, _COST, _REQUEST_MODEL, _REQUEST_STREAM, "mlflow.trace.user", "mlflow.trace.session"}
)


def claims(span: SpanView) -> bool:
    return _SPAN_TYPE in span.attributes or span.scope_name.startswith(SCOPE_PREFIX)


def _text(attrs: dict[str, AttrValue], key: str) -> str:
    return label(unquote(attrs.get(key)))


def _usage(attrs: dict[str, AttrValue], provider: str, outputs: dict) -> Usage:
    """mlflow.chat.tokenUsage, completed by the provider's own usage in the outputs (reasoning tokens)."""
    raw = json_object(attrs.get(_USAGE))
    usage = semconv_usage(attrs) if not raw else Usage(
        input=first_tokens(raw, ("input_tokens",)),
        output=first_tokens(raw, ("output_tokens",)),
        cache_read=first_tokens(raw, ("cache_read_input_tokens",)),
        cache_write=first_tokens(raw, ("cache_creation_input_tokens",)),
        total=first_tokens(raw, ("total_tokens",)),
        # Anthropic's own input_tokens leave the cache out; MLflow 3.x adds it (the total then shows it).
        input_may_exclude_cache=provider == "anthropic",
    )
    provider_usage = outputs.get("usage")
    if type(provider_usage) is dict and provider_usage:
        usage.fill_from(usage_from_object(provider_usage, _OUTPUTS))
    return usage


def _streamed(span: SpanView, inputs: dict) -> tuple[bool, float | None]:
    """(streamed, TTFT in ms): the `stream` request argument, or chunk events whose first one is the TTFT."""
    ttft = ttft_from_event(span, _FIRST_CHUNK) if span.events else None
    stream = as_bool(span.attributes.get(_REQUEST_STREAM))
    if stream is None:
        stream = as_bool(inputs.get("stream"))
    return stream is True or ttft is not None, ttft


def _map_semconv(span: SpanView) -> CallFields | None:
    call = map_genai(span)
    if call is None:
        return None
    call.source = SOURCE
    if requested := _text(span.attributes, _REQUEST_MODEL):
        call.request_model = requested
    streamed, ttft = _streamed(span, {})
    call.streaming = call.streaming or streamed
    call.ttft_ms = call.ttft_ms if call.ttft_ms is not None else ttft
    settle_usage(call)
    return call


def map_mlflow(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    if _SPAN_TYPE not in attrs:
        return _map_semconv(span)
    operation = _CALL_TYPES.get(_text(attrs, _SPAN_TYPE).upper())
    if operation is None:
        return None
    provider = provider_name(_text(attrs, _PROVIDER))
    inputs = json_object(attrs.get(_INPUTS)) if _INPUTS in attrs else {}
    outputs = text_object(attrs.get(_OUTPUTS)) if _OUTPUTS in attrs else {}
    fallback = {}
    if user := _text(attrs, "mlflow.trace.user"):
        fallback["user"] = user
    if session := _text(attrs, "mlflow.trace.session"):
        fallback["session"] = session
    call = build(span, SOURCE, usage=_usage(attrs, provider, outputs), attribute_filter=_FILTER, fallback=fallback)
    call.operation = operation
    call.provider = provider or call.provider
    found_model = _text(attrs, _MODEL)
    call.request_model = (
        _text(attrs, _REQUEST_MODEL) or label(inputs.get("model")) or call.request_model or found_model
    )
    call.response_model = label(outputs.get("model")) or (found_model if found_model != call.request_model else "")
    call.response_id = call.response_id or response_id_in(outputs)
    call.streaming, call.ttft_ms = _streamed(span, inputs)
    cost = json_object(attrs.get(_COST)).get("total_cost") if _COST in attrs else None
    amount = as_decimal(cost) if cost is not None else None
    call.provided_cost_usd = amount if amount is not None and amount != Decimal(0) else None
    return complete(call, span)
