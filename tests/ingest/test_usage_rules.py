"""General usage rules, whatever the library: a usage object may be JSON or a Python repr, and whether reported
input already holds the cache is decided from the evidence (impossible counts, totals), not from the provider."""

from __future__ import annotations

import pytest

from ingest.mappers import map_span, select_calls
from ingest.mappers.normalize.reprs import MAX_REPR_CHARS
from ingest.mappers.normalize.tokens import Usage, apply_usage
from ingest.mappers.normalize.values import text_object
from ingest.otlp_decode import decode_traces
from ingest.records import CallFields, SpanView
from tests.ingest.test_captures import CAPTURES
from tests.ingest.test_mappers import START, make_span, tokens

OPENAI_REPR = (
    "{'completion_tokens': 85, 'prompt_tokens': 1200, 'total_tokens': 1285, 'completion_tokens_details': "
    "{'accepted_prediction_tokens': 0, 'audio_tokens': 0, 'reasoning_tokens': 64, 'text_tokens': None}, "
    "'prompt_tokens_details': {'audio_tokens': 0, 'cached_tokens': 1024, 'image_tokens': None}}"
)
# LiteLLM's Anthropic usage: prompt_tokens already holds the cache, and Anthropic's own keys sit beside it.
ANTHROPIC_REPR = (
    "{'completion_tokens': 77, 'prompt_tokens': 1842, 'total_tokens': 1919, 'completion_tokens_details': "
    "{'reasoning_tokens': 0, 'text_tokens': 77}, 'prompt_tokens_details': {'audio_tokens': None, "
    "'cache_write_tokens': 300, 'cached_tokens': 1500, 'text_tokens': 42}, 'cache_creation_input_tokens': 300, "
    "'cache_read_input_tokens': 1500, 'service_tier': 'standard'}"
)


def litellm_span(usage_object: str | None, status: int = 0, message: str = "", **extra: object) -> SpanView:
    attributes = {
        "gen_ai.request.model": "o4-mini",
        "gen_ai.response.model": "o4-mini-2025-04-16",
        "gen_ai.system": "openai",
        "gen_ai.operation.name": "chat",
        "llm.request.type": "completion",
        "llm.is_streaming": "False",
        "litellm.call_id": "9482008e-25ac-4482-9886-783fbc01efa1",
        "gen_ai.response.id": "chatcmpl-c2c2",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 85,
        "gen_ai.usage.total_tokens": 1285,
        "gen_ai.cost.total_cost": 0.0008492,
    }
    if usage_object is not None:
        attributes["metadata.usage_object"] = usage_object
    attributes.update(extra)
    return make_span(attributes, scope="litellm", version="", name="litellm_request", status=status, message=message)


# --- usage objects as text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"prompt_tokens": 5}', {"prompt_tokens": 5}),
        ("{'prompt_tokens': 5, 'details': {'cached_tokens': None, 'ok': True}}", {"prompt_tokens": 5, "details": {"cached_tokens": None, "ok": True}}),
        ("Usage(prompt_tokens=5, details=PromptTokensDetails(cached_tokens=2))", {"prompt_tokens": 5, "details": {"cached_tokens": 2}}),
        ("{'a': [1, (2, -3)]}", {"a": [1, [2, -3]]}),
    ],
)
def test_a_usage_object_may_be_json_or_a_python_repr(text, expected):
    assert text_object(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch /tmp/pwned')",
        "{'a': open('/etc/passwd').read()}",
        "{**other}",
        "{1, 2}",
        "[{'prompt_tokens': 1}]",
        "{'a': 1",
        "{'a': " + "[" * 200 + "]" * 200 + "}",
        "{'a': '" + "x" * MAX_REPR_CHARS + "'}",
    ],
    ids=["call", "call-inside", "spread", "set", "not-a-dict", "truncated", "deep", "too-long"],
)
def test_anything_but_plain_data_in_a_repr_reads_as_nothing(text):
    assert text_object(text) == {}


def test_litellm_reads_cache_and_reasoning_from_its_repr_usage_object():
    call = map_span(litellm_span(OPENAI_REPR))

    assert (call.source, call.provider, call.request_model, call.response_model) == (
        "litellm", "openai", "o4-mini", "o4-mini-2025-04-16",
    )
    assert tokens(call) == (1200, 1024, 0, 85, 64)
    assert str(call.provided_cost_usd) == "0.0008492"
    assert call.response_id == "chatcmpl-c2c2"
    assert "metadata.usage_object" not in call.attributes


def test_litellm_without_a_readable_usage_object_keeps_its_plain_counts():
    call = map_span(litellm_span("{'prompt_tokens': <object at 0x7f>}"))

    assert tokens(call) == (1200, 0, 0, 85, 0)


def test_litellm_anthropic_input_that_already_holds_the_cache_is_not_counted_twice():
    call = map_span(
        litellm_span(
            ANTHROPIC_REPR,
            **{
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.response.model": "claude-sonnet-4-5-20250929",
                "gen_ai.usage.input_tokens": 1842,
                "gen_ai.usage.output_tokens": 77,
                "gen_ai.usage.total_tokens": 1919,
            },
        )
    )

    assert tokens(call) == (1842, 1500, 300, 77, 0)


