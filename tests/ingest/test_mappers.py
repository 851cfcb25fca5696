"""Convention mappers on hand-built spans, following reference/otel_genai_conventions.md for the libraries the
corpus does not cover (Langfuse, Logfire, the Anthropic SDK's native spans, the 2.3b0 line, our SDK)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.mappers import DUPLICATES_KEY, InvalidSpan, map_log_record, map_span, select_calls
from ingest.mappers.log_events import merge_fragments
from ingest.mappers.normalize.errors import error_kind
from ingest.mappers.normalize.finish_reasons import finish_reason
from ingest.mappers.normalize.providers import provider_name
from ingest.mappers.normalize.tokens import token_count
from ingest.otlp_decode import LogRecordView
from ingest.records import EventView, SpanView

START = 1_795_357_852_000_000_000  # 2026-11-22T14:30:52Z
MS = 1_000_000
RESOURCE = {"service.name": "checkout", "service.instance.id": "i-1", "deployment.environment.name": "prod"}
_ids = iter(range(1, 1_000_000))


def make_span(
    attributes: dict,
    *,
    scope: str = "observatory_sdk",
    version: str = "0.1.0",
    name: str = "chat gpt-4o-mini",
    trace_id: str = "5b8efff798038103d269b633813fc60c",
    span_id: str | None = None,
    parent_span_id: str | None = None,
    start_ms: int = 0,
    end_ms: int = 500,
    status: int = 0,
    message: str = "",
    events: list[EventView] | None = None,
    resource: dict | None = None,
) -> SpanView:
    return SpanView(
        trace_id=trace_id,
        span_id=span_id or f"{next(_ids):016x}",
        parent_span_id=parent_span_id,
        name=name,
        kind=3,
        start_ns=START + start_ms * MS,
        end_ns=START + end_ms * MS,
        status_code=status,
        status_message=message,
        attributes=attributes,
        events=events or [],
        resource=RESOURCE if resource is None else resource,
        scope_name=scope,
        scope_version=version,
    )


def iso(ms: int) -> str:
    return (datetime.fromtimestamp(START / 1e9, UTC) + timedelta(milliseconds=ms)).isoformat()


OPENAI_USAGE_RAW = json.dumps(
    {
        "prompt_tokens": 1200,
        "completion_tokens": 85,
        "total_tokens": 1285,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0},
    }
)
ANTHROPIC_USAGE_RAW = json.dumps(
    {"input_tokens": 42, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 1500, "output_tokens": 77}
)
RATE_LIMIT_MESSAGE = (
    "Error code: 429 - {'error': {'message': 'Rate limit reached', 'type': 'requests', 'code': 'rate_limit_exceeded'}}"
)


def tokens(call) -> tuple[int, int, int, int, int]:
    return (
        call.input_tokens,
        call.cached_input_tokens,
        call.cache_write_tokens,
        call.output_tokens,
        call.reasoning_tokens,
    )


# --- normalization vocabularies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", "stop"),
        (["stop"], "stop"),
        ('["stop"]', "stop"),
        ('"end_turn"', "stop"),
        ("end_turn", "stop"),
        ("completed", "stop"),
        ("STOP", "stop"),
        ("tool_calls", "tool_call"),
        ("tool_call", "tool_call"),
        ("tool_use", "tool_call"),
        ("max_tokens", "length"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("SAFETY", "content_filter"),
        (["", "tool_calls"], "tool_call"),
        ("error", "error"),
        ("pause_turn", ""),
        (None, ""),
    ],
)
def test_it_normalizes_finish_reasons(raw, expected):
    assert finish_reason(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<class 'openai.RateLimitError'>", "rate_limit"),
        ("RateLimitError", "rate_limit"),
        ("rate_limit_error", "rate_limit"),
        ("anthropic.RateLimitError", "rate_limit"),
        ("<class 'openai.InternalServerError'>", "server_error"),
        ("api_error", "server_error"),
        ("overloaded_error", "overloaded"),
        ("APITimeoutError", "timeout"),
        ("httpx.ReadTimeout", "timeout"),
        ("APIConnectionError", "connection"),
        ("authentication_error", "authentication"),
        ("PermissionDeniedError", "permission"),
        ("NotFoundError", "not_found"),
        ("BadRequestError", "bad_request"),
        ("invalid_request_error", "bad_request"),
        ("context_length_exceeded", "context_length"),
        ("asyncio.CancelledError", "cancelled"),
        ("429", "rate_limit"),
        ("503", "overloaded"),
        ("_OTHER", ""),
        ("KeyError", ""),
    ],
)
def test_it_normalizes_error_types(raw, expected):
    assert error_kind(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("openai", "openai"),
        ("OpenAI", "openai"),
        ("Anthropic", "anthropic"),
        ("az.ai.inference", "azure.ai.inference"),
        ("az.ai.openai", "azure.ai.openai"),
        ("azure", "azure.ai.openai"),
        ("vertex_ai", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("aws.bedrock", "aws.bedrock"),
        ("bedrock", "aws.bedrock"),
        ("mistralai", "mistral_ai"),
        ("xai", "x_ai"),
        ("watsonx", "ibm.watsonx.ai"),
        ("Some Newcomer", "some newcomer"),
    ],
)
def test_it_normalizes_providers_to_the_official_vocabulary(raw, expected):
    assert provider_name(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [(1200, 1200), ("1200", 1200), (1200.0, 1200), (0, 0), (None, None)])
def test_token_counts_accept_ints_in_any_wire_shape(raw, expected):
    assert token_count(raw, "gen_ai.usage.input_tokens") == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (-5, "gen_ai.usage.input_tokens is negative: -5"),
        ("lots", "gen_ai.usage.input_tokens is not a token count: 'lots'"),
        (12.5, "gen_ai.usage.input_tokens is not a token count: '12.5'"),
        (True, "gen_ai.usage.input_tokens is not a token count: 'True'"),
        ([1200], "gen_ai.usage.input_tokens is not a token count: '[1200]'"),
        (100_000_001, "gen_ai.usage.input_tokens is implausibly large: 100000001"),
    ],
)
def test_garbage_token_counts_make_the_span_invalid(raw, message):
    span = make_span({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": raw})

    with pytest.raises(InvalidSpan) as info:
        map_span(span)

    assert info.value.message == message
    assert info.value.span is span


def test_select_calls_collects_invalid_spans_and_keeps_the_others():
    bad = make_span({"gen_ai.operation.name": "chat", "gen_ai.usage.output_tokens": -1})
    good = make_span({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10})
    invalid: list[InvalidSpan] = []

    calls, rest = select_calls([bad, good], invalid)

    assert [call.span_id for call in calls] == [good.span_id]
    assert rest == []
    assert [(error.span, error.message) for error in invalid] == [(bad, "gen_ai.usage.output_tokens is negative: -1")]
    with pytest.raises(InvalidSpan):
        select_calls([bad, good])


# --- official semconv, both lines ---------------------------------------------------------------


def test_it_maps_the_legacy_2_3b0_line_with_gen_ai_system_and_deprecated_usage_names():
    span = make_span(
        {
            "gen_ai.system": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.prompt_tokens": 1200,
            "gen_ai.usage.completion_tokens": 85,
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.openai.request.seed": 7,
            "server.address": "api.openai.com",
        },
        scope="opentelemetry.instrumentation.openai_v2",
        version="2.3b0",
    )

    call = map_span(span)

    assert (call.source, call.source_version) == ("otel-genai", "2.3b0")
    assert (call.provider, call.operation) == ("openai", "chat")
    assert (call.request_model, call.response_model) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert tokens(call) == (1200, 0, 0, 85, 0)
    assert call.usage_reported is True
    assert call.finish_reason == "stop"
    assert call.input_content is None
    assert call.attributes == {
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.openai.request.seed": 7,
        "server.address": "api.openai.com",
    }
    assert call.service_name == "checkout"
    assert call.environment == "prod"
    assert call.start_time == datetime(2026, 11, 22, 14, 30, 52, tzinfo=UTC)
    assert call.duration_ms == 500.0


def test_the_legacy_line_reports_errors_by_class_name():
    span = make_span(
        {
            "gen_ai.system": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "error-429",
            "error.type": "RateLimitError",
        },
        scope="opentelemetry.instrumentation.openai_v2",
        version="2.3b0",
        status=2,
        message=RATE_LIMIT_MESSAGE,
    )

    call = map_span(span)

    assert (call.status, call.error_type, call.http_status) == ("error", "rate_limit", 429)
    assert call.usage_reported is False
    assert "error.type" not in call.attributes


@pytest.mark.parametrize(
    ("system", "provider"),
    [("az.ai.inference", "azure.ai.inference"), ("vertex_ai", "gcp.vertex_ai"), ("Anthropic", "anthropic")],
)
def test_it_maps_old_gen_ai_system_values(system, provider):
    call = map_span(make_span({"gen_ai.system": system, "gen_ai.operation.name": "chat"}, scope="some.lib"))

    assert call.provider == provider
    assert call.source == "otel-genai"


def test_spans_that_are_not_model_calls_are_trace_context():
    http = make_span(
        {"http.method": "POST", "http.status_code": 200},
        scope="opentelemetry.instrumentation.httpx",
        version="0.66b1",
        name="POST",
    )
    agent = make_span({"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o"}, scope="x")
    db = make_span({"db.system": "postgresql"}, scope="opentelemetry.instrumentation.psycopg", version="0.66b1")

    calls, rest = select_calls([http, agent, db])

    assert calls == []
    assert rest == [http, agent, db]


def test_error_type_falls_back_to_the_status_message_and_the_http_status():
    context = make_span(
        {"gen_ai.operation.name": "chat", "error.type": "BadRequestError"},
        status=2,
        message="Error code: 400 - {'error': {'code': 'context_length_exceeded'}}",
    )
    overloaded = make_span({"gen_ai.operation.name": "chat", "http.response.status_code": 529})
    unknown = make_span({"gen_ai.operation.name": "chat"}, status=2, message="boom")

    assert (map_span(context).error_type, map_span(context).http_status) == ("context_length", 400)
    assert (map_span(overloaded).status, map_span(overloaded).error_type) == ("error", "overloaded")
    assert (map_span(unknown).status, map_span(unknown).error_type) == ("error", "other")


# --- our SDK ------------------------------------------------------------------------------------


def sdk_span(**extra: object) -> SpanView:
    attributes = {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 85,
        "gen_ai.usage.cache_read.input_tokens": 1024,
        "gen_ai.usage.reasoning.output_tokens": 64,
        "gen_ai.request.stream": True,
        "gen_ai.response.time_to_first_chunk": 0.25,
        "gen_ai.response.finish_reasons": ["stop"],
        "http.response.status_code": 200,
        "observatory.team": "search",
        "observatory.feature": "autocomplete",
        "observatory.prompt_prefix_hash": "9f2c",
        "observatory.request_hash": "77ab",
        "observatory.app_cache_hit": False,
        "user.id": "u-1",
        "session.id": "s-1",
        "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
        "gen_ai.system_instructions": '[{"type":"text","content":"be brief"}]',
        "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"hello"}]}]',
        "server.address": "api.openai.com",
    }
    attributes.update(extra)
    return make_span(
        attributes,
        version="0.3.1",
        resource={**RESOURCE, "observatory.product": "shop", "observatory.team": "resource-team"},
    )


def test_it_maps_our_sdk_spans_with_attribution_and_hashes():
    call = map_span(sdk_span())

    assert (call.source, call.source_version) == ("observatory-sdk", "0.3.1")
    assert tokens(call) == (1200, 1024, 0, 85, 64)
    assert (call.streaming, call.ttft_ms, call.http_status) == (True, 250.0, 200)
    assert (call.team, call.product, call.feature, call.environment) == ("search", "shop", "autocomplete", "prod")
    assert (call.end_user, call.session) == ("u-1", "s-1")
    assert (call.prompt_prefix_hash, call.request_hash, call.app_cache_hit) == ("9f2c", "77ab", False)
    assert json.loads(call.input_content) == {
        "system_instructions": [{"type": "text", "content": "be brief"}],
        "messages": [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}],
    }
    assert "hello" in call.output_content
    assert call.attributes == {"gen_ai.response.finish_reasons": ["stop"], "server.address": "api.openai.com"}


def test_our_sdk_reports_app_cache_hits_and_an_explicit_environment():
    call = map_span(
        sdk_span(
            **{
                "observatory.app_cache_hit": True,
                "observatory.cost_avoided_usd": 0.0123,
                "observatory.environment": "staging",
            }
        )
    )

    assert call.app_cache_hit is True
    assert call.cost_avoided_usd == Decimal("0.0123")
    assert call.environment == "staging"
    assert call.input_tokens == 1200


def test_our_sdk_error_falls_back_to_the_http_status_when_the_type_says_nothing():
    call = map_span(sdk_span(**{"error.type": "APIStatusError", "http.response.status_code": 503}))

    assert (call.status, call.error_type, call.http_status) == ("error", "overloaded", 503)


# --- Anthropic SDK native spans -----------------------------------------------------------------


def anthropic_native(**extra: object) -> SpanView:
    attributes = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.usage.input_tokens": 1842,
        "gen_ai.usage.cache_read.input_tokens": 1500,
        "gen_ai.usage.cache_write.input_tokens": 300,
        "gen_ai.usage.output_tokens": 77,
        "anthropic.message.stop_reason": "tool_use",
        "http.response.status_code": 200,
        "anthropic.request.id": "req_1",
    }
    attributes.update(extra)
    return make_span(attributes, scope="com.anthropic.sdk.python", version="2.12.0", name="anthropic.messages.create")


def test_it_maps_the_anthropic_sdks_own_span():
    call = map_span(anthropic_native(**{"gen_ai.request.stream": True, "gen_ai.response.time_to_first_chunk": 0.107893442}))

    assert (call.source, call.source_version, call.provider) == ("anthropic-sdk", "2.12.0", "anthropic")
    assert tokens(call) == (1842, 1500, 300, 77, 0)
    assert call.finish_reason == "tool_call"
    assert call.streaming is True
    assert call.ttft_ms == pytest.approx(107.893442)
    assert call.http_status == 200
    assert call.attributes["anthropic.message.stop_reason"] == "tool_use"


def test_the_anthropic_sdk_reports_the_api_error_type():
    span = anthropic_native(**{"error.type": "rate_limit_error", "http.response.status_code": 429})
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.response.model"):
        span.attributes.pop(key)
    span.status_code = 2

    call = map_span(span)

    assert (call.status, call.error_type, call.http_status) == ("error", "rate_limit", 429)


# --- OpenLLMetry, older naming -------------------------------------------------------------------


def test_it_maps_older_openllmetry_names_and_indexed_content():
    span = make_span(
        {
            "gen_ai.system": "Anthropic",
            "llm.request.type": "chat",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.usage.prompt_tokens": 1842,
            "gen_ai.usage.completion_tokens": 77,
            "gen_ai.usage.cache_read_input_tokens": 1500,
            "gen_ai.usage.cache_creation_input_tokens": 300,
            "llm.usage.total_tokens": 1919,
            "llm.is_streaming": True,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "What is the capital of France?",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "Paris.",
            "gen_ai.completion.0.finish_reason": "end_turn",
            "traceloop.association.properties.team": "search",
            "traceloop.association.properties.customer": "acme",
        },
        scope="opentelemetry.instrumentation.anthropic",
        version="0.40.2",
        name="anthropic.chat",
    )

    call = map_span(span)

    assert (call.source, call.provider, call.operation) == ("openllmetry", "anthropic", "chat")
    assert tokens(call) == (1842, 1500, 300, 77, 0)
    assert (call.finish_reason, call.streaming, call.team) == ("stop", True, "search")
    assert json.loads(call.input_content) == [{"role": "user", "content": "What is the capital of France?"}]
    assert json.loads(call.output_content) == [{"role": "assistant", "content": "Paris.", "finish_reason": "end_turn"}]
    assert call.attributes == {
        "traceloop.association.properties.team": "search",
        "traceloop.association.properties.customer": "acme",
    }


def test_openllmetry_workflow_and_task_spans_are_not_calls():
    workflow = make_span(
        {"traceloop.span.kind": "workflow", "traceloop.entity.input": "{}", "gen_ai.request.model": "gpt-4o"},
        scope="traceloop.tracer",
    )

    assert map_span(workflow) is None


# --- OpenLIT ------------------------------------------------------------------------------------


def test_openlit_anthropic_input_tokens_get_the_cache_added_and_zero_cost_means_unknown():
    span = make_span(
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 5000,
            "gen_ai.usage.output_tokens": 77,
            "gen_ai.usage.cache_read.input_tokens": 1500,
            "gen_ai.usage.cache_creation.input_tokens": 300,
            "gen_ai.usage.cost": 0,
            "gen_ai.request.stream": False,
            "gen_ai.server.time_to_first_token": 0.9,
        },
        scope="openlit.instrumentation.anthropic",
        version="",
    )

    call = map_span(span)

    assert tokens(call) == (6800, 1500, 300, 77, 0)
    assert call.provided_cost_usd is None
    assert call.ttft_ms is None


# --- OpenInference ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["CHAIN", "TOOL", "AGENT", "RETRIEVER"])
def test_openinference_non_llm_spans_are_not_calls(kind):
    span = make_span({"openinference.span.kind": kind, "input.value": "x"}, scope="openinference.instrumentation.langchain")

    assert map_span(span) is None


def test_openinference_reads_team_and_feature_from_its_metadata_json():
    span = make_span(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.invocation_parameters": '{"model": "gpt-4o-mini", "stream": true}',
            "llm.model_name": "gpt-4o-mini-2024-07-18",
            "llm.token_count.prompt": 1200,
            "llm.token_count.completion": 85,
            "metadata": '{"team": "search", "feature": "qa"}',
        },
        scope="openinference.instrumentation.openai",
        name="ChatCompletion",
        events=[EventView("First Token Stream Event", START + 120 * MS, {})],
    )

    call = map_span(span)

    assert (call.team, call.feature) == ("search", "qa")
    assert (call.request_model, call.streaming, call.ttft_ms) == ("gpt-4o-mini", True, 120.0)


# --- Langfuse -----------------------------------------------------------------------------------


def langfuse_span(**extra: object) -> SpanView:
    attributes = {
        "langfuse.observation.type": "generation",
        "langfuse.observation.model.name": "gpt-4o-mini-2024-07-18",
        "langfuse.observation.model.parameters": '{"temperature": 0.2, "max_tokens": 200}',
        "langfuse.observation.usage_details": OPENAI_USAGE_RAW,
        "langfuse.observation.input": '[{"role": "user", "content": "What is the capital of France?"}]',
        "langfuse.observation.output": '{"role": "assistant", "content": "Paris."}',
        "user.id": "user-42",
        "session.id": "sess-1",
        "langfuse.trace.metadata.team": '"search"',
        "langfuse.observation.metadata.feature": '"qa"',
        "langfuse.environment": "production",
    }
    attributes.update(extra)
    return make_span(attributes, scope="langfuse-sdk", version="5.0.4", name="OpenAI-generation", resource={})


def test_it_maps_a_langfuse_generation_with_usage_inside_json():
    call = map_span(langfuse_span())

    assert (call.source, call.provider, call.operation) == ("langfuse", "openai", "chat")
    assert (call.request_model, call.response_model) == ("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18")
    assert tokens(call) == (1200, 1024, 0, 85, 64)
    assert (call.team, call.feature, call.environment) == ("search", "qa", "production")
    assert (call.end_user, call.session) == ("user-42", "sess-1")
    assert call.streaming is False and call.ttft_ms is None
    assert "capital of France" in call.input_content
    assert "Paris." in call.output_content
    assert "langfuse.observation.usage_details" not in call.attributes
    assert call.attributes["langfuse.observation.model.parameters"] == '{"temperature": 0.2, "max_tokens": 200}'


def test_a_langfuse_stream_gets_ttft_from_the_iso_completion_start_time():
    call = map_span(
        langfuse_span(
            **{
                "langfuse.observation.completion_start_time": json.dumps(iso(250)),
                "langfuse.observation.metadata.finish_reason": '"stop"',
            }
        )
    )

    assert call.streaming is True
    assert call.ttft_ms == pytest.approx(250.0)
    assert call.finish_reason == "stop"


def test_langfuse_embeddings_and_responses_usage_shapes():
    embedding = map_span(
        langfuse_span(
            **{
                "langfuse.observation.type": "embedding",
                "langfuse.observation.model.name": "text-embedding-3-small",
                "langfuse.observation.usage_details": '{"input": 18}',
            }
        )
    )
    responses = map_span(
        langfuse_span(
            **{
                "langfuse.observation.usage_details": json.dumps(
                    {
                        "input_tokens": 1200,
                        "output_tokens": 85,
                        "total_tokens": 1285,
                        "input_tokens_details": {"cached_tokens": 1024},
                        "output_tokens_details": {"reasoning_tokens": 64},
                    }
                )
            }
        )
    )

    assert (embedding.operation, tokens(embedding)) == ("embeddings", (18, 0, 0, 0, 0))
    assert (responses.operation, tokens(responses)) == ("responses", (1200, 1024, 0, 85, 64))


def test_langfuse_anthropic_usage_is_totalled_and_the_provider_read_from_the_model():
    span = langfuse_span(
        **{
            "langfuse.observation.model.name": "claude-sonnet-4-5-20250929",
            "langfuse.observation.usage_details": ANTHROPIC_USAGE_RAW,
        }
    )
    span.name = "generation"

    call = map_span(span)

    assert call.provider == "anthropic"
    assert tokens(call) == (1842, 1500, 300, 77, 0)


def test_a_failed_langfuse_generation_is_an_error_with_its_request_model():
    call = map_span(
        langfuse_span(
            **{
                "langfuse.observation.model.name": "error-429",
                "langfuse.observation.usage_details": None,
                "langfuse.observation.level": "ERROR",
                "langfuse.observation.status_message": RATE_LIMIT_MESSAGE,
                "langfuse.observation.output": None,
            }
        )
    )

    assert (call.status, call.error_type, call.http_status) == ("error", "rate_limit", 429)
    assert (call.request_model, call.response_model) == ("error-429", "")
    assert call.usage_reported is False


def test_langfuse_plain_spans_are_not_calls():
    assert map_span(langfuse_span(**{"langfuse.observation.type": "span"})) is None


# --- Logfire ------------------------------------------------------------------------------------

LOGFIRE_REQUEST = "Chat Completion with {request_data[model]!r}"
LOGFIRE_STREAM = "streaming response from {request_data[model]!r} took {duration:.2f}s"


def logfire_span(template: str = LOGFIRE_REQUEST, *, drop: tuple[str, ...] = (), **extra: object) -> SpanView:
    attributes = {
        "logfire.span_type": "span",
        "logfire.msg_template": template,
        "logfire.msg": "Chat Completion with 'gpt-4o-mini'",
        "request_data": '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}',
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 85,
        "gen_ai.usage.raw": OPENAI_USAGE_RAW,
        "gen_ai.response.finish_reasons": '["stop"]',
        "code.filepath": "app.py",
    }
    for key in drop:
        attributes.pop(key)
    attributes.update(extra.pop("attributes", {}))
    return make_span(attributes, scope="logfire.openai", version="5.2.0", name=template, **extra)


def test_it_maps_logfire_with_cache_and_reasoning_from_the_raw_usage_json():
    call = map_span(logfire_span())

    assert (call.source, call.provider, call.operation) == ("logfire", "openai", "chat")
    assert tokens(call) == (1200, 1024, 0, 85, 64)
    assert call.finish_reason == "stop"
    assert "request_data" not in call.attributes
    assert '"content": "hi"' in call.input_content


def test_logfire_anthropic_counts_cache_once():
    span = logfire_span(
        "Message with {request_data[model]!r}",
        attributes={
            "gen_ai.provider.name": "anthropic",
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.usage.input_tokens": 1842,
            "gen_ai.usage.output_tokens": 77,
            "gen_ai.usage.raw": ANTHROPIC_USAGE_RAW,
            "gen_ai.response.finish_reasons": '["end_turn"]',
        },
    )

    call = map_span(span)

    assert tokens(call) == (1842, 1500, 300, 77, 0)
    assert call.finish_reason == "stop"


def test_a_logfire_stream_is_one_call_even_when_its_two_spans_are_separate_roots():
    request = logfire_span(
        drop=(
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.raw",
            "gen_ai.response.finish_reasons",
            "gen_ai.response.model",
        ),
        attributes={"request_data": '{"model": "gpt-4o-mini", "stream": true}'},
        trace_id="0af7651916cd43dd8448eb211c80319c",
        start_ms=0,
        end_ms=40,
    )
    response = logfire_span(
        LOGFIRE_STREAM,
        drop=("gen_ai.usage.raw",),
        attributes={
            "logfire.span_type": "log",
            "duration": 0.35,
            "gen_ai.response.model": "gpt-4o-mini",
            "request_data": '{"model": "gpt-4o-mini", "stream": true}',
        },
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        start_ms=400,
        end_ms=400,
    )

    calls, rest = select_calls([request, response])

    (call,) = calls
    assert call.span_id == request.span_id
    assert (call.input_tokens, call.output_tokens, call.usage_reported) == (1200, 85, True)
    assert call.streaming is True
    assert call.duration_ms == pytest.approx(400.0)
    assert call.attributes[DUPLICATES_KEY] == [response.span_id]
    assert rest == [response]


def test_a_lone_logfire_stream_response_starts_where_the_stream_started():
    response = logfire_span(LOGFIRE_STREAM, attributes={"logfire.span_type": "log", "duration": 0.35}, start_ms=400, end_ms=400)

    call = map_span(response)

    assert call.duration_ms == pytest.approx(350.0)
    assert call.start_time == datetime.fromtimestamp(START / 1e9, UTC) + timedelta(milliseconds=50)


def test_a_logfire_error_is_classified_from_its_exception_event():
    span = logfire_span(
        drop=(
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.raw",
            "gen_ai.response.finish_reasons",
            "gen_ai.response.model",
        ),
        attributes={"logfire.level_num": 17},
        status=2,
        events=[
            EventView(
                "exception",
                START + 10 * MS,
                {"exception.type": "openai.RateLimitError", "exception.message": RATE_LIMIT_MESSAGE},
            )
        ],
    )

    call = map_span(span)

    assert (call.status, call.error_type, call.http_status) == ("error", "rate_limit", 429)


# --- double instrumentation ---------------------------------------------------------------------


def openinference_anthropic(**span_fields: object) -> SpanView:
    return make_span(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "llm.system": "anthropic",
            "llm.request.model_name": "claude-sonnet-4-5",
            "llm.model_name": "claude-sonnet-4-5-20250929",
            "llm.token_count.prompt": 1842,
            "llm.token_count.completion": 77,
            "llm.token_count.prompt_details.cache_read": 1500,
            "llm.token_count.prompt_details.cache_write": 300,
            "llm.invocation_parameters": '{"max_tokens": 256, "stream": true}',
            "llm.finish_reason": "end_turn",
        },
        scope="openinference.instrumentation.anthropic",
        version="3.1.0",
        name="messages.stream",
        **span_fields,
    )


def test_the_native_span_nested_through_a_plain_span_is_merged():
    outer = openinference_anthropic(start_ms=0, end_ms=500)
    middle = make_span({}, scope="app", name="retry", parent_span_id=outer.span_id, start_ms=1, end_ms=499)
    native = anthropic_native(**{"gen_ai.response.time_to_first_chunk": 0.1})
    native.parent_span_id = middle.span_id

    calls, rest = select_calls([native, middle, outer])

    (call,) = calls
    assert call.span_id == outer.span_id
    assert call.source == "openinference"
    assert (call.ttft_ms, call.http_status) == (100.0, 200)
    assert call.attributes[DUPLICATES_KEY] == [native.span_id]
    assert call.attributes["anthropic.request.id"] == "req_1"
    assert rest == [middle, native]


def test_twin_roots_in_different_traces_are_merged_when_everything_agrees():
    ours = openinference_anthropic(trace_id="bd541ff9a4be07f7645d112e78a2f385", start_ms=0, end_ms=500)
    native = anthropic_native(**{"gen_ai.request.stream": True})
    native.trace_id = "c81ee3f9b8abba6f9306c60cf67c0b0e"

    calls, rest = select_calls([native, ours])

    (call,) = calls
    assert call.source == "openinference"
    assert tokens(call) == (1842, 1500, 300, 77, 0)
    assert rest == [native]


@pytest.mark.parametrize(
    "change",
    [
        {"resource": {**RESOURCE, "service.instance.id": "i-2"}},
        {"start_ms": 600, "end_ms": 900},
        {"tokens": 1843},
    ],
    ids=["other-process", "no-overlap", "other-usage"],
)
def test_twin_roots_stay_apart_when_anything_disagrees(change):
    ours = openinference_anthropic(trace_id="bd541ff9a4be07f7645d112e78a2f385", start_ms=0, end_ms=500)
    native = anthropic_native(**{"gen_ai.usage.input_tokens": change.get("tokens", 1842)})
    native.trace_id = "c81ee3f9b8abba6f9306c60cf67c0b0e"
    native.resource = change.get("resource", RESOURCE)
    native.start_ns = START + change.get("start_ms", 0) * MS
    native.end_ns = START + change.get("end_ms", 500) * MS

    calls, _ = select_calls([native, ours])

    assert len(calls) == 2


def test_identical_calls_from_one_instrumentation_are_never_merged():
    first = sdk_span()
    second = sdk_span()

    calls, rest = select_calls([first, second])

    assert [call.span_id for call in calls] == [first.span_id, second.span_id]
    assert rest == []


def test_a_wrapper_llm_span_over_two_client_calls_is_context_not_a_call():
    wrapper = make_span(
        {"openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "gpt-4o-mini"},
        scope="openinference.instrumentation.langchain",
        name="ChatOpenAI",
    )
    children = [sdk_span() for _ in range(2)]
    for child in children:
        child.parent_span_id = wrapper.span_id

    calls, rest = select_calls([wrapper, *children])

    assert [call.span_id for call in calls] == [child.span_id for child in children]
    assert rest == [wrapper]


def test_an_llm_span_over_a_wrapper_is_context_too():
    outer = make_span(
        {"openinference.span.kind": "LLM", "llm.system": "openai"},
        scope="openinference.instrumentation.crewai",
        name="Agent LLM",
    )
    wrapper = make_span(
        {"openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "gpt-4o-mini"},
        scope="openinference.instrumentation.langchain",
        name="ChatOpenAI",
        parent_span_id=outer.span_id,
    )
    children = [sdk_span() for _ in range(2)]
    for child in children:
        child.parent_span_id = wrapper.span_id

    calls, rest = select_calls([outer, wrapper, *children])

    assert sorted(call.span_id for call in calls) == sorted(child.span_id for child in children)
    assert rest == [outer, wrapper]


def test_openllmetry_over_the_official_instrumentation_keeps_the_complete_token_counts():
    official = make_span(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 85,
        },
        scope="opentelemetry.util.genai.handler",
        version="1.1b0",
        start_ms=2,
        end_ms=498,
    )
    openllmetry = make_span(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 85,
            "gen_ai.usage.cache_read.input_tokens": 1024,
            "gen_ai.usage.reasoning_tokens": 64,
            "gen_ai.is_streaming": False,
        },
        scope="opentelemetry.instrumentation.openai.v1",
        version="0.62.4",
        name="openai.chat",
    )
    official.parent_span_id = openllmetry.span_id

    calls, rest = select_calls([official, openllmetry])

    (call,) = calls
    assert call.source == "openllmetry"
    assert tokens(call) == (1200, 1024, 0, 85, 64)
    assert call.response_model == "gpt-4o-mini-2024-07-18"
    assert rest == [official]


def test_nested_calls_to_different_providers_are_both_counted():
    parent = openinference_anthropic()
    child = sdk_span()
    child.parent_span_id = parent.span_id

    calls, _ = select_calls([parent, child])

    assert {call.provider for call in calls} == {"anthropic", "openai"}


def test_openlits_http_child_span_gives_the_call_its_status_code():
    call_span = make_span(
        {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "error-500"},
        scope="openlit.instrumentation.openai",
        version="",
        status=2,
    )
    http = make_span(
        {"http.status_code": 500},
        scope="opentelemetry.instrumentation.httpx",
        version="0.66b1",
        name="POST",
        parent_span_id=call_span.span_id,
    )

    (call,), rest = select_calls([http, call_span])

    assert (call.http_status, call.error_type) == (500, "server_error")
    assert rest == [http]


# --- content carried by log records (2.3b0) --------------------------------------------------------


def log_record(event: str, body: object, span_id: str = "eee19b7ec3c1b174", **attrs: object) -> LogRecordView:
    return LogRecordView(
        trace_id="5b8efff798038103d269b633813fc60c",
        span_id=span_id,
        time_ns=START,
        event_name=event,
        severity_number=9,
        severity_text="",
        body=body,
        attributes={"gen_ai.system": "openai", **attrs},
        resource=RESOURCE,
        scope_name="opentelemetry.instrumentation.openai_v2",
        scope_version="2.3b0",
    )


def test_it_reads_2_3b0_message_events_and_the_streamed_finish_reason():
    system = map_log_record(log_record("gen_ai.system.message", {"content": "You are brief."}))
    user = map_log_record(log_record("gen_ai.user.message", {"content": "Capital of France?"}))
    choice = map_log_record(
        log_record(
            "gen_ai.choice",
            {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Paris"}},
        )
    )

    assert (system.kind, system.role, system.input_content) == ("input", "system", "You are brief.")
    assert (user.trace_id, user.span_id) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    assert (choice.kind, choice.output_content, choice.finish_reason) == ("output", "Paris", "length")
    assert (user.content, choice.content) == ("Capital of France?", "Paris")

    (merged,) = merge_fragments([system, user, choice]).values()
    assert json.loads(merged.input_content) == [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert json.loads(merged.output_content) == [{"role": "assistant", "content": "Paris"}]
    assert merged.finish_reason == "length"


def test_a_structured_message_body_is_kept_as_json():
    fragment = map_log_record(
        log_record("gen_ai.assistant.message", {"content": None, "tool_calls": [{"id": "call_1", "type": "function"}]})
    )

    assert json.loads(fragment.input_content) == {"content": None, "tool_calls": [{"id": "call_1", "type": "function"}]}


def test_unrelated_log_records_carry_no_content():
    assert map_log_record(log_record("app.started", "hello")) is None
    assert map_log_record(log_record("gen_ai.user.message", None)) is None


# --- fuzzing: only InvalidSpan may escape --------------------------------------------------------

KNOWN_KEYS = [
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.usage.raw",
    "gen_ai.usage.cost",
    "gen_ai.request.stream",
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.server.time_to_first_token",
    "gen_ai.response.finish_reasons",
    "gen_ai.input.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt.0.content",
    "gen_ai.completion.0.finish_reason",
    "error.type",
    "http.response.status_code",
    "http.status_code",
    "user.id",
    "observatory.team",
    "observatory.app_cache_hit",
    "observatory.cost_avoided_usd",
    "openinference.span.kind",
    "llm.invocation_parameters",
    "llm.token_count.prompt",
    "llm.finish_reason",
    "metadata",
    "embedding.embeddings.0.embedding.text",
    "langfuse.observation.type",
    "langfuse.observation.usage_details",
    "langfuse.observation.completion_start_time",
    "langfuse.observation.model.name",
    "langfuse.observation.level",
    "langfuse.observation.metadata.finish_reason",
    "logfire.msg_template",
    "request_data",
    "response_data",
    "duration",
    "traceloop.span.kind",
    "traceloop.association.properties.user_id",
    "openai.api.type",
]
ATTRIBUTE_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(),
        st.text(max_size=30),
        st.binary(max_size=8),
        st.sampled_from(
            [
                "chat",
                "LLM",
                "generation",
                '{"input": 5, "cache_read_input_tokens": -1}',
                '{"prompt_tokens": "x"}',
                '"2026-11-22T14:30:52Z"',
                '["stop"]',
                "streaming response from x",
                "<class 'openai.RateLimitError'>",
                "1e309",
                "NaN",
            ]
        ),
    ),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)),
    max_leaves=8,
)
SPANS = st.builds(
    lambda attrs, scope, name, status, message, parent, events: make_span(
        attrs, scope=scope, name=name, status=status, message=message, parent_span_id=parent, events=events
    ),
    st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=10), ATTRIBUTE_VALUES, max_size=12),
    st.sampled_from(
        [
            "observatory_sdk",
            "com.anthropic.sdk.python",
            "openlit.instrumentation.anthropic",
            "openinference.instrumentation.openai",
            "langfuse-sdk",
            "logfire.openai",
            "opentelemetry.instrumentation.openai.v1",
            "unknown",
        ]
    ),
    st.sampled_from(["chat gpt-4o", "", "streaming response from x", "OpenAI-generation", "Response"]),
    st.integers(min_value=0, max_value=5),
    st.text(max_size=40) | st.just(RATE_LIMIT_MESSAGE),
    st.none() | st.sampled_from(["0000000000000001", "0000000000000002"]),
    st.lists(
        st.builds(
            EventView,
            st.sampled_from(["exception", "First Token Stream Event", "gen_ai.content.prompt", "x"]),
            st.integers(min_value=0, max_value=2**64),
            st.dictionaries(
                st.sampled_from(["exception.type", "exception.message", "gen_ai.prompt"]), ATTRIBUTE_VALUES, max_size=3
            ),
        ),
        max_size=3,
    ),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans=st.lists(SPANS, max_size=6))
def test_random_spans_raise_only_invalid_span(spans):
    for span in spans:
        try:
            map_span(span)
        except InvalidSpan as exc:
            assert exc.span is span
    invalid: list[InvalidSpan] = []
    calls, rest = select_calls(spans, invalid)
    assert len(calls) + len(rest) + len(invalid) == len(spans)
    for call in calls:
        orjson.dumps(call.attributes)  # storable as JSONB
        assert call.input_content is None or isinstance(call.input_content, str)
        assert call.status in ("ok", "error")
