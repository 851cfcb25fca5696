"""Vercel AI SDK telemetry (`experimental_telemetry`, tracer `ai`): ai.* attributes, gen_ai.* on the inner spans.

Only the provider-call spans (`ai.generateText.doGenerate`, `ai.streamText.doStream`, `...Object.do*`,
`ai.embed*.doEmbed`) are model calls; the outer `ai.generateText` / `ai.streamText` spans repeat the
(summed) usage of their steps and are trace context. Usage names changed across major versions:
promptTokens / completionTokens (3.x-4.x), inputTokens / outputTokens / cachedInputTokens /
reasoningTokens (5.x), inputTokenDetails / outputTokenDetails (6.x). Before 6.x the Anthropic and
Bedrock providers reported input tokens without the cache, and cache writes (and, in 4.x, OpenAI cache
reads) only inside the JSON ai.response.providerMetadata.
"""

from __future__ import annotations

from ingest.mappers.genai_semconv import FILTER, build, complete
from ingest.mappers.normalize.finish_reasons import finish_reason
from ingest.mappers.normalize.providers import provider_name
from ingest.mappers.normalize.timing import ttft_from_event
from ingest.mappers.normalize.tokens import Usage, first_tokens, usage_from_object
from ingest.mappers.normalize.values import as_seconds, json_object, label
from ingest.records import AttrValue, CallFields, SpanView

SOURCE = "vercel-ai"
SCOPE_NAME = "ai"

