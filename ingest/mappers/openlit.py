"""OpenLIT (openlit.instrumentation.*): gen_ai.* with Anthropic input tokens that exclude cache, a client-side
cost, TTFT in gen_ai.server.time_to_first_token, and error spans that carry no gen_ai attributes at all."""

from __future__ import annotations

from decimal import Decimal

from ingest.mappers.genai_semconv import FILTER, build, complete, is_model_call
from ingest.mappers.normalize.finish_reasons import finish_reason
from ingest.mappers.normalize.operations import MODEL_OPERATIONS, operation_name
from ingest.mappers.normalize.providers import provider_name
from ingest.mappers.normalize.timing import ttft_from_seconds
from ingest.mappers.normalize.tokens import first_tokens, semconv_usage
from ingest.mappers.normalize.values import as_bool, as_decimal, label
from ingest.records import CallFields, SpanView

SOURCE = "openlit"
SCOPE_PREFIX = "openlit.instrumentation."

_FILTER = FILTER.extend(
    {
        "gen_ai.client.token.usage",
        "gen_ai.usage.cost",
        "gen_ai.server.time_to_first_token",
        "service.name",
        "telemetry.sdk.name",
        "gen_ai.type",
        "gen_ai.environment",
        "gen_ai.request.is_stream",
        "gen_ai.response.finish_reason",
    }
)
# openlit's instrumentation module names that are not the provider vocabulary
_SCOPE_PROVIDERS = {
    "azure_ai_inference": "azure.ai.inference",
    "google_ai_studio": "gcp.gemini",
    "vertexai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
}


def claims(span: SpanView) -> bool:
    return span.scope_name.startswith("openlit") or span.attributes.get("telemetry.sdk.name") == "openlit"


def _scope_provider(scope: str) -> str:
    if not scope.startswith(SCOPE_PREFIX):
        return ""
    module = scope[len(SCOPE_PREFIX) :]
    return _SCOPE_PROVIDERS.get(module) or provider_name(module)


def _failed_bare_call(span: SpanView) -> bool:
    """openlit records a failed call as `chat error-429` with only a status and exception events."""
    head = span.name.partition(" ")[0]
    return span.status_code == 2 and operation_name(head) in MODEL_OPERATIONS and bool(_scope_provider(span.scope_name))


def map_openlit(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    # OpenLIT before gen_ai.operation.name: gen_ai.type chat / embedding / image / audio / vectordb / framework
    legacy_type = attrs.get("gen_ai.type") if "gen_ai.operation.name" not in attrs else None
    if legacy_type is not None and operation_name(legacy_type) not in MODEL_OPERATIONS:
        return None
    if not is_model_call(attrs) and not _failed_bare_call(span):
        return None
    provider = provider_name(attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system"))
    provider = provider or _scope_provider(span.scope_name)
    usage = semconv_usage(attrs)
    if usage.total is None:
        usage.total = first_tokens(attrs, ("gen_ai.client.token.usage",))
    # openlit 1.45 passes Anthropic's input_tokens through unchanged: it excludes cache reads/writes.
    fallback = None
    if (environment := label(attrs.get("gen_ai.environment"))) and environment != "default":
        fallback = {"environment": environment}
    call = build(
        span,
        SOURCE,
        usage=usage,
        input_excludes_cache=provider == "anthropic",
        attribute_filter=_FILTER,
        fallback=fallback,
    )
    call.provider = call.provider or provider
    if legacy_type is not None:
        # OpenLIT before the official names: gen_ai.type, gen_ai.request.is_stream, gen_ai.response.finish_reason
        call.operation = call.operation or operation_name(legacy_type)
        call.streaming = call.streaming or as_bool(attrs.get("gen_ai.request.is_stream")) is True
        if not call.finish_reason:
            call.finish_reason = finish_reason(attrs.get("gen_ai.response.finish_reason"))
    if label(attrs.get("openai.api.type")) == "responses":
        call.operation = "responses"
    # On non-streaming calls openlit's "time to first token" is the whole latency: keep it for streams only.
    if call.streaming and call.ttft_ms is None:
        call.ttft_ms = ttft_from_seconds(attrs.get("gen_ai.server.time_to_first_token"))
    cost = as_decimal(attrs.get("gen_ai.usage.cost"))
    # A cost of 0 is what openlit reports when its pricing table is missing or lacks the model.
    call.provided_cost_usd = cost if cost is not None and cost != Decimal(0) else None
    return complete(call, span)
