"""Every traces body of the real-library OTLP corpus decodes and maps to exactly the calls it reported.

Ground truth (tests/data/otlp/MANIFEST.md): OpenAI chat/responses 1200 input (1024 cached) / 85 output
(64 reasoning); embeddings 18; Anthropic 1842 input = 42 + 1500 cache read + 300 cache write, 77 output.
What each library reports, and so what we can store (0 where the library does not report a count):

- otel-openai-v2 (2.4b0): no cache or reasoning counts (0 / 0), no stream flag, no finish reason on streams.
- openlit: cache read 1024 but no reasoning on chat (only Responses: 64); Anthropic input 42 is corrected
  to 1842; HTTP status from its httpx child span; a client-side cost.
- traceloop: cache 1024 and reasoning 64 except on chat streams (0); Anthropic streams report 78 output
  tokens (a library bug, stored as reported); messages.stream() carries no stream flag.
- openinference: everything; the Anthropic SDK's own span is merged into the OpenInference one (nested
  for plain calls, twin roots in separate traces for streams).
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from ingest.mappers import DUPLICATES_KEY, select_calls
from ingest.otlp_decode import decode_traces

CORPUS = Path(__file__).resolve().parents[1] / "data" / "otlp"
INDEX = json.loads((CORPUS / "index.json").read_text())
TRACE_FILES = [entry for entry in INDEX if entry["signal"] == "traces"]

OPENAI_CHAT = {
    "provider": "openai",
    "operation": "chat",
    "request_model": "gpt-4o-mini",
    "response_model": "gpt-4o-mini-2024-07-18",
    "input_tokens": 1200,
    "output_tokens": 85,
    "cache_write_tokens": 0,
    "usage_reported": True,
    "status": "ok",
    "error_type": "",
    "finish_reason": "stop",
}
EMBEDDINGS = {
    "provider": "openai",
    "operation": "embeddings",
    "request_model": "text-embedding-3-small",
    "response_model": "text-embedding-3-small",
    "input_tokens": 18,
    "cached_input_tokens": 0,
    "cache_write_tokens": 0,
    "output_tokens": 0,
    "reasoning_tokens": 0,
    "usage_reported": True,
    "status": "ok",
    "finish_reason": "",
}
ANTHROPIC = {
    "provider": "anthropic",
    "operation": "chat",
    "request_model": "claude-sonnet-4-5",
    "response_model": "claude-sonnet-4-5-20250929",
    "input_tokens": 1842,
    "cached_input_tokens": 1500,
    "cache_write_tokens": 300,
    "output_tokens": 77,
    "reasoning_tokens": 0,
    "usage_reported": True,
    "status": "ok",
    "error_type": "",
    "finish_reason": "stop",
}


def _error(provider: str, code: int) -> dict:
    return {
        "provider": provider,
        "operation": "chat",
        "request_model": f"error-{code}",
        "response_model": "",
        "input_tokens": 0,
        "output_tokens": 0,
        "usage_reported": False,
        "streaming": False,
        "status": "error",
        "error_type": "rate_limit" if code == 429 else "server_error",
        "http_status": code,
        "finish_reason": "",
        "ttft_ms": None,
    }


def _openai(cached: int, reasoning: int, **extra: object) -> dict:
    return {**OPENAI_CHAT, "cached_input_tokens": cached, "reasoning_tokens": reasoning, **extra}


STREAM = {"streaming": True, "ttft_ms": "measured"}
PLAIN = {"streaming": False, "ttft_ms": None}

EXPECTED: dict[tuple[str, str], list[dict]] = {
    ("otel-openai-v2", "openai_chat"): [_openai(0, 0, **PLAIN, http_status=None)],
    ("otel-openai-v2", "openai_chat_stream"): [_openai(0, 0, **PLAIN, finish_reason="", http_status=None)],
    ("otel-openai-v2", "openai_chat_tools"): [_openai(0, 0, **PLAIN, finish_reason="tool_call")],
    ("otel-openai-v2", "openai_embeddings"): [{**EMBEDDINGS, **PLAIN, "http_status": None}],
    ("otel-openai-v2", "openai_error_429"): [_error("openai", 429)],
    ("otel-openai-v2", "openai_error_500"): [_error("openai", 500)],
    ("otel-openai-v2", "session_context"): [_openai(0, 0, **PLAIN)] * 2,
    ("openlit", "openai_chat"): [
        _openai(1024, 0, **PLAIN, http_status=200, end_user="user-corpus-42", provided_cost_usd=Decimal("0.0001542"))
    ],
    ("openlit", "openai_chat_stream"): [_openai(1024, 0, **STREAM, http_status=200)],
    ("openlit", "openai_chat_tools"): [_openai(1024, 0, **PLAIN, finish_reason="tool_call", http_status=200)],
    ("openlit", "openai_embeddings"): [{**EMBEDDINGS, **PLAIN, "http_status": 200, "provided_cost_usd": Decimal("3.6E-7")}],
    ("openlit", "openai_error_429"): [{**_error("openai", 429), "provided_cost_usd": None}],
    ("openlit", "openai_error_500"): [_error("openai", 500)],
    ("openlit", "openai_responses"): [_openai(1024, 64, **PLAIN, operation="responses", http_status=200)],
    ("openlit", "openai_responses_stream"): [_openai(1024, 64, **STREAM, operation="responses")],
    ("openlit", "session_context"): [_openai(1024, 0, **PLAIN, http_status=200, end_user="")] * 2,
    ("openlit", "anthropic_messages"): [{**ANTHROPIC, **PLAIN, "http_status": 200, "provided_cost_usd": Decimal("0.002856")}],
    ("openlit", "anthropic_messages_stream"): [{**ANTHROPIC, **STREAM}],
    ("openlit", "anthropic_messages_stream_raw"): [{**ANTHROPIC, **STREAM}],
    ("openlit", "anthropic_tools"): [{**ANTHROPIC, **PLAIN, "finish_reason": "tool_call"}],
    ("openlit", "anthropic_error_429"): [_error("anthropic", 429)],
    ("traceloop", "openai_chat"): [_openai(1024, 64, **PLAIN, http_status=None, end_user="user-corpus-42")],
    ("traceloop", "openai_chat_stream"): [_openai(1024, 0, **STREAM)],
    ("traceloop", "openai_chat_tools"): [_openai(1024, 64, **PLAIN, finish_reason="tool_call")],
    ("traceloop", "openai_embeddings"): [{**EMBEDDINGS, **PLAIN}],
    ("traceloop", "openai_error_429"): [_error("openai", 429)],
    ("traceloop", "openai_error_500"): [_error("openai", 500)],
    ("traceloop", "openai_responses"): [_openai(1024, 64, **PLAIN, operation="responses")],
    ("traceloop", "openai_responses_stream"): [_openai(1024, 64, operation="responses", streaming=True, ttft_ms=None)],
    ("traceloop", "session_context"): [_openai(1024, 64, **PLAIN, end_user="user-corpus-42", session="sess-corpus-001")] * 2,
    ("traceloop", "anthropic_messages"): [{**ANTHROPIC, **PLAIN, "http_status": None}],
    # traceloop adds message_start's output_tokens=1 to the final count (78, pitfall 6) and sends no
    # stream flag for the messages.stream() helper.
    ("traceloop", "anthropic_messages_stream"): [{**ANTHROPIC, **PLAIN, "output_tokens": 78}],
    ("traceloop", "anthropic_messages_stream_raw"): [{**ANTHROPIC, "output_tokens": 78, "streaming": True, "ttft_ms": None}],
    ("traceloop", "anthropic_tools"): [{**ANTHROPIC, **PLAIN, "finish_reason": "tool_call"}],
    ("traceloop", "anthropic_error_429"): [_error("anthropic", 429)],
    ("openinference", "openai_chat"): [_openai(1024, 64, **PLAIN, http_status=None, end_user="user-corpus-42")],
    ("openinference", "openai_chat_stream"): [_openai(1024, 64, **STREAM)],
    ("openinference", "openai_chat_tools"): [_openai(1024, 64, **PLAIN, finish_reason="tool_call")],
    ("openinference", "openai_embeddings"): [{**EMBEDDINGS, **PLAIN}],
    ("openinference", "openai_error_429"): [_error("openai", 429)],
    ("openinference", "openai_error_500"): [_error("openai", 500)],
    ("openinference", "openai_responses"): [_openai(1024, 64, **PLAIN, operation="responses", finish_reason="")],
    ("openinference", "openai_responses_stream"): [_openai(1024, 64, **STREAM, operation="responses", finish_reason="")],
    ("openinference", "session_context"): [_openai(1024, 64, **PLAIN, end_user="user-corpus-42", session="sess-corpus-001")] * 2,
    ("openinference", "anthropic_messages"): [{**ANTHROPIC, **PLAIN, "http_status": 200, "end_user": "user-corpus-42"}],
    ("openinference", "anthropic_messages_stream"): [{**ANTHROPIC, **STREAM, "http_status": 200}],
    ("openinference", "anthropic_messages_stream_raw"): [{**ANTHROPIC, **STREAM, "http_status": 200}],
    ("openinference", "anthropic_tools"): [{**ANTHROPIC, **PLAIN, "finish_reason": "tool_call"}],
    ("openinference", "anthropic_error_429"): [_error("anthropic", 429)],
}
SOURCES = {
    "otel-openai-v2": "otel-genai",
    "openlit": "openlit",
    "traceloop": "openllmetry",
    "openinference": "openinference",
}
# the Anthropic SDK span that OpenInference's span absorbs
DOUBLE_INSTRUMENTED = {
    ("openinference", case)
    for case in (
        "anthropic_messages",
        "anthropic_messages_stream",
        "anthropic_messages_stream_raw",
        "anthropic_tools",
        "anthropic_error_429",
    )
}


def _body(entry: dict) -> bytes:
    raw = (CORPUS / entry["file"]).read_bytes()
    return gzip.decompress(raw) if entry["content_encoding"] == "gzip" else raw


def test_the_corpus_copy_is_complete():
    assert len(TRACE_FILES) == 112
    assert {(entry["library"], entry["case"]) for entry in TRACE_FILES} == set(EXPECTED)


@pytest.mark.parametrize("entry", TRACE_FILES, ids=[entry["file"] for entry in TRACE_FILES])
def test_it_maps_the_calls_the_library_reported(entry):
    decoded = decode_traces(_body(entry), entry["content_type"])
    assert decoded.rejected == 0
    assert len(decoded.spans) == entry["span_count"]

    calls, rest = select_calls(decoded.spans)

    expected = EXPECTED[(entry["library"], entry["case"])]
    assert len(calls) == len(expected)
    assert len(calls) + len(rest) == len(decoded.spans)
    for call, want in zip(sorted(calls, key=lambda c: c.start_time), expected, strict=True):
        for field, value in want.items():
            actual = getattr(call, field)
            if value == "measured":
                assert actual is not None and 0 < actual < call.duration_ms, field
            else:
                assert actual == value, f"{field}: {actual!r} != {value!r}"
        assert call.source == SOURCES[entry["library"]]
        assert call.environment == "corpus"
        assert call.service_name == f"corpus-{entry['library']}"
        assert call.duration_ms > 0
        assert call.input_tokens >= call.cached_input_tokens + call.cache_write_tokens
        assert call.output_tokens >= call.reasoning_tokens
        content_keys = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "input.value"}
        assert not content_keys & call.attributes.keys()
        assert not any(key.startswith("llm.input_messages.") for key in call.attributes)


@pytest.mark.parametrize(
    "entry",
    [entry for entry in TRACE_FILES if (entry["library"], entry["case"]) in DOUBLE_INSTRUMENTED],
    ids=lambda entry: entry["file"],
)
def test_it_counts_the_anthropic_sdk_span_and_the_openinference_span_once(entry):
    spans = decode_traces(_body(entry), entry["content_type"]).spans
    native = next(span for span in spans if span.scope_name == "com.anthropic.sdk.python")

    calls, rest = select_calls(spans)

    assert [call.source for call in calls] == ["openinference"]
    assert calls[0].attributes[DUPLICATES_KEY] == [native.span_id]
    assert rest == [native]


@pytest.mark.parametrize(
    "entry", [entry for entry in TRACE_FILES if entry["library"] == "openlit"], ids=lambda entry: entry["file"]
)
def test_it_keeps_openlits_httpx_child_span_as_context(entry):
    spans = decode_traces(_body(entry), entry["content_type"]).spans

    calls, rest = select_calls(spans)

    assert [span.name for span in rest] == ["POST"] * len(calls)
    assert {span.parent_span_id for span in rest} == {call.span_id for call in calls}


def test_content_moves_out_of_attributes():
    entry = next(e for e in TRACE_FILES if e["file"] == "openinference/openai_chat.json")
    calls, _ = select_calls(decode_traces(_body(entry), entry["content_type"]).spans)

    call = calls[0]
    assert "What is the capital of France?" in call.input_content
    assert "The capital of France is Paris." in call.output_content
    assert "input.value" not in call.attributes
    assert call.attributes["llm.invocation_parameters"].startswith('{"model": "gpt-4o-mini"')