def test_litellms_raw_child_gives_the_providers_response_id_and_usage_when_the_request_span_has_none():
    request = litellm_span(
        None,
        **{
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.response.id": "chatcmpl-9e912dc9-652c-4f10-b915-95dea1f8395e",  # LiteLLM's own id
            "gen_ai.usage.input_tokens": 1842,
            "gen_ai.usage.output_tokens": 77,
            "gen_ai.usage.total_tokens": 1919,
        },
    )
    raw = make_span(
        {
            "llm.anthropic.id": "msg_73e6",
            "llm.anthropic.model": "claude-sonnet-4-5-20250929",
            "llm.anthropic.usage": "{'input_tokens': 42, 'cache_creation_input_tokens': 300, "
            "'cache_read_input_tokens': 1500, 'output_tokens': 77, 'service_tier': 'standard'}",
        },
        scope="litellm",
        version="",
        name="raw_gen_ai_request",
        parent_span_id=request.span_id,
    )

    (call,), rest = select_calls([request, raw])

    assert call.response_id == "msg_73e6"
    assert tokens(call) == (1842, 1500, 300, 77, 0)
    assert rest == [raw]


def test_a_failed_litellm_call_has_no_response_id():
    call = map_span(
        litellm_span(
            "{}",
            status=2,
            message="litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached",
            **{"gen_ai.response.id": "42dd3f14", "litellm.call_id": "42dd3f14", "error.code": "429"},
        )
    )

    assert (call.status, call.response_id) == ("error", "")


# --- does input already hold the cache? ----------------------------------------------------------------


def stored(usage: Usage, *, mapper_knows_input_excludes_cache: bool = False) -> tuple[int, int, int, int, int]:
    call = CallFields(trace_id="a" * 32, span_id="b" * 16, parent_span_id=None, start_time=START, duration_ms=1.0)
    apply_usage(call, usage, input_excludes_cache=mapper_knows_input_excludes_cache)
    return tokens(call)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # Anthropic's own shape, no total: input leaves the cache out.
        (Usage(input=42, output=77, cache_read=1500, cache_write=300, input_may_exclude_cache=True), (1842, 1500, 300, 77, 0)),
        # The same keys beside a total equal to input + output: input already holds the cache.
        (Usage(input=1842, output=77, cache_read=1500, cache_write=300, total=1919, input_may_exclude_cache=True), (1842, 1500, 300, 77, 0)),
        # ... with more uncached input than cache, where only the total can tell.
        (Usage(input=5000, output=77, cache_read=1500, cache_write=300, total=5077, input_may_exclude_cache=True), (5000, 1500, 300, 77, 0)),
        # A total counting the cache on top of input and output: input left it out, whatever the shape says.
        (Usage(input=5000, output=77, cache_read=1500, cache_write=300, total=6877), (6800, 1500, 300, 77, 0)),
        # Input smaller than the cache cannot hold it, even beside a total of input + output.
        (Usage(input=42, output=77, cache_read=1500, cache_write=300, total=119, input_may_exclude_cache=True), (1842, 1500, 300, 77, 0)),
        # OpenAI's shape: cached tokens are part of prompt_tokens.
        (Usage(input=1200, output=85, cache_read=1024, reasoning=64, total=1285), (1200, 1024, 0, 85, 64)),
    ],
    ids=["anthropic-raw", "total-says-included", "total-says-included-large-input", "total-says-excluded",
         "impossible-input", "openai"],
)
def test_totals_and_impossible_counts_decide_whether_input_holds_the_cache(usage, expected):
    assert stored(usage) == expected


def test_what_a_mapper_knows_of_its_source_outranks_a_total_of_input_plus_output():
    # Vercel AI before 6.x on Anthropic: inputTokens is the uncached part and totalTokens = inputTokens + outputTokens.
    usage = Usage(input=5000, output=77, cache_read=1500, cache_write=300, total=5077)

    assert stored(usage, mapper_knows_input_excludes_cache=True) == (6800, 1500, 300, 77, 0)


# --- streams without usage -------------------------------------------------------------------------------

STREAMS_WITHOUT_USAGE = ("otel-openai-v2-2.4b0", "openllmetry-0.62.4", "logfire-5.4.0")


@pytest.mark.parametrize("library", STREAMS_WITHOUT_USAGE)
def test_captured_streams_without_include_usage_report_no_usage(library):
    body = (CAPTURES / library / "openai_stream_no_usage.pb").read_bytes()

    (call,), _ = select_calls(decode_traces(body, "application/x-protobuf").spans)

    assert call.usage_reported is False
    assert tokens(call) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("scope", "attributes"),
    [
        ("opentelemetry.util.genai.handler", {"gen_ai.request.stream": True}),
        ("opentelemetry.instrumentation.openai.v1", {"gen_ai.is_streaming": True}),
        ("langfuse-sdk", {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o-mini",
                          "langfuse.observation.usage_details": '{"input": 0, "output": 0, "total": 0}',
                          "langfuse.observation.completion_start_time": '"2026-11-22T14:30:52.100000Z"'}),
    ],
    ids=["otel-genai", "openllmetry", "langfuse"],
)
def test_a_stream_reporting_only_zero_counts_reported_no_usage(scope, attributes):
    span = make_span(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 0,
            "gen_ai.usage.output_tokens": 0,
            **attributes,
        },
        scope=scope,
    )

    call = map_span(span)

    assert (call.streaming, call.usage_reported, call.input_tokens) == (True, False, 0)


def test_a_call_without_streaming_keeps_its_reported_counts():
    span = make_span({"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
                      "gen_ai.usage.input_tokens": 18, "gen_ai.usage.output_tokens": 0}, scope="any")

    assert map_span(span).usage_reported is True