# ai.operationId of the spans that are one provider call: (operation, streamed)
_MODEL_CALLS = {
    "ai.generateText.doGenerate": ("chat", False),
    "ai.streamText.doStream": ("chat", True),
    "ai.generateObject.doGenerate": ("chat", False),
    "ai.streamObject.doStream": ("chat", True),
    "ai.embed.doEmbed": ("embeddings", False),
    "ai.embedMany.doEmbed": ("embeddings", False),
}
_INPUT = (
    "ai.usage.inputTokens",
    "ai.usage.promptTokens",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "ai.usage.tokens",
)
_OUTPUT = ("ai.usage.outputTokens", "ai.usage.completionTokens", "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
_TOTAL = ("ai.usage.totalTokens",)
_REASONING = ("ai.usage.outputTokenDetails.reasoningTokens", "ai.usage.reasoningTokens")
_CACHE_READ = ("ai.usage.inputTokenDetails.cacheReadTokens", "ai.usage.cachedInputTokens")
_CACHE_WRITE = ("ai.usage.inputTokenDetails.cacheWriteTokens",)
_NO_CACHE = "ai.usage.inputTokenDetails.noCacheTokens"  # 6.x: inputTokens is then the total
_PROVIDER_METADATA = "ai.response.providerMetadata"
_METADATA = "ai.telemetry.metadata."
_FILTER = FILTER.extend(
    {
        "ai.operationId",
        "operation.name",
        "ai.model.id",
        "ai.model.provider",
        "ai.response.model",
        "ai.response.finishReason",
        "ai.finishReason",
        "ai.response.msToFirstChunk",
        "ai.usage.inputTokens",
        "ai.usage.outputTokens",
        "ai.usage.promptTokens",
        "ai.usage.completionTokens",
        "ai.usage.totalTokens",
        "ai.usage.tokens",
        "ai.usage.reasoningTokens",
        "ai.usage.cachedInputTokens",
        "ai.usage.inputTokenDetails.noCacheTokens",
        "ai.usage.inputTokenDetails.cacheReadTokens",
        "ai.usage.inputTokenDetails.cacheWriteTokens",
        "ai.usage.outputTokenDetails.textTokens",
        "ai.usage.outputTokenDetails.reasoningTokens",
    }
)
_ATTRIBUTION = (
    ("user", ("userId", "user_id", "user", "endUserId")),
    ("session", ("sessionId", "session_id", "conversationId")),
    ("team", ("team",)),
    ("product", ("product",)),
    ("feature", ("feature",)),
    ("environment", ("environment",)),
)


def claims(span: SpanView) -> bool:
    attrs = span.attributes
    return span.scope_name == SCOPE_NAME or "ai.operationId" in attrs or "ai.model.provider" in attrs


def _attribution(attrs: dict[str, AttrValue]) -> dict[str, str]:
    """experimental_telemetry.metadata: ai.telemetry.metadata.<key>, keys chosen by the application."""
    found: dict[str, str] = {}
    for name, keys in _ATTRIBUTION:
        for key in keys:
            value = label(attrs.get(_METADATA + key))
            if value:
                found[name] = value
                break
    return found


def _usage(attrs: dict[str, AttrValue], provider: str) -> Usage:
    usage = Usage(
        input=first_tokens(attrs, _INPUT),
        output=first_tokens(attrs, _OUTPUT),
        cache_read=first_tokens(attrs, _CACHE_READ),
        cache_write=first_tokens(attrs, _CACHE_WRITE),
        reasoning=first_tokens(attrs, _REASONING),
        total=first_tokens(attrs, _TOTAL),
    )
    if _NO_CACHE in attrs:
        return usage  # 6.x: inputTokens counts cache reads and writes, every class is an attribute
    metadata = json_object(attrs.get(_PROVIDER_METADATA)) if _PROVIDER_METADATA in attrs else {}
    if "anthropic" in provider:
        # anthropic.messages, vertex.anthropic.messages: inputTokens is Anthropic's uncached input_tokens
        usage.input_excludes_cache = True
        anthropic = metadata.get("anthropic")
        if type(anthropic) is dict:
            raw = anthropic.get("usage")
            if type(raw) is dict and raw:  # 5.x keeps the provider's own usage object
                exact = usage_from_object(raw, _PROVIDER_METADATA)
                exact.fill_from(usage)
                exact.input_excludes_cache = True
                return exact
            if usage.cache_write is None:
                usage.cache_write = first_tokens(anthropic, ("cacheCreationInputTokens",))
            if usage.cache_read is None:
                usage.cache_read = first_tokens(anthropic, ("cacheReadInputTokens",))
    elif "bedrock" in provider:
        usage.input_excludes_cache = True  # Converse inputTokens leaves the cache out
        bedrock = metadata.get("bedrock")
        raw = bedrock.get("usage") if type(bedrock) is dict else None
        if type(raw) is dict:
            if usage.cache_read is None:
                usage.cache_read = first_tokens(raw, ("cacheReadInputTokens",))
            if usage.cache_write is None:
                usage.cache_write = first_tokens(raw, ("cacheWriteInputTokens",))
    elif metadata:
        # 4.x OpenAI / Azure: cached prompt and reasoning tokens only in provider metadata
        openai = metadata.get("openai") or metadata.get("azure")
        if type(openai) is dict:
            if usage.cache_read is None:
                usage.cache_read = first_tokens(openai, ("cachedPromptTokens",))
            if usage.reasoning is None:
                usage.reasoning = first_tokens(openai, ("reasoningTokens",))
    return usage


def map_vercel_ai(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    operation_id = label(attrs.get("ai.operationId")) or span.name
    kind = _MODEL_CALLS.get(operation_id)
    if kind is None:
        return None  # ai.generateText / ai.streamText / ai.toolCall ...: the calls are their doGenerate children
    provider_raw = label(attrs.get("ai.model.provider")) or label(attrs.get("gen_ai.system"))
    provider_lower = provider_raw.lower()
    call = build(span, SOURCE, usage=_usage(attrs, provider_lower), attribute_filter=_FILTER, fallback=_attribution(attrs))
    call.provider = provider_name(provider_raw) or call.provider
    call.request_model = label(attrs.get("ai.model.id")) or call.request_model
    call.response_model = label(attrs.get("ai.response.model")) or call.response_model
    call.response_id = call.response_id or label(attrs.get("ai.response.id"))
    operation, streamed = kind
    call.operation = "responses" if provider_lower.endswith(".responses") else operation
    call.streaming = streamed
    if streamed:
        ms = as_seconds(attrs.get("ai.response.msToFirstChunk"))  # milliseconds, despite the helper's name
        call.ttft_ms = ms if ms is not None else (ttft_from_event(span, "ai.stream.firstChunk") if span.events else None)
    if not call.finish_reason:
        call.finish_reason = finish_reason(attrs.get("ai.response.finishReason") or attrs.get("ai.finishReason"))
    return complete(call, span)
