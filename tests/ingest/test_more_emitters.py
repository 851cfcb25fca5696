"""Emitters and versions the corpus does not cover, as OTLP/JSON bodies through the decoder and `select_calls`.

Each test builds the spans a library emits for one model call, with the attribute names and value shapes read
off that library's source (named in the test's comment), and checks the call record a user would look at:
provider, models, operation, every token class under our rule (input includes cache reads and writes,
output includes reasoning), streaming and TTFT when emitted, error type, user and session.
"""

from __future__ import annotations

import itertools
import json
import time

import orjson
import pytest

from billing.pricing.calls import PriceIndex
from billing.pricing.catalog import load_catalog
from ingest.mappers import select_calls
from ingest.mappers.normalize.providers import provider_from_model, provider_name
from ingest.otlp_decode import decode_traces

START_NS = time.time_ns() - 3_600 * 10**9  # an hour ago
MS = 1_000_000
TRACE = "7e5d3c1b9a8f4e2d6c0b1a2f3e4d5c6b"
RESOURCE = {"service.name": "support-bot", "service.instance.id": "pod-1"}
_ids = itertools.count(1)


def tokens(call) -> tuple[int, int, int, int, int]:
    """(input incl. cache, cached read, cache write, output incl. reasoning, reasoning)."""
    return (call.input_tokens, call.cached_input_tokens, call.cache_write_tokens, call.output_tokens, call.reasoning_tokens)


