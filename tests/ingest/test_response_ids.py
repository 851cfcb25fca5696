"""The provider's response id on every call a mapper can see it for: gen_ai.response.id, Vercel's ai.response.id,
the response object OpenInference records as output.value (LangChain's LLMResult included)."""

from __future__ import annotations

import json

import pytest

from billing.pricing.at_ingest import IngestCost
from ingest.mappers import map_span
from ingest.mappers.normalize.response_ids import provider_from_response_id, response_id_in
from ingest.services import Attribution, call_row
from ingest.store import LLMCALL
from tests.ingest.test_mappers import anthropic_native, make_span, sdk_span


@pytest.mark.parametrize(
    ("response_id", "provider"),
    [
        ("msg_01XFDUDYJgAACzvnptvVoYEL", "anthropic"),
        ("msg_bdrk_01Ab", "aws.bedrock"),
        ("msg_vrtx_01Ab", "gcp.vertex_ai"),
        ("resp_67ccd2bed1ec8190b14f964abc054267", "openai"),
        ("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", ""),  # every OpenAI-compatible server answers with this shape
        ("", ""),
    ],
)
def test_a_response_ids_shape_names_its_provider_only_when_no_one_else_uses_it(response_id, provider):
    assert provider_from_response_id(response_id) == provider


def test_gen_ai_response_id_is_the_calls_response_id():
    assert map_span(anthropic_native(**{"gen_ai.response.id": "msg_1"})).response_id == "msg_1"
    assert map_span(sdk_span()).response_id == ""


def test_a_call_without_provider_or_known_model_takes_the_provider_from_the_response_id():
    span = make_span(
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "house-model", "gen_ai.response.id": "msg_9"},
        scope="some.library",
    )

    assert map_span(span).provider == "anthropic"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ({"id": "chatcmpl-1", "model": "gpt-4o-mini-2024-07-18", "choices": []}, "chatcmpl-1"),
        ({"id": "msg_1", "type": "message", "model": "claude-sonnet-4-5-20250929"}, "msg_1"),
        ({"generations": [[{"text": "hi"}]], "llm_output": {"id": "chatcmpl-2", "model_name": "gpt-4o-mini"}}, "chatcmpl-2"),
        (
            {
                "generations": [[{"message": {"kwargs": {"id": "lc_run--1", "response_metadata": {"id": "chatcmpl-3"}}}}]],
                "llm_output": None,
            },
            "chatcmpl-3",
        ),
        ({"id": "lc_run--9", "content": "hi"}, ""),  # a LangChain message id is not the provider's
    ],
)
def test_the_response_id_is_found_in_recorded_response_objects(output, expected):
    assert response_id_in(output) == expected


def test_openinference_reads_the_response_id_from_its_json_output_value():
    span = make_span(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-mini-2024-07-18",
            "llm.token_count.prompt": 12,
            "llm.token_count.completion": 3,
            "output.mime_type": "application/json",
            "output.value": json.dumps({"id": "chatcmpl-7", "model": "gpt-4o-mini-2024-07-18", "choices": []}),
        },
        scope="openinference.instrumentation.openai",
        name="ChatCompletion",
    )

    assert map_span(span).response_id == "chatcmpl-7"


def test_vercel_ai_reads_ai_response_id():
    span = make_span(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.provider": "openai.chat",
            "ai.model.id": "gpt-4o-mini",
            "ai.response.id": "chatcmpl-8",
            "ai.usage.promptTokens": 10,
            "ai.usage.completionTokens": 2,
        },
        scope="ai",
        name="ai.generateText.doGenerate",
    )

    assert map_span(span).response_id == "chatcmpl-8"


def test_the_response_id_is_stored_in_its_own_column():
    call = map_span(anthropic_native(**{"gen_ai.response.id": "msg_1"}))
    row = call_row(1, None, call, Attribution(None, None, ""), IngestCost(None, "pending", None))

    assert len(row) == len(LLMCALL.columns)
    assert row[LLMCALL.column_names.index("response_id")] == "msg_1"
