"""The OpenAI integration against the loopback fake: what the app gets back, and what is exported."""

from __future__ import annotations

import observatory_sdk
import openai
import pytest
from sdk_fakes import ANSWER, ANSWER_PARTS, OPENAI_MODEL

MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello."},
]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_it_exports_a_chat_span_with_usage(openai_client, only_span):
    response = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100, temperature=0.2)

    assert isinstance(response, openai.types.chat.ChatCompletion)
    assert response.choices[0].message.content == ANSWER
    span = only_span()
    attributes = span["attributes"]
    assert span["name"] == "chat gpt-4o-mini"
    assert span["kind"] == 3  # SPAN_KIND_CLIENT
    assert (span["scope"], span["scope_version"]) == ("observatory_sdk", observatory_sdk.__version__)
    assert span["status_code"] == 0
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.model"] == OPENAI_MODEL
    assert attributes["gen_ai.response.id"] == "chatcmpl-fake1"
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert attributes["gen_ai.usage.output_tokens"] == 85
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 64
    assert attributes["gen_ai.request.max_tokens"] == 100
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.request.stream"] is False
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["observatory.team"] == "core"
    assert attributes["observatory.environment"] == "test"
    assert len(attributes["observatory.prompt_prefix_hash"]) == 32
    assert len(attributes["observatory.request_hash"]) == 32
    assert span["end"] > span["start"]


def test_it_sends_bearer_auth_to_the_traces_path(openai_client, observatory, exported):
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    exported(1)

    assert observatory.posts[0]["Authorization"] == "Bearer obs-test-key"
    assert observatory.posts[0]["Content-Type"] == "application/x-protobuf"


def test_wrap_returns_the_same_client(provider, observatory):
    client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test")

    assert observatory_sdk.wrap(client) is client
    assert observatory_sdk.wrap(client) is client


def test_it_streams_the_same_chunks_and_reads_usage_from_the_last(openai_client, provider, only_span):
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )

    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    texts = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert texts == ANSWER_PARTS
    assert chunks[-1].usage.prompt_tokens == 1200
    span = only_span()
    attributes = span["attributes"]
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.output_tokens"] == 85
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert 0 < attributes["gen_ai.response.time_to_first_chunk"] <= (span["end"] - span["start"]) / 1e9


def test_a_stream_without_include_usage_is_sent_unchanged_and_has_no_tokens(openai_client, provider, only_span):
    for _ in openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass

    assert "stream_options" not in provider.requests[-1]["body"]
    attributes = only_span()["attributes"]
    assert attributes["gen_ai.response.id"] == "chatcmpl-fake1"
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert not [key for key in attributes if key.startswith("gen_ai.usage.")]


def test_a_stream_closed_early_still_ends_its_span(openai_client, only_span):
    with openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))

    attributes = only_span()["attributes"]
    assert attributes["gen_ai.request.stream"] is True
    assert "gen_ai.response.time_to_first_chunk" in attributes


def test_the_chat_stream_helper_is_observed(openai_client, only_span):
    with openai_client.chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.content == ANSWER
    attributes = only_span()["attributes"]
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.request.stream"] is True


def test_it_exports_responses_api_calls(openai_client, only_span):
    response = openai_client.responses.create(model="gpt-4o-mini", input="Say hello.", instructions="Be terse.")

    assert response.output_text == ANSWER
    span = only_span()
    attributes = span["attributes"]
    assert span["name"] == "responses gpt-4o-mini"
    assert attributes["gen_ai.operation.name"] == "responses"
    assert attributes["gen_ai.response.id"] == "resp_fake1"
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 64
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]


def test_it_reads_usage_from_the_completed_event_of_a_responses_stream(openai_client, only_span):
    events = list(openai_client.responses.create(model="gpt-4o-mini", input="Say hello.", stream=True))

    assert [event.type for event in events][-1] == "response.completed"
    attributes = only_span()["attributes"]
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.output_tokens"] == 85
    assert attributes["gen_ai.response.time_to_first_chunk"] > 0


def test_it_exports_embeddings(openai_client, only_span):
    result = openai_client.embeddings.create(model="text-embedding-3-small", input="hello")

    assert len(result.data[0].embedding) == 3
    span = only_span()
    assert span["name"] == "embeddings text-embedding-3-small"
    assert span["attributes"]["gen_ai.operation.name"] == "embeddings"
    assert span["attributes"]["gen_ai.usage.input_tokens"] == 18
    assert "observatory.prompt_prefix_hash" not in span["attributes"]


@pytest.mark.parametrize(("status", "error_class"), [(429, openai.RateLimitError), (500, openai.InternalServerError)])
def test_the_app_gets_the_clients_own_error(openai_client, only_span, status, error_class):
    with pytest.raises(error_class) as raised:
        openai_client.chat.completions.create(model=f"fail-{status}", messages=MESSAGES)

    assert type(raised.value) is error_class
    assert raised.value.status_code == status
    span = only_span()
    assert span["status_code"] == 2  # STATUS_CODE_ERROR
    assert span["attributes"]["error.type"] == error_class.__name__
    assert span["attributes"]["http.response.status_code"] == status
    assert not [key for key in span["attributes"] if key.startswith("gen_ai.usage.")]


def test_a_timeout_is_recorded_as_apitimeouterror(openai_client, only_span):
    with pytest.raises(openai.APITimeoutError):
        openai_client.chat.completions.create(model="slow", messages=MESSAGES, timeout=0.2)

    attributes = only_span()["attributes"]
    assert attributes["error.type"] == "APITimeoutError"
    assert "http.response.status_code" not in attributes


def test_tool_calls_are_reported_and_tools_change_the_prefix_hash(openai_client, exported):
    response = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=[WEATHER_TOOL])
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert response.choices[0].message.tool_calls[0].function.name == "get_weather"
    with_tools, without_tools = (span["attributes"] for span in exported(2))
    assert with_tools["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert with_tools["observatory.prompt_prefix_hash"] != without_tools["observatory.prompt_prefix_hash"]


@pytest.mark.anyio
async def test_async_calls_and_streams_are_observed(async_openai_client, exported):
    response = await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stream = await async_openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    texts = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices and chunk.choices[0].delta.content]

    assert response.choices[0].message.content == ANSWER
    assert texts == ANSWER_PARTS
    plain, streamed = (span["attributes"] for span in exported(2))
    assert plain["gen_ai.usage.input_tokens"] == 1200
    assert plain["gen_ai.request.stream"] is False
    assert streamed["gen_ai.usage.output_tokens"] == 85
    assert streamed["gen_ai.response.time_to_first_chunk"] > 0


@pytest.mark.anyio
async def test_async_errors_are_the_clients_own(async_openai_client, only_span):
    with pytest.raises(openai.RateLimitError):
        await async_openai_client.chat.completions.create(model="fail-429", messages=MESSAGES)

    assert only_span()["attributes"]["error.type"] == "RateLimitError"


def test_copies_from_with_options_are_observed(openai_client, only_span):
    openai_client.with_options(timeout=30).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert only_span()["attributes"]["gen_ai.usage.input_tokens"] == 1200


def test_instrument_observes_every_client_until_uninstrument(provider, exported):
    observatory_sdk.instrument()
    try:
        client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)
        observatory_sdk.wrap(client)  # already observed through the class: no second span
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        observatory_sdk.uninstrument()
    openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test").chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES
    )

    assert exported(1)[0]["attributes"]["gen_ai.usage.input_tokens"] == 1200
