"""MLflow tracing in both modes, with the attribute shapes of mlflow 3.18.0 (tests/data/otlp/captures/mlflow-*):
JSON-encoded values, usage whose input already holds the cache, reasoning only in the recorded outputs, the
request model in the `model` request argument, and the GenAI-semconv mode that has no mlflow.* keys at all."""

from __future__ import annotations

import json

from ingest.mappers import map_span
from ingest.records import EventView, SpanView
from tests.ingest.test_mappers import MS, START, make_span, tokens

SCOPE = "mlflow.tracing.provider"


def mlflow_span(name: str, attributes: dict, **fields: object) -> SpanView:
    return make_span({"mlflow.traceRequestId": '"tr-1"', "mlflow.spanType": '"CHAT_MODEL"', **attributes},
                     scope=SCOPE, version="", name=name, **fields)


def openai_outputs(model: str, **usage: object) -> str:
    return json.dumps({"id": "chatcmpl-4d14", "object": "chat.completion", "model": model, "choices": [], "usage": usage})


def test_openai_reasoning_comes_from_the_recorded_outputs_and_the_request_model_from_the_model_argument():
    call = map_span(
        mlflow_span(
            "Completions",
            {
                "mlflow.spanInputs": '{"model": "o4-mini", "messages": []}',
                "model": '"o4-mini"',
                "mlflow.message.format": '"openai"',
                "mlflow.llm.model": '"o4-mini-2025-04-16"',
                "mlflow.chat.tokenUsage": '{"input_tokens": 1200, "output_tokens": 85, "total_tokens": 1285, '
                '"cache_read_input_tokens": 1024}',
                "mlflow.spanOutputs": openai_outputs(
                    "o4-mini-2025-04-16",
                    prompt_tokens=1200,
                    completion_tokens=85,
                    total_tokens=1285,
                    completion_tokens_details={"reasoning_tokens": 64},
                    prompt_tokens_details={"cached_tokens": 1024},
                ),
            },
        )
    )

    assert (call.source, call.provider, call.request_model, call.response_model) == (
        "mlflow", "openai", "o4-mini", "o4-mini-2025-04-16",
    )
    assert tokens(call) == (1200, 1024, 0, 85, 64)
    assert (call.streaming, call.response_id) == (False, "chatcmpl-4d14")


def test_anthropic_input_already_holding_the_cache_is_kept_and_the_snapshot_read_from_the_outputs():
    call = map_span(
        mlflow_span(
            "Messages.create",
            {
                "mlflow.spanInputs": '{"max_tokens": 256, "model": "claude-sonnet-4-5"}',
                "mlflow.llm.model": '"claude-sonnet-4-5"',
                "mlflow.llm.provider": '"anthropic"',
                "mlflow.chat.tokenUsage": '{"input_tokens": 1842, "output_tokens": 77, "total_tokens": 1919, '
                '"cache_read_input_tokens": 1500, "cache_creation_input_tokens": 300}',
                "mlflow.spanOutputs": json.dumps(
                    {
                        "id": "msg_56f4",
                        "type": "message",
                        "model": "claude-sonnet-4-5-20250929",
                        "usage": {"input_tokens": 42, "cache_creation_input_tokens": 300,
                                  "cache_read_input_tokens": 1500, "output_tokens": 77},
                    }
                ),
            },
        )
    )

    assert (call.provider, call.request_model, call.response_model) == (
        "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
    )
    assert tokens(call) == (1842, 1500, 300, 77, 0)
    assert call.response_id == "msg_56f4"


def test_a_stream_is_read_from_the_stream_argument_and_its_first_chunk_is_the_ttft():
    call = map_span(
        mlflow_span(
            "Completions",
            {
                "model": '"gpt-4o-mini"',
                "stream": "true",
                "mlflow.llm.model": '"gpt-4o-mini-2024-07-18"',
                "mlflow.chat.tokenUsage": '{"input_tokens": 2006, "output_tokens": 93, "total_tokens": 2099}',
            },
            events=[EventView(f"mlflow.chunk.item.{n}", START + (60 + n) * MS, {}) for n in range(3)],
        )
    )

    assert (call.request_model, call.response_model) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (call.streaming, call.ttft_ms) == (True, 60.0)


def test_the_semconv_mode_is_mapped_by_the_official_names_with_mlflows_request_arguments():
    call = map_span(
        make_span(
            {
                "model": '"gpt-4o-mini"',
                "stream": "true",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 2006,
                "gen_ai.usage.output_tokens": 93,
                "gen_ai.response.id": "chatcmpl-5f50",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            },
            scope=SCOPE,
            version="",
            name="chat gpt-4o-mini-2024-07-18",
        )
    )

    assert (call.source, call.provider, call.request_model, call.response_model) == (
        "mlflow", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
    )
    assert (tokens(call), call.streaming, call.response_id) == ((2006, 0, 0, 93, 0), True, "chatcmpl-5f50")


def test_semconv_mode_spans_that_are_not_model_calls_stay_context():
    span = make_span({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"}, scope=SCOPE, name="agent")

    assert map_span(span) is None