def any_value(value: object) -> dict:
    """An OTLP/JSON AnyValue the way the SDK JSON exporters write it (int64 as a string)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(item) for item in value]}}
    return {"stringValue": value}


def key_values(attrs: dict) -> list[dict]:
    return [{"key": key, "value": any_value(value)} for key, value in attrs.items()]


def span(
    name: str,
    attrs: dict,
    *,
    span_id: str | None = None,
    parent: str | None = None,
    trace_id: str = TRACE,
    start_ms: int = 0,
    end_ms: int = 900,
    status: int = 0,
    message: str = "",
    events: list[tuple[str, int, dict]] | None = None,
) -> dict:
    out: dict = {
        "traceId": trace_id,
        "spanId": span_id or f"{next(_ids):016x}",
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(START_NS + start_ms * MS),
        "endTimeUnixNano": str(START_NS + end_ms * MS),
        "attributes": key_values(attrs),
    }
    if parent:
        out["parentSpanId"] = parent
    if status:
        out["status"] = {"code": status, "message": message}
    if events:
        out["events"] = [
            {"name": event, "timeUnixNano": str(START_NS + at_ms * MS), "attributes": key_values(event_attrs)}
            for event, at_ms, event_attrs in events
        ]
    return out


def export(*scopes: tuple[str, str, list[dict]], resource: dict | None = None):
    """POST-able OTLP/JSON body with one ResourceSpans, decoded and reduced to (calls, other spans)."""
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": key_values(RESOURCE if resource is None else resource)},
                "scopeSpans": [{"scope": {"name": name, "version": version}, "spans": spans} for name, version, spans in scopes],
            }
        ]
    }
    decoded = decode_traces(orjson.dumps(body), "application/json")
    assert decoded.errors == [] and decoded.rejected == 0
    return select_calls(decoded.spans)


def one_call(*scopes: tuple[str, str, list[dict]], resource: dict | None = None):
    calls, _ = export(*scopes, resource=resource)
    assert len(calls) == 1, [(call.source, call.span_id, call.operation) for call in calls]
    return calls[0]


# --- OpenLLMetry / Traceloop before the official names -------------------------------------------------


def test_openllmetry_0_2x_openai_with_the_old_usage_names():
    # traceloop/openllmetry packages/opentelemetry-semantic-conventions-ai/opentelemetry/semconv/ai/__init__.py
    # (commit 0352d582, the 0.2x-0.3x line):
    # LLM_SYSTEM gen_ai.system ("OpenAI" from the openai instrumentation), LLM_REQUEST_TYPE llm.request.type,
    # LLM_USAGE_PROMPT_TOKENS gen_ai.usage.prompt_tokens, LLM_USAGE_COMPLETION_TOKENS gen_ai.usage.completion_tokens,
    # LLM_USAGE_TOTAL_TOKENS llm.usage.total_tokens, LLM_USER llm.user, LLM_IS_STREAMING llm.is_streaming,
    # flattened content gen_ai.prompt.{i}.role/content and gen_ai.completion.{i}.*; cache reads (0.33+) as
    # gen_ai.usage.cache_read_input_tokens, which OpenAI's prompt_tokens already includes.
    call = one_call(
        (
            "opentelemetry.instrumentation.openai.v1",
            "0.30.1",
            [
                span(
                    "openai.chat",
                    {
                        "llm.request.type": "chat",
                        "gen_ai.system": "OpenAI",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                        "llm.is_streaming": False,
                        "llm.user": "user-42",
                        "gen_ai.openai.api_base": "https://api.openai.com/v1/",
                        "gen_ai.prompt.0.role": "user",
                        "gen_ai.prompt.0.content": "Where is my order?",
                        "gen_ai.completion.0.role": "assistant",
                        "gen_ai.completion.0.content": "It ships today.",
                        "gen_ai.completion.0.finish_reason": "stop",
                        "gen_ai.usage.prompt_tokens": 1200,
                        "gen_ai.usage.completion_tokens": 85,
                        "llm.usage.total_tokens": 1285,
                        "gen_ai.usage.cache_read_input_tokens": 1024,
                        "traceloop.association.properties.session_id": "sess-7",
                    },
                )
            ],
        )
    )
    assert (call.source, call.provider, call.operation) == ("openllmetry", "openai", "chat")
    assert (call.request_model, call.response_model) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert tokens(call) == (1200, 1024, 0, 85, 0)
    assert (call.end_user, call.session, call.finish_reason, call.streaming) == ("user-42", "sess-7", "stop", False)
    assert "Where is my order?" in call.input_content and "It ships today." in call.output_content
    assert "llm.user" not in call.attributes and "gen_ai.prompt.0.content" not in call.attributes


def test_openllmetry_0_3x_anthropic_stream_counts_the_cache_once():
    # traceloop/openllmetry packages/opentelemetry-instrumentation-anthropic/.../streaming.py _set_token_usage and
    # __init__.py _aset_token_usage (0.3x, SpanAttributes names):
    # gen_ai.usage.prompt_tokens = input_tokens + cache_read + cache_creation, llm.usage.total_tokens = that +
    # completion, gen_ai.usage.cache_read_input_tokens / gen_ai.usage.cache_creation_input_tokens (underscore
    # names), gen_ai.system "Anthropic", llm.is_streaming, one llm.content.completion.chunk event per chunk.
    call = one_call(
        (
            "opentelemetry.instrumentation.anthropic",
            "0.33.9",
            [
                span(
                    "anthropic.chat",
                    {
                        "llm.request.type": "chat",
                        "gen_ai.system": "Anthropic",
                        "gen_ai.request.model": "claude-3-5-sonnet-20240620",
                        "gen_ai.response.model": "claude-3-5-sonnet-20240620",
                        "llm.is_streaming": True,
                        "gen_ai.usage.prompt_tokens": 1842,
                        "gen_ai.usage.completion_tokens": 77,
                        "llm.usage.total_tokens": 1919,
                        "gen_ai.usage.cache_read_input_tokens": 1500,
                        "gen_ai.usage.cache_creation_input_tokens": 300,
                    },
                    events=[("llm.content.completion.chunk", 240, {}), ("llm.content.completion.chunk", 300, {})],
                )
            ],
        )
    )
    assert call.provider == "anthropic"
    assert tokens(call) == (1842, 1500, 300, 77, 0)
    assert call.streaming is True and call.ttft_ms == pytest.approx(240.0)


@pytest.mark.parametrize(
    ("system", "version"),
    [("anthropic", "0.26.5"), ("AWS", "0.40.2")],  # the model vendor before the provider, then "AWS"
)
def test_openllmetry_bedrock_is_bedrock_whatever_gen_ai_system_says(system, version):
    # traceloop/openllmetry packages/opentelemetry-instrumentation-bedrock/.../__init__.py _get_vendor_model /
    # _cross_region_check (older: returns (vendor, model); newer: provider "AWS") and span_utils.py (commit 026b6228): span bedrock.completion or bedrock.converse, gen_ai.system the vendor ("anthropic",
    # older) or "AWS" (newer), gen_ai.request.model with the vendor and us./eu./apac. prefix removed
    # ("claude-3-5-sonnet-20240620-v1:0"); usage via _record_usage_to_span: gen_ai.usage.prompt_tokens is
    # Anthropic's uncached input_tokens; the cache counts go to metrics only (prompt_caching.py).
    call = one_call(
        (
            "opentelemetry.instrumentation.bedrock",
            version,
            [
                span(
                    "bedrock.converse",
                    {
                        "gen_ai.system": system,
                        "gen_ai.request.model": "claude-3-5-sonnet-20240620-v1:0",
                        "llm.request.type": "chat",
                        "gen_ai.usage.prompt_tokens": 42,
                        "gen_ai.usage.completion_tokens": 77,
                        "llm.usage.total_tokens": 119,
                        "gen_ai.prompt_caching": "read",
                    },
                )
            ],
        )
    )
    assert (call.provider, call.request_model, call.operation) == ("aws.bedrock", "claude-3-5-sonnet-20240620-v1:0", "chat")
    assert tokens(call) == (42, 0, 0, 77, 0)  # the cache is in OpenLLMetry's metrics only: nothing invented


def test_openllmetry_langchain_llm_span_over_the_openai_span_is_one_call():
    # traceloop/openllmetry packages/opentelemetry-instrumentation-langchain/.../callback_handler.py (_create_llm_span),
    # span_utils.py (commit 0129a0a5) and vendor_detection.py (commit 20e4d8ce):
    # chains are `<name>.workflow` / `<name>.task` spans with traceloop.span.kind; the chat model span
    # `ChatOpenAI.chat` has gen_ai.system "Langchain" (vendor_detection.py later: "openai", "Anthropic",
    # "AWS", "Azure", "Google", ...), llm.request.type, gen_ai.request.model ("unknown" when LangChain
    # gives none), usage from usage_metadata (gen_ai.usage.input_tokens, llm.usage.total_tokens,
    # gen_ai.usage.cache_read_input_tokens); the OpenAI instrumentation's own span sits under it.
    workflow, chain, llm, client = (f"{next(_ids):016x}" for _ in range(4))
    usage = {"gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 85, "llm.usage.total_tokens": 1285}
    calls, rest = export(
        (
            "opentelemetry.instrumentation.langchain",
            "0.38.7",
            [
                span(
                    "RunnableSequence.workflow",
                    {
                        "traceloop.span.kind": "workflow",
                        "traceloop.workflow.name": "RunnableSequence",
                        "traceloop.entity.input": '{"inputs": {"question": "hi"}}',
                    },
                    span_id=workflow,
                    end_ms=1000,
                ),
                span(
                    "ChatPromptTemplate.task",
                    {"traceloop.span.kind": "task", "traceloop.entity.name": "ChatPromptTemplate"},
                    span_id=chain,
                    parent=workflow,
                    end_ms=10,
                ),
                span(
                    "ChatOpenAI.chat",
                    {
                        "gen_ai.system": "Langchain",
                        "llm.request.type": "chat",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                        **usage,
                        "gen_ai.usage.cache_read_input_tokens": 1024,
                        "traceloop.association.properties.user_id": "user-42",
                    },
                    span_id=llm,
                    parent=workflow,
                    start_ms=20,
                    end_ms=950,
                ),
            ],
        ),
        (
            "opentelemetry.instrumentation.openai.v1",
            "0.38.7",
            [
                span(
                    "openai.chat",
                    {
                        "gen_ai.system": "openai",
                        "llm.request.type": "chat",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                        **usage,
                        "gen_ai.usage.cache_read_input_tokens": 1024,
                    },
                    span_id=client,
                    parent=llm,
                    start_ms=25,
                    end_ms=940,
                )
            ],
        ),
    )
    assert len(calls) == 1 and len(rest) == 3
    call = calls[0]
    assert (call.provider, call.request_model, call.response_model) == ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert tokens(call) == (1200, 1024, 0, 85, 0)
    assert call.end_user == "user-42"


def test_openllmetry_langchain_span_without_a_model_name_keeps_what_is_known():
    # same callback handler: set_request_params writes gen_ai.request.model / gen_ai.response.model "unknown"
    # when the LangChain model exposes no model name; gen_ai.system "Langchain" says nothing of the provider.
    call = one_call(
        (
            "opentelemetry.instrumentation.langchain",
            "0.33.12",
            [
                span(
                    "CustomLLM.completion",
                    {
                        "gen_ai.system": "Langchain",
                        "llm.request.type": "completion",
                        "gen_ai.request.model": "unknown",
                        "gen_ai.response.model": "unknown",
                        "gen_ai.usage.prompt_tokens": 10,
                        "gen_ai.usage.completion_tokens": 3,
                    },
                )
            ],
        )
    )
    assert (call.provider, call.request_model, call.response_model, call.operation) == ("", "", "", "text_completion")
    assert tokens(call) == (10, 0, 0, 3, 0)


@pytest.mark.parametrize("with_client_span", [False, True])
def test_openllmetry_llamaindex_llm_task_span_is_the_call(with_client_span):
    # traceloop/openllmetry packages/opentelemetry-instrumentation-llamaindex/.../dispatcher_wrapper.py (commit
    # 10c609a5) and span_utils.py (commit 040a8e44): every LlamaIndex
    # span is `<Class>.workflow` (root) or `<Class>.task` with traceloop.span.kind; the LLM's chat span
    # (`OpenAI.task`) gets gen_ai.request.model, gen_ai.response.model, gen_ai.usage.prompt_tokens /
    # completion_tokens, llm.usage.total_tokens (span_utils.py later adds llm.request.type and
    # llm.response.finish_reason). The OpenAI instrumentation, when on, adds an openai.chat child.
    engine, synth, llm = (f"{next(_ids):016x}" for _ in range(3))
    usage = {"gen_ai.usage.prompt_tokens": 900, "gen_ai.usage.completion_tokens": 120, "llm.usage.total_tokens": 1020}
    scopes = [
        (
            "opentelemetry.instrumentation.llamaindex",
            "0.40.2",
            [
                span("RetrieverQueryEngine.workflow", {"traceloop.span.kind": "workflow"}, span_id=engine, end_ms=1200),
                span(
                    "CompactAndRefine.task",
                    {"traceloop.span.kind": "task", "traceloop.entity.name": "CompactAndRefine.task"},
                    span_id=synth,
                    parent=engine,
                ),
                span(
                    "OpenAI.task",
                    {
                        "traceloop.span.kind": "task",
                        "traceloop.entity.name": "OpenAI.task",
                        "llm.request.type": "chat",
                        "gen_ai.request.model": "gpt-4o",
                        "gen_ai.response.model": "gpt-4o-2024-08-06",
                        "llm.response.finish_reason": "length",
                        **usage,
                    },
                    span_id=llm,
                    parent=synth,
                ),
            ],
        )
    ]
    if with_client_span:
        scopes.append(
            (
                "opentelemetry.instrumentation.openai.v1",
                "0.40.2",
                [
                    span(
                        "openai.chat",
                        {"gen_ai.system": "openai", "llm.request.type": "chat", "gen_ai.request.model": "gpt-4o", **usage},
                        parent=llm,
                    )
                ],
            )
        )
    call = one_call(*scopes)
    assert (call.provider, call.request_model, call.operation) == ("openai", "gpt-4o", "chat")
    assert tokens(call) == (900, 0, 0, 120, 0)
    assert call.finish_reason == "length"


# --- Vercel AI SDK --------------------------------------------------------------------------------------


def _vercel_outer(operation: str, span_id: str, usage: dict) -> dict:
    # vercel/ai packages/ai/core/generate-text/generate-text.ts (commit 0000dc25, 3.x) and
    # packages/ai/src/generate-text/generate-text.ts (commit 00ec9cee, 6.x): the outer ai.generateText span has
    # assembleOperationName (operation.name, ai.operationId), ai.model.*, ai.telemetry.metadata.*, and the
    # usage of the last step / the sum over the steps — but no gen_ai.* attributes.
    return span(
        operation,
        {
            "operation.name": f"{operation} support-answer",
            "ai.operationId": operation,
            "resource.name": "support-answer",
            "ai.telemetry.functionId": "support-answer",
            "ai.model.provider": "openai.chat",
            "ai.model.id": "gpt-4o-mini",
            "ai.telemetry.metadata.userId": "user-42",
            "ai.telemetry.metadata.sessionId": "sess-7",
            "ai.prompt": '{"prompt": "Where is my order?"}',
            **usage,
        },
        span_id=span_id,
        end_ms=1000,
    )


def test_vercel_ai_4_generate_text_is_one_call_from_the_inner_span():
    # vercel/ai generate-text.ts (3.x commit 0000dc25 / 6.x commit 00ec9cee; 4.x names from vercel/ai issue #4335):
    # the inner ai.generateText.doGenerate span carries ai.* (ai.usage.promptTokens,
    # ai.usage.completionTokens, ai.response.finishReason, ai.response.model, ai.response.providerMetadata) and
    # the standard gen_ai.* (gen_ai.system = the provider id "openai.chat", gen_ai.request.model,
    # gen_ai.usage.input_tokens / output_tokens, gen_ai.response.finish_reasons); @ai-sdk/openai 1.x puts cached
    # prompt and reasoning tokens only in providerMetadata.openai.{cachedPromptTokens, reasoningTokens}.
    outer = f"{next(_ids):016x}"
    usage_v4 = {"ai.usage.promptTokens": 1200, "ai.usage.completionTokens": 85}
    calls, rest = export(
        (
            "ai",
            "",
            [
                _vercel_outer("ai.generateText", outer, usage_v4),
                span(
                    "ai.generateText.doGenerate",
                    {
                        "operation.name": "ai.generateText.doGenerate support-answer",
                        "ai.operationId": "ai.generateText.doGenerate",
                        "ai.model.provider": "openai.chat",
                        "ai.model.id": "gpt-4o-mini",
                        "ai.telemetry.metadata.userId": "user-42",
                        "ai.telemetry.metadata.sessionId": "sess-7",
                        "ai.prompt.format": "prompt",
                        "ai.prompt.messages": '[{"role":"user","content":[{"type":"text","text":"Where is my order?"}]}]',
                        "gen_ai.system": "openai.chat",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "ai.response.finishReason": "tool-calls",
                        "ai.response.text": "",
                        "ai.response.toolCalls": '[{"toolName":"lookupOrder"}]',
                        "ai.response.id": "chatcmpl-1",
                        "ai.response.model": "gpt-4o-mini-2024-07-18",
                        "ai.response.timestamp": "2026-01-01T00:00:00.000Z",
                        "ai.response.providerMetadata": json.dumps(
                            {"openai": {"cachedPromptTokens": 1024, "reasoningTokens": 64}}
                        ),
                        **usage_v4,
                        "gen_ai.response.finish_reasons": ["tool-calls"],
                        "gen_ai.response.id": "chatcmpl-1",
                        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                        "gen_ai.usage.input_tokens": 1200,
                        "gen_ai.usage.output_tokens": 85,
                    },
                    parent=outer,
                    start_ms=10,
                    end_ms=990,
                ),
            ],
        )
    )
    assert len(calls) == 1 and len(rest) == 1 and rest[0].span_id == outer
    call = calls[0]
    assert (call.source, call.provider, call.operation) == ("vercel-ai", "openai", "chat")
    assert (call.request_model, call.response_model) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert tokens(call) == (1200, 1024, 0, 85, 64)
    assert (call.end_user, call.session, call.finish_reason, call.streaming) == ("user-42", "sess-7", "tool_call", False)
    assert "Where is my order?" in call.input_content and "lookupOrder" in call.output_content


def test_vercel_ai_failed_call_is_an_error_call():
    # vercel/ai core/telemetry/record-span.ts: on a throw the span gets recordException (exception event with
    # exception.type = the error name, e.g. AI_APICallError) and status ERROR with the error message; the
    # provider's own message says what happened.
    call = one_call(
        (
            "ai",
            "",
            [
                span(
                    "ai.generateText.doGenerate",
                    {
                        "ai.operationId": "ai.generateText.doGenerate",
                        "ai.model.provider": "openai.chat",
                        "ai.model.id": "gpt-4o-mini",
                        "gen_ai.system": "openai.chat",
                        "gen_ai.request.model": "gpt-4o-mini",
                    },
                    status=2,
                    message="Rate limit reached for gpt-4o-mini in organization org-1 on tokens per min (TPM).",
                    events=[
                        (
                            "exception",
                            300,
                            {"exception.type": "AI_APICallError", "exception.message": "Rate limit reached for gpt-4o-mini"},
                        )
                    ],
                )
            ],
        )
    )
    assert (call.status, call.error_type, call.usage_reported, call.provider) == ("error", "rate_limit", False, "openai")


def test_vercel_ai_outer_span_exported_alone_is_not_a_call():
    # The outer span ends last, so a batch span processor often exports it after its doGenerate child.
    calls, rest = export(
        (
            "ai",
            "",
            [_vercel_outer("ai.streamText", f"{next(_ids):016x}", {"ai.usage.inputTokens": 1200, "ai.usage.outputTokens": 85})],
        )
    )
    assert calls == [] and len(rest) == 1


def test_vercel_ai_5_stream_text_anthropic_adds_the_cache_from_provider_metadata():
    # vercel/ai stream-text.ts doStream span (5.x names; telemetry attribute list as in generate-text.ts 00ec9cee): ai.usage.inputTokens / outputTokens / totalTokens /
    # cachedInputTokens / reasoningTokens, ai.response.msToFirstChunk (ms) and the ai.stream.firstChunk event;
    # @ai-sdk/anthropic 2.x reports inputTokens = Anthropic's input_tokens (no cache), cachedInputTokens = cache
    # reads and keeps the raw usage in providerMetadata.anthropic.usage, cache writes in cacheCreationInputTokens.
    raw_usage = {"input_tokens": 42, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 1500, "output_tokens": 77}
    call = one_call(
        (
            "ai",
            "",
            [
                span(
                    "ai.streamText.doStream",
                    {
                        "operation.name": "ai.streamText.doStream",
                        "ai.operationId": "ai.streamText.doStream",
                        "ai.model.provider": "anthropic.messages",
                        "ai.model.id": "claude-3-5-sonnet-latest",
                        "gen_ai.system": "anthropic.messages",
                        "gen_ai.request.model": "claude-3-5-sonnet-latest",
                        "ai.response.msToFirstChunk": 412.5,
                        "ai.response.msToFinish": 2100.0,
                        "ai.response.avgOutputTokensPerSecond": 36.6,
                        "ai.response.finishReason": "stop",
                        "ai.response.model": "claude-3-5-sonnet-20241022",
                        "ai.response.providerMetadata": json.dumps(
                            {"anthropic": {"usage": raw_usage, "cacheCreationInputTokens": 300}}
                        ),
                        "ai.usage.inputTokens": 42,
                        "ai.usage.outputTokens": 77,
                        "ai.usage.totalTokens": 119,
                        "ai.usage.cachedInputTokens": 1500,
                        "gen_ai.usage.input_tokens": 42,
                        "gen_ai.usage.output_tokens": 77,
                        "gen_ai.response.finish_reasons": ["stop"],
                    },
                    events=[("ai.stream.firstChunk", 412, {"ai.response.msToFirstChunk": 412.5})],
                    end_ms=2100,
                )
            ],
        )
    )
    assert (call.provider, call.response_model, call.operation) == ("anthropic", "claude-3-5-sonnet-20241022", "chat")
    assert tokens(call) == (1842, 1500, 300, 77, 0)
    assert call.streaming is True and call.ttft_ms == pytest.approx(412.5)
    assert call.finish_reason == "stop"


def test_vercel_ai_5_anthropic_without_provider_metadata_still_adds_cache_reads():
    call = one_call(
        (
            "ai",
            "",
            [
                span(
                    "ai.generateText.doGenerate",
                    {
                        "ai.operationId": "ai.generateText.doGenerate",
                        "ai.model.provider": "anthropic.messages",
                        "ai.model.id": "claude-3-5-haiku-latest",
                        "ai.usage.inputTokens": 5000,
                        "ai.usage.outputTokens": 40,
                        "ai.usage.cachedInputTokens": 1000,
                    },
                )
            ],
        )
    )
    assert tokens(call) == (6000, 1000, 0, 40, 0)


def test_vercel_ai_6_input_token_details_are_not_added_twice():
    # vercel/ai packages/ai/src/generate-text/generate-text.ts (commit 00ec9cee, 6.x): ai.usage.inputTokens is
    # inputTokens.total (packages/anthropic/src/convert-anthropic-messages-usage.ts, commit 2a91a17e: noCache + cacheRead + cacheWrite), with
    # ai.usage.inputTokenDetails.{noCacheTokens,cacheReadTokens,cacheWriteTokens} and
    # ai.usage.outputTokenDetails.{textTokens,reasoningTokens}.
    call = one_call(
        (
            "ai",
            "",
            [
                span(
                    "ai.generateText.doGenerate",
                    {
                        "ai.operationId": "ai.generateText.doGenerate",
                        "ai.model.provider": "anthropic.messages",
                        "ai.model.id": "claude-sonnet-4-5",
                        "ai.usage.inputTokens": 1842,
                        "ai.usage.inputTokenDetails.noCacheTokens": 42,
                        "ai.usage.inputTokenDetails.cacheReadTokens": 1500,
                        "ai.usage.inputTokenDetails.cacheWriteTokens": 300,
                        "ai.usage.outputTokens": 377,
                        "ai.usage.outputTokenDetails.textTokens": 77,
                        "ai.usage.outputTokenDetails.reasoningTokens": 300,
                        "ai.usage.totalTokens": 2219,
                        "ai.usage.reasoningTokens": 300,
                        "ai.usage.cachedInputTokens": 1500,
                        "gen_ai.usage.input_tokens": 1842,
                        "gen_ai.usage.output_tokens": 377,
                    },
                )
            ],
        )
    )
    assert tokens(call) == (1842, 1500, 300, 377, 300)


def test_vercel_ai_embed_and_google_provider_ids():
    # vercel/ai embed.ts: ai.embed.doEmbed with ai.usage.tokens; provider ids "openai.embedding",
    # "google.generative-ai", "google.vertex.chat", "amazon-bedrock", "azure.chat" name the provider by their head.
    calls, _ = export(
        (
            "ai",
            "",
            [
                span(
                    "ai.embed.doEmbed",
                    {
                        "ai.operationId": "ai.embed.doEmbed",
                        "ai.model.provider": "openai.embedding",
                        "ai.model.id": "text-embedding-3-small",
                        "ai.usage.tokens": 18,
                    },
                ),
                span(
                    "ai.generateText.doGenerate",
                    {
                        "ai.operationId": "ai.generateText.doGenerate",
                        "ai.model.provider": "google.generative-ai",
                        "ai.model.id": "gemini-2.5-flash",
                        "ai.usage.inputTokens": 1200,
                        "ai.usage.outputTokens": 85,
                        "ai.usage.reasoningTokens": 64,
                        "ai.usage.totalTokens": 1349,  # Gemini: candidates exclude the thoughts
                    },
                    trace_id="0" * 31 + "2",
                ),
            ],
        )
    )
    embed, gemini = sorted(calls, key=lambda call: call.operation, reverse=True)
    assert (embed.provider, embed.operation, tokens(embed)) == ("openai", "embeddings", (18, 0, 0, 0, 0))
    assert (gemini.provider, gemini.operation) == ("gcp.gemini", "chat")
    assert tokens(gemini) == (1200, 0, 0, 149, 64)
    assert provider_name("google.vertex.chat") == "gcp.vertex_ai"
    assert provider_name("amazon-bedrock") == "aws.bedrock"
    assert provider_name("azure.chat") == "azure.ai.openai"
    assert provider_name("vertex.anthropic.messages") == "gcp.vertex_ai"


# --- Pydantic AI ----------------------------------------------------------------------------------------


def test_pydantic_ai_0_4_chat_spans_count_and_the_agent_run_does_not():
    # pydantic/pydantic-ai pydantic_ai_slim/pydantic_ai/models/instrumented.py (commit 0021d091, 0.2-0.4 line): span `chat {model}` with
    # gen_ai.operation.name, gen_ai.system, gen_ai.request.model, model_request_parameters (JSON),
    # usage.opentelemetry_attributes() -> gen_ai.usage.input_tokens / output_tokens and gen_ai.usage.details.*;
    # models/anthropic.py _map_usage: request_tokens = input_tokens + cache_creation + cache_read, the raw
    # counts as details. agent.py: the `agent run` span (model_name, agent_name, logfire.msg) gets the run's
    # summed usage.
    run = f"{next(_ids):016x}"
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-3-5-sonnet-latest",
        "model_request_parameters": '{"function_tools": [], "allow_text_output": true, "output_tools": []}',
        "logfire.json_schema": '{"type": "object", "properties": {"model_request_parameters": {"type": "object"}}}',
        "gen_ai.usage.input_tokens": 1842,
        "gen_ai.usage.output_tokens": 77,
        "gen_ai.usage.details.input_tokens": 42,
        "gen_ai.usage.details.cache_read_input_tokens": 1500,
        "gen_ai.usage.details.cache_creation_input_tokens": 300,
        "gen_ai.usage.details.output_tokens": 77,
        "gen_ai.response.model": "claude-3-5-sonnet-20241022",
        "events": json.dumps(
            [
                {"content": "Where is my order?", "role": "user", "gen_ai.message.index": 0, "event.name": "gen_ai.user.message"},
                {"index": 0, "message": {"role": "assistant", "content": "It ships today."}, "event.name": "gen_ai.choice"},
            ]
        ),
    }
    calls, rest = export(
        (
            "pydantic-ai",
            "0.4.2",
            [
                span(
                    "agent run",
                    {
                        "model_name": "claude-3-5-sonnet-latest",
                        "agent_name": "support",
                        "logfire.msg": "support run",
                        "gen_ai.usage.input_tokens": 3684,
                        "gen_ai.usage.output_tokens": 154,
                        "final_result": "It ships today.",
                    },
                    span_id=run,
                    end_ms=2000,
                ),
                span("chat claude-3-5-sonnet-latest", chat, parent=run, start_ms=10, end_ms=900),
                span("chat claude-3-5-sonnet-latest", chat, parent=run, start_ms=1000, end_ms=1900),
            ],
        )
    )
    assert len(calls) == 2 and [span.name for span in rest] == ["agent run"]
    for call in calls:
        assert (call.source, call.provider, call.operation) == ("pydantic-ai", "anthropic", "chat")
        assert (call.request_model, call.response_model) == ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022")
        assert tokens(call) == (1842, 1500, 300, 77, 0)
        assert "Where is my order?" in call.input_content and "It ships today." in call.output_content


def test_pydantic_ai_1_x_gemini_and_an_agent_span_in_its_own_export():
    # pydantic/pydantic-ai pydantic_ai_slim/pydantic_ai/usage.py (RequestUsage / RunUsage, 1.x) opentelemetry_attributes: details cache_read_tokens / cache_write_tokens plus the
    # provider's details (reasoning_tokens); instrumented.py adds operation.cost and gen_ai.response.finish_reasons;
    # gen_ai.system "google-gla" / "google-vertex"; agent/__init__.py: the run span `invoke_agent {name}` (v3
    # names) with gen_ai.agent.name and the summed usage, exported after its children.
    call = one_call(
        (
            "pydantic-ai",
            "1.0.10",
            [
                span(
                    "chat gemini-2.5-flash",
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.system": "google-gla",
                        "gen_ai.request.model": "gemini-2.5-flash",
                        "gen_ai.usage.input_tokens": 1200,
                        "gen_ai.usage.output_tokens": 149,
                        "gen_ai.usage.details.cache_read_tokens": 1024,
                        "gen_ai.usage.details.thoughts_tokens": 64,
                        "gen_ai.response.model": "gemini-2.5-flash",
                        "gen_ai.response.finish_reasons": ["stop"],
                        "operation.cost": 0.00071,
                    },
                )
            ],
        )
    )
    assert (call.provider, call.finish_reason) == ("gcp.gemini", "stop")
    assert tokens(call) == (1200, 1024, 0, 149, 64)
    assert str(call.provided_cost_usd) == "0.00071"
    calls, rest = export(
        (
            "pydantic-ai",
            "1.0.10",
            [
                span(
                    "invoke_agent support",
                    {
                        "gen_ai.agent.name": "support",
                        "agent_name": "support",
                        "model_name": "gemini-2.5-flash",
                        "gen_ai.usage.input_tokens": 2400,
                        "gen_ai.usage.output_tokens": 298,
                    },
                )
            ],
        )
    )
    assert calls == [] and len(rest) == 1


# --- OpenLIT before 1.x, OpenInference after our corpus ------------------------------------------------------


def test_openlit_before_operation_name_uses_gen_ai_type_and_prompt_tokens():
    # openlit/openlit sdk/python/src/openlit/semcov/__init__.py (SemanticConvetion class of the 1.0-1.1x line): GEN_AI_SYSTEM gen_ai.system,
    # GEN_AI_TYPE gen_ai.type (chat / embedding / vectordb / framework), GEN_AI_USAGE_PROMPT_TOKENS
    # gen_ai.usage.prompt_tokens, ..._COMPLETION_TOKENS, ..._TOTAL_TOKENS, GEN_AI_USAGE_COST gen_ai.usage.cost,
    # GEN_AI_REQUEST_IS_STREAM gen_ai.request.is_stream, GEN_AI_RESPONSE_FINISH_REASON (singular),
    # GEN_AI_ENVIRONMENT gen_ai.environment; Anthropic's input_tokens passed through (no cache counts then).
    calls, rest = export(
        (
            "openlit.otel.tracing",
            "",
            [
                span(
                    "anthropic.messages",
                    {
                        "telemetry.sdk.name": "openlit",
                        "gen_ai.system": "anthropic",
                        "gen_ai.type": "chat",
                        "gen_ai.endpoint": "anthropic.messages",
                        "gen_ai.environment": "production",
                        "gen_ai.application_name": "support-bot",
                        "gen_ai.request.model": "claude-3-5-sonnet-20240620",
                        "gen_ai.request.is_stream": True,
                        "gen_ai.usage.prompt_tokens": 42,
                        "gen_ai.usage.completion_tokens": 77,
                        "gen_ai.usage.total_tokens": 119,
                        "gen_ai.usage.cost": 0.001281,
                        "gen_ai.response.finish_reason": "end_turn",
                    },
                ),
                span(
                    "chroma.query",
                    {
                        "telemetry.sdk.name": "openlit",
                        "gen_ai.system": "chroma",
                        "gen_ai.type": "vectordb",
                        "db.system": "chroma",
                    },
                ),
                span(
                    "langchain.retrieve.prompt",
                    {
                        "telemetry.sdk.name": "openlit",
                        "gen_ai.system": "langchain",
                        "gen_ai.type": "framework",
                        "gen_ai.request.model": "gpt-4o",
                    },
                ),
            ],
        )
    )
    assert len(calls) == 1 and len(rest) == 2
    call = calls[0]
    assert (call.source, call.provider, call.operation, call.streaming) == ("openlit", "anthropic", "chat", True)
    assert tokens(call) == (42, 0, 0, 77, 0)
    assert (str(call.provided_cost_usd), call.finish_reason, call.environment) == ("0.001281", "stop", "production")


def test_openinference_bedrock_converse_total_shows_the_input_left_the_cache_out():
    # Arize-ai/openinference semantic conventions (llm.provider / llm.system / llm.token_count.prompt_details.*),
    # openinference-instrumentation-bedrock (converse): llm.provider "aws", llm.system
    # "anthropic", llm.model_name the Bedrock id, llm.token_count.prompt = usage.inputTokens (Converse leaves the
    # cache out), llm.token_count.total = totalTokens (which counts it), prompt_details.cache_read / cache_write.
    # A CHAIN span around it is not a call.
    chain = f"{next(_ids):016x}"
    calls, rest = export(
        (
            "openinference.instrumentation.bedrock",
            "0.1.24",
            [
                span("RunnableSequence", {"openinference.span.kind": "CHAIN", "input.value": "hi"}, span_id=chain),
                span(
                    "bedrock.converse",
                    {
                        "openinference.span.kind": "LLM",
                        "llm.provider": "aws",
                        "llm.system": "anthropic",
                        "llm.model_name": "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
                        "llm.invocation_parameters": '{"maxTokens": 1024}',
                        "llm.token_count.prompt": 5000,  # more uncached input than cache: only the total tells
                        "llm.token_count.completion": 77,
                        "llm.token_count.total": 6877,
                        "llm.token_count.prompt_details.cache_read": 1500,
                        "llm.token_count.prompt_details.cache_write": 300,
                        "session.id": "sess-7",
                        "user.id": "user-42",
                    },
                    parent=chain,
                ),
            ],
        )
    )
    assert len(calls) == 1 and len(rest) == 1
    call = calls[0]
    assert (call.provider, call.response_model) == ("aws.bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0")
    assert tokens(call) == (6800, 1500, 300, 77, 0)
    assert (call.end_user, call.session) == ("user-42", "sess-7")


def test_openinference_langchain_and_vertex_provider():
    # openinference-instrumentation-langchain _tracer.py: LLM spans with llm.provider / llm.system from the
    # LangChain class (ChatVertexAI: provider "google", system "vertexai"), token counts from usage_metadata
    # (input_tokens already counts Anthropic's cache in langchain-anthropic), cache_read from input_token_details.
    call = one_call(
        (
            "openinference.instrumentation.langchain",
            "0.1.50",
            [
                span(
                    "ChatVertexAI",
                    {
                        "openinference.span.kind": "LLM",
                        "llm.provider": "google",
                        "llm.system": "vertexai",
                        "llm.model_name": "gemini-2.5-flash",
                        "llm.token_count.prompt": 1200,
                        "llm.token_count.completion": 85,
                        "llm.token_count.total": 1285,
                        "llm.token_count.prompt_details.cache_read": 1024,
                    },
                )
            ],
        )
    )
    assert (call.provider, call.operation) == ("gcp.vertex_ai", "chat")
    assert tokens(call) == (1200, 1024, 0, 85, 0)


# --- official semconv emitters in other languages and frameworks -------------------------------------------


def test_spring_ai_micrometer_strings_and_the_chat_client_span():
    # spring-projects/spring-ai DefaultChatModelObservationConvention.java and AiProvider.java (1.0): low-cardinality gen_ai.operation.name,
    # gen_ai.system (AiProvider: openai, anthropic, azure-openai, bedrock_converse, vertex_ai, ...),
    # gen_ai.request.model, gen_ai.response.model; high-cardinality gen_ai.usage.input_tokens / output_tokens /
    # total_tokens as String.valueOf(...) and gen_ai.response.finish_reasons as '["STOP"]'. Micrometer tags are
    # strings. The ChatClient span has gen_ai.operation.name "framework", gen_ai.system "spring_ai".
    client = f"{next(_ids):016x}"
    calls, rest = export(
        (
            "org.springframework.boot",
            "3.4.1",
            [
                span(
                    "spring_ai chat_client",
                    {"gen_ai.operation.name": "framework", "gen_ai.system": "spring_ai", "spring.ai.kind": "chat_client"},
                    span_id=client,
                ),
                span(
                    "chat gpt-4o",
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.system": "openai",
                        "gen_ai.request.model": "gpt-4o",
                        "gen_ai.response.model": "gpt-4o-2024-08-06",
                        "gen_ai.request.temperature": "0.7",
                        "gen_ai.usage.input_tokens": "1200",
                        "gen_ai.usage.output_tokens": "85",
                        "gen_ai.usage.total_tokens": "1285",
                        "gen_ai.response.finish_reasons": '["STOP"]',
                        "gen_ai.response.id": "chatcmpl-1",
                    },
                    parent=client,
                ),
                span(
                    "chat anthropic.claude-3-5-sonnet-20240620-v1:0",
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.system": "bedrock_converse",
                        "gen_ai.request.model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
                        "gen_ai.usage.input_tokens": "42",
                        "gen_ai.usage.output_tokens": "77",
                        "gen_ai.response.finish_reasons": '["end_turn"]',
                    },
                    parent=client,
                ),
            ],
        )
    )
    assert len(calls) == 2 and [span.name for span in rest] == ["spring_ai chat_client"]
    openai, bedrock = sorted(calls, key=lambda call: call.provider, reverse=True)
    assert (openai.provider, openai.response_model, openai.finish_reason) == ("openai", "gpt-4o-2024-08-06", "stop")
    assert tokens(openai) == (1200, 0, 0, 85, 0)
    assert (bedrock.provider, bedrock.finish_reason, tokens(bedrock)) == ("aws.bedrock", "stop", (42, 0, 0, 77, 0))


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # microsoft/semantic-kernel dotnet/src/InternalUtilities/src/Diagnostics/ModelDiagnostics.cs (commit 037139f4): gen_ai.response.prompt_tokens /
        # gen_ai.response.completion_tokens, -1 when the connector gave none
        ({"gen_ai.response.prompt_tokens": 1200, "gen_ai.response.completion_tokens": 85}, (1200, 0, 0, 85, 0)),
        ({"gen_ai.response.prompt_tokens": -1, "gen_ai.response.completion_tokens": -1}, (0, 0, 0, 0, 0)),
        # later ModelDiagnostics.cs: gen_ai.usage.input_tokens / output_tokens
        ({"gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 85}, (1200, 0, 0, 85, 0)),
    ],
)
def test_semantic_kernel_dotnet_chat_completions(usage, expected):
    # ModelDiagnostics.cs: activity `chat.completions {model}` (ActivitySource Microsoft.SemanticKernel.Diagnostics),
    # gen_ai.operation.name "chat.completions", gen_ai.system the connector ("openai", "azure_openai", ...),
    # gen_ai.request.model, gen_ai.response.finish_reason (singular) as `[Stop]` / `["Stop"]`; agents get
    # `invoke_agent {name}`.
    calls, rest = export(
        (
            "Microsoft.SemanticKernel.Diagnostics",
            "",
            [
                span("invoke_agent Support", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Support"}),
                span(
                    "chat.completions gpt-4o",
                    {
                        "gen_ai.operation.name": "chat.completions",
                        "gen_ai.system": "azure_openai",
                        "gen_ai.request.model": "gpt-4o",
                        "server.address": "https://acme.openai.azure.com/",
                        "gen_ai.response.finish_reason": '["ToolCalls"]' if "gen_ai.usage.input_tokens" in usage else "[Stop]",
                        "gen_ai.response.id": "chatcmpl-1",
                        **usage,
                    },
                ),
            ],
        )
    )
    assert len(calls) == 1 and len(rest) == 1
    call = calls[0]
    assert (call.provider, call.operation, call.request_model) == ("azure.ai.openai", "chat", "gpt-4o")
    assert tokens(call) == expected
    assert call.usage_reported is (expected != (0, 0, 0, 0, 0))
    assert call.finish_reason == ("tool_call" if "gen_ai.usage.input_tokens" in usage else "stop")


def test_semantic_kernel_python_streaming_and_enum_finish_reason():
    # microsoft/semantic-kernel python utils/telemetry/model_diagnostics/decorators.py:
    # CHAT_STREAMING_COMPLETION_OPERATION "chat.streaming_completions", finish reason the Python enum
    # (`FinishReason.TOOL_CALLS`) in gen_ai.response.finish_reason.
    call = one_call(
        (
            "semantic_kernel.utils.telemetry.model_diagnostics.decorators",
            "",
            [
                span(
                    "chat.streaming_completions gpt-4o-mini",
                    {
                        "gen_ai.operation.name": "chat.streaming_completions",
                        "gen_ai.system": "openai",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.response.finish_reason": "FinishReason.TOOL_CALLS",
                        "gen_ai.usage.input_tokens": 300,
                        "gen_ai.usage.output_tokens": 20,
                    },
                )
            ],
        )
    )
    assert (call.operation, call.streaming, call.finish_reason) == ("chat", True, "tool_call")


def test_google_adk_call_llm_reads_thoughts_and_cache_from_the_response_json():
    # google/adk-python src/google/adk/telemetry/tracing.py trace_call_llm (1.x, tracer gcp.vertex.agent; the same
    # attributes in adk-js traceCallLlm):
    # span `call_llm`, gen_ai.system "gcp.vertex.agent", gen_ai.request.model, gen_ai.usage.input_tokens =
    # prompt_token_count, gen_ai.usage.output_tokens = candidates_token_count (no thoughts),
    # gen_ai.response.finish_reasons lowercased, gcp.vertex.agent.session_id, and the whole LlmResponse as JSON
    # in gcp.vertex.agent.llm_response (usage_metadata with thoughts_token_count, cached_content_token_count).
    # invoke_agent / execute_tool spans are not calls.
    agent = f"{next(_ids):016x}"
    response = {
        "content": {"parts": [{"text": "It ships today."}], "role": "model"},
        "finish_reason": "STOP",
        "usage_metadata": {
            "cached_content_token_count": 1024,
            "candidates_token_count": 85,
            "prompt_token_count": 1200,
            "thoughts_token_count": 64,
            "total_token_count": 1349,
        },
    }
    calls, rest = export(
        (
            "gcp.vertex.agent",
            "1.15.1",
            [
                span(
                    "invoke_agent support",
                    {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support", "gen_ai.conversation.id": "sess-7"},
                    span_id=agent,
                ),
                span(
                    "call_llm",
                    {
                        "gen_ai.system": "gcp.vertex.agent",
                        "gen_ai.request.model": "gemini-2.5-flash",
                        "gcp.vertex.agent.invocation_id": "e-1",
                        "gcp.vertex.agent.session_id": "sess-7",
                        "gcp.vertex.agent.event_id": "ev-1",
                        "gcp.vertex.agent.llm_request": '{"model": "gemini-2.5-flash", "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}',
                        "gcp.vertex.agent.llm_response": json.dumps(response),
                        "gen_ai.usage.input_tokens": 1200,
                        "gen_ai.usage.output_tokens": 85,
                        "gen_ai.response.finish_reasons": ["stop"],
                    },
                    parent=agent,
                ),
                span(
                    "execute_tool lookup_order",
                    {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order"},
                    parent=agent,
                ),
            ],
        )
    )
    assert len(calls) == 1 and len(rest) == 2
    call = calls[0]
    assert (call.provider, call.request_model, call.operation, call.finish_reason) == (
        "gcp.gemini",
        "gemini-2.5-flash",
        "chat",
        "stop",
    )
    assert tokens(call) == (1200, 1024, 0, 149, 64)
    assert call.session == "sess-7"
    assert "It ships today." in call.output_content and "gcp.vertex.agent.llm_response" not in call.attributes


def test_aws_strands_agents_chat_span_on_bedrock():
    # strands-agents/sdk-python src/strands/telemetry/tracer.py (commit 006ad58f, tracer strands.telemetry.tracer):
    # _get_common_attributes gen_ai.system / gen_ai.provider.name "strands-agents"; model span `chat` with
    # gen_ai.request.model (a Bedrock inference profile by default), end_model_invoke_span: gen_ai.usage.prompt_tokens
    # / input_tokens (Converse inputTokens), completion_tokens / output_tokens, total_tokens,
    # gen_ai.usage.cache_read_input_tokens, gen_ai.usage.cache_write_input_tokens, gen_ai.server.time_to_first_token
    # = timeToFirstByteMs (milliseconds). The agent span `invoke_agent {name}` repeats the accumulated usage and the
    # `execute_event_loop_cycle` spans carry none.
    agent, cycle = (f"{next(_ids):016x}" for _ in range(2))
    usage = {
        "gen_ai.usage.prompt_tokens": 42,
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.completion_tokens": 77,
        "gen_ai.usage.output_tokens": 77,
        "gen_ai.usage.total_tokens": 1919,
        "gen_ai.usage.cache_read_input_tokens": 1500,
        "gen_ai.usage.cache_write_input_tokens": 300,
    }
    calls, rest = export(
        (
            "strands.telemetry.tracer",
            "",
            [
                span(
                    "invoke_agent Strands Agents",
                    {
                        "gen_ai.operation.name": "invoke_agent",
                        "gen_ai.system": "strands-agents",
                        "gen_ai.agent.name": "Strands Agents",
                        "gen_ai.request.model": "us.anthropic.claude-sonnet-4-20250514-v1:0",
                        **usage,
                    },
                    span_id=agent,
                    end_ms=3000,
                ),
                span("execute_event_loop_cycle", {"event_loop.cycle_id": "c-1"}, span_id=cycle, parent=agent),
                span(
                    "chat",
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.system": "strands-agents",
                        "gen_ai.request.model": "us.anthropic.claude-sonnet-4-20250514-v1:0",
                        "gen_ai.event.start_time": "2026-01-01T00:00:00+00:00",
                        **usage,
                        "gen_ai.server.time_to_first_token": 350,
                        "gen_ai.server.request.duration": 1800,
                    },
                    parent=cycle,
                ),
            ],
        )
    )
    assert len(calls) == 1 and len(rest) == 2
    call = calls[0]
    assert (call.provider, call.request_model) == ("aws.bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0")
    assert tokens(call) == (1842, 1500, 300, 77, 0)
    assert call.streaming is True and call.ttft_ms == pytest.approx(350.0)


def test_azure_ai_inference_chat_and_a_rate_limited_call():
    # Azure/azure-sdk-for-python sdk/ai/azure-ai-inference/azure/ai/inference/tracing.py (_AIInferenceInstrumentorPreview,
    # 1.0.0b-line): _INFERENCE_GEN_AI_SYSTEM_NAME
    # "az.ai.inference" in gen_ai.system, az.namespace "Microsoft.CognitiveServices", gen_ai.operation.name
    # "chat", gen_ai.request.model, server.address, gen_ai.response.id / model, gen_ai.usage.input_tokens /
    # output_tokens, gen_ai.response.finish_reasons; on failure status ERROR and error.type
    # "<module>.<ExceptionClass>".
    calls, _ = export(
        (
            "azure.ai.inference",
            "1.0.0b9",
            [
                span(
                    "chat gpt-4o",
                    {
                        "az.namespace": "Microsoft.CognitiveServices",
                        "gen_ai.operation.name": "chat",
                        "gen_ai.system": "az.ai.inference",
                        "gen_ai.request.model": "gpt-4o",
                        "server.address": "acme.services.ai.azure.com",
                        "gen_ai.response.id": "chatcmpl-1",
                        "gen_ai.response.model": "gpt-4o-2024-08-06",
                        "gen_ai.usage.input_tokens": 1200,
                        "gen_ai.usage.output_tokens": 85,
                        "gen_ai.response.finish_reasons": ["stop"],
                    },
                ),
                span(
                    "chat Phi-4",
                    {
                        "az.namespace": "Microsoft.CognitiveServices",
                        "gen_ai.operation.name": "chat",
                        "gen_ai.system": "az.ai.inference",
                        "gen_ai.request.model": "Phi-4",
                        "error.type": "azure.core.exceptions.HttpResponseError",
                    },
                    status=2,
                    message="(429) Rate limit is exceeded. Try again in 5 seconds.",
                    trace_id="0" * 31 + "3",
                ),
            ],
        )
    )
    ok, failed = sorted(calls, key=lambda call: call.status == "error")
    assert (ok.provider, ok.response_model, ok.finish_reason, tokens(ok)) == (
        "azure.ai.inference",
        "gpt-4o-2024-08-06",
        "stop",
        (1200, 0, 0, 85, 0),
    )
    assert (failed.status, failed.error_type, failed.usage_reported) == ("error", "rate_limit", False)


def test_litellm_otel_callback_request_span():
    # BerriAI/litellm litellm/integrations/opentelemetry.py set_attributes (commit 00145a6c, tracer "litellm"): span
    # litellm_request with metadata.* (StandardLoggingMetadata: user_api_key_team_alias, user_api_key_end_user_id,
    # ...), hidden_params (JSON), gen_ai.cost.* (cost_breakdown), gen_ai.request.model, llm.request.type = call_type,
    # gen_ai.system = custom_llm_provider, llm.is_streaming str(bool), llm.user, gen_ai.response.model,
    # gen_ai.usage.total_tokens / output_tokens / input_tokens (LiteLLM's prompt_tokens count Anthropic's cache),
    # gen_ai.operation.name ("chat" for completion, else the call type). Child raw_gen_ai_request: llm.<provider>.*.
    request = f"{next(_ids):016x}"
    calls, rest = export(
        (
            "litellm",
            "",
            [
                span(
                    "litellm_request",
                    {
                        "metadata.user_api_key_hash": "88dc28",
                        "metadata.user_api_key_team_alias": "search",
                        "metadata.user_api_key_end_user_id": "user-42",
                        "hidden_params": '{"model_id": "m-1", "response_cost": 0.012345, "api_base": "https://api.anthropic.com"}',
                        "gen_ai.cost.input_cost": 0.011,
                        "gen_ai.cost.output_cost": 0.001345,
                        "gen_ai.cost.total_cost": 0.012345,
                        "gen_ai.request.model": "claude-3-5-sonnet-20240620",
                        "llm.request.type": "acompletion",
                        "gen_ai.system": "anthropic",
                        "llm.is_streaming": "False",
                        "llm.user": "user-42",
                        "gen_ai.response.id": "msg_1",
                        "gen_ai.response.model": "claude-3-5-sonnet-20240620",
                        "gen_ai.usage.total_tokens": 1919,
                        "gen_ai.usage.output_tokens": 77,
                        "gen_ai.usage.input_tokens": 1842,
                        "gen_ai.operation.name": "acompletion",
                        "gen_ai.response.finish_reasons": '["stop"]',
                    },
                    span_id=request,
                ),
                span(
                    "raw_gen_ai_request",
                    {"llm.anthropic.model": "claude-3-5-sonnet-20240620", "llm.anthropic.max_tokens": 1024},
                    parent=request,
                ),
            ],
        )
    )
    assert len(calls) == 1 and [span.name for span in rest] == ["raw_gen_ai_request"]
    call = calls[0]
    assert (call.source, call.provider, call.operation, call.streaming) == ("litellm", "anthropic", "chat", False)
    assert tokens(call) == (1842, 0, 0, 77, 0)
    assert (call.end_user, call.team, str(call.provided_cost_usd)) == ("user-42", "search", "0.012345")


def test_mlflow_autolog_chat_model_spans():
    # mlflow/mlflow mlflow/tracing/constant.py (commit 00449464, SpanAttributeKey / TokenUsageKey; 3.x): span
    # attributes are JSON-encoded, mlflow.spanType ("CHAT_MODEL", "LLM",
    # "CHAIN", ...), SpanAttributeKey.CHAT_USAGE mlflow.chat.tokenUsage {input_tokens, output_tokens,
    # total_tokens, cache_read_input_tokens, cache_creation_input_tokens}, MODEL mlflow.llm.model,
    # MODEL_PROVIDER mlflow.llm.provider, mlflow.spanInputs / mlflow.spanOutputs. The Anthropic autolog of 3.18
    # (tests/data/otlp/captures/mlflow-3.18.0) reports input_tokens with the cache and total = input + output.
    chain = f"{next(_ids):016x}"
    calls, rest = export(
        (
            "mlflow.tracing.fluent",
            "3.4.0",
            [
                span("RunnableSequence", {"mlflow.spanType": '"CHAIN"', "mlflow.traceRequestId": '"tr-1"'}, span_id=chain),
                span(
                    "Completions",
                    {
                        "mlflow.traceRequestId": '"tr-1"',
                        "mlflow.spanType": '"CHAT_MODEL"',
                        "mlflow.spanInputs": '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}',
                        "mlflow.spanOutputs": '{"choices": [{"message": {"content": "hello"}}]}',
                        "mlflow.chat.tokenUsage": '{"input_tokens": 1200, "output_tokens": 85, "total_tokens": 1285}',
                        "mlflow.llm.provider": '"openai"',
                    },
                    parent=chain,
                ),
                span(
                    "Messages.create",
                    {
                        "mlflow.traceRequestId": '"tr-1"',
                        "mlflow.spanType": '"CHAT_MODEL"',
                        "mlflow.llm.model": '"claude-3-5-sonnet-20241022"',
                        "mlflow.llm.provider": '"anthropic"',
                        "mlflow.chat.tokenUsage": json.dumps(
                            {
                                "input_tokens": 5000,
                                "output_tokens": 77,
                                "total_tokens": 5077,
                                "cache_read_input_tokens": 1500,
                                "cache_creation_input_tokens": 300,
                            }
                        ),
                    },
                    parent=chain,
                    start_ms=1000,
                    end_ms=1900,
                ),
            ],
        )
    )
    assert len(calls) == 2 and len(rest) == 1
    openai, anthropic = sorted(calls, key=lambda call: call.provider, reverse=True)
    assert (openai.source, openai.request_model, tokens(openai)) == ("mlflow", "gpt-4o-mini", (1200, 0, 0, 85, 0))
    assert "hello" in openai.output_content
    assert (anthropic.request_model, tokens(anthropic)) == ("claude-3-5-sonnet-20241022", (5000, 1500, 300, 77, 0))


# --- provider names and pricing ------------------------------------------------------------------------------


_CATALOG = load_catalog()
_CATALOG_PROVIDERS = {spec.provider for spec in _CATALOG}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("openai", "openai"),
        ("OpenAI", "openai"),
        ("azure.ai.openai", "azure.ai.openai"),
        ("azure_openai", "azure.ai.openai"),
        ("azure-openai", "azure.ai.openai"),
        ("Azure", "azure.ai.openai"),
        ("az.ai.inference", "azure.ai.inference"),
        ("aws.bedrock", "aws.bedrock"),
        ("AWS", "aws.bedrock"),
        ("bedrock_converse", "aws.bedrock"),
        ("amazon-bedrock", "aws.bedrock"),
        ("gcp.vertex_ai", "gcp.vertex_ai"),
        ("VertexAI", "gcp.vertex_ai"),
        ("google-vertex", "gcp.vertex_ai"),
        ("gcp.gemini", "gcp.gemini"),
        ("Gemini", "gcp.gemini"),
        ("google-gla", "gcp.gemini"),
        ("anthropic", "anthropic"),
        ("Anthropic", "anthropic"),
        ("mistral_ai", "mistral_ai"),
        ("MistralAI", "mistral_ai"),
        ("cohere", "cohere"),
        ("Groq", "groq"),
        ("deepseek", "deepseek"),
        ("x_ai", "x_ai"),
        ("ibm.watsonx.ai", "ibm.watsonx.ai"),
        ("Watsonx", "ibm.watsonx.ai"),
        ("perplexity", "perplexity"),
        ("TogetherAI", "together_ai"),
        ("openai.chat", "openai"),
        ("anthropic.messages", "anthropic"),
    ],
)
def test_provider_names_map_to_the_price_catalog_providers(raw, expected):
    assert provider_name(raw) == expected
    assert expected in _CATALOG_PROVIDERS


@pytest.mark.parametrize(
    "raw", ["Langchain", "strands-agents", "gcp.vertex.agent", "spring_ai", "llama_index", "Unknown", "litellm"]
)
def test_framework_names_are_not_providers(raw):
    assert provider_name(raw) == ""


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "aws.bedrock"),
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", "aws.bedrock"),
        ("amazon.nova-pro-v1:0", "aws.bedrock"),
        ("meta.llama3-70b-instruct-v1:0", "aws.bedrock"),
        ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0", "aws.bedrock"),
        ("claude-3-5-sonnet@20240620", "gcp.vertex_ai"),
        ("claude-3-5-sonnet-20240620", "anthropic"),
        ("openai/gpt-4o", "openai"),
        ("models/gemini-2.5-flash", "gcp.gemini"),
        ("meta-llama/Llama-3.3-70B-Instruct", ""),
        ("gemini-2.5-flash", "gcp.gemini"),
    ],
)
def test_provider_from_model_names(model, expected):
    assert provider_from_model(model) == expected


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("aws.bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0"),  # Strands, OpenInference Bedrock
        ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),  # Spring AI bedrock_converse
        ("gcp.gemini", "gemini-2.5-flash"),  # ADK, Pydantic AI google-gla, Vercel google.generative-ai
        ("gcp.vertex_ai", "gemini-2.5-flash"),  # OpenInference ChatVertexAI
        ("azure.ai.openai", "gpt-4o-2024-08-06"),  # Semantic Kernel azure_openai
        ("openai", "gpt-4o-mini-2024-07-18"),
    ],
)
def test_calls_of_these_emitters_are_priced_at_their_provider(provider, model):
    spec = PriceIndex(_CATALOG).resolve(provider, model, model)
    assert spec is not None and spec.provider == provider


def test_openai_client_pointed_at_azure_is_azure_openai():
    # opentelemetry-instrumentation-openai-v2 and OpenLLMetry's openai instrumentation report gen_ai.system "openai"
    # for AzureOpenAI clients too; server.address / gen_ai.openai.api_base hold the Azure endpoint.
    call = one_call(
        (
            "opentelemetry.instrumentation.openai_v2",
            "2.1b0",
            [
                span(
                    "chat gpt-4o",
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.system": "openai",
                        "gen_ai.request.model": "gpt-4o",
                        "server.address": "acme.openai.azure.com",
                        "gen_ai.usage.input_tokens": 10,
                        "gen_ai.usage.output_tokens": 2,
                    },
                )
            ],
        )
    )
    assert call.provider == "azure.ai.openai"
