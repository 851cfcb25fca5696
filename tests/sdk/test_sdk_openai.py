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
STREAM = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def raw_client(provider):
    """A client the SDK does not observe, reading the same fake."""
    return openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)


def _chunks(stream):
    """The chunks as the app would forward them (`to_dict()` leaves out fields the server did not send)."""
    return [chunk.to_dict() for chunk in stream]


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


def test_an_app_that_asks_for_usage_gets_its_usage_chunk(openai_client, raw_client, only_span):
    stream = openai_client.chat.completions.create(**STREAM, stream_options={"include_usage": True})

    assert isinstance(stream, openai.Stream)
    chunks = _chunks(stream)
    assert chunks == _chunks(raw_client.chat.completions.create(**STREAM, stream_options={"include_usage": True}))
    texts = [chunk["choices"][0]["delta"].get("content") for chunk in chunks if chunk["choices"]]
    assert texts == ["", *ANSWER_PARTS, None]
    assert (chunks[-1]["choices"], chunks[-1]["usage"]["prompt_tokens"]) == ([], 1200)
    span = only_span()
    attributes = span["attributes"]
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.output_tokens"] == 85
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert 0 < attributes["gen_ai.response.time_to_first_chunk"] <= (span["end"] - span["start"]) / 1e9


@pytest.mark.parametrize("options", [{}, {"stream_options": {"include_usage": False}}])
def test_a_stream_without_include_usage_yields_the_clients_chunks_and_exports_tokens(
    openai_client, raw_client, provider, only_span, options
):
    chunks = _chunks(openai_client.chat.completions.create(**STREAM, **options))

    assert provider.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    assert chunks == _chunks(raw_client.chat.completions.create(**STREAM, **options))
    assert len(chunks) == 5
    attributes = only_span()["attributes"]
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert attributes["gen_ai.usage.output_tokens"] == 85
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]


@pytest.mark.anyio
async def test_an_async_stream_without_include_usage_yields_the_clients_chunks_and_exports_tokens(
    async_openai_client, provider, only_span
):
    stream = await async_openai_client.chat.completions.create(**STREAM)
    chunks = [chunk.to_dict() async for chunk in stream]

    async with openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0) as raw:
        assert chunks == [chunk.to_dict() async for chunk in await raw.chat.completions.create(**STREAM)]
    attributes = only_span()["attributes"]
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.output_tokens"] == 85


def test_a_server_that_refuses_stream_options_is_sent_the_apps_own_request(openai_client, raw_client, provider, exported):
    refusing = {**STREAM, "model": "no-stream-options"}
    first = _chunks(openai_client.chat.completions.create(**refusing))
    second = _chunks(openai_client.chat.completions.create(**refusing))

    sent = [
        "stream_options" in request["body"] for request in provider.requests if request["body"]["model"] == "no-stream-options"
    ]
    assert sent == [True, False, False]  # refused once, remembered for that server and model
    assert first == second == _chunks(raw_client.chat.completions.create(**refusing))
    spans = exported(2)
    assert [span["status_code"] for span in spans] == [0, 0]
    assert not [key for span in spans for key in span["attributes"] if key.startswith("gen_ai.usage.")]


@pytest.mark.anyio
async def test_an_async_stream_to_a_server_that_refuses_stream_options_still_streams(async_openai_client, only_span):
    stream = await async_openai_client.chat.completions.create(**{**STREAM, "model": "no-stream-options-async"})
    texts = [chunk.choices[0].delta.content async for chunk in stream]

    assert texts == ["", *ANSWER_PARTS, None]
    assert only_span()["status_code"] == 0


def test_a_raw_streaming_response_is_sent_as_the_app_wrote_it(openai_client, provider, observatory):
    with openai_client.chat.completions.with_streaming_response.create(**STREAM) as response:
        lines = list(response.iter_lines())

    assert "stream_options" not in provider.requests[-1]["body"]
    assert not [line for line in lines if '"usage"' in line]


def test_a_stream_closed_early_still_ends_its_span(openai_client, only_span):
    with openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))

    attributes = only_span()["attributes"]
    assert attributes["gen_ai.request.stream"] is True
    assert "gen_ai.response.time_to_first_chunk" in attributes


def test_the_chat_stream_helper_is_observed(openai_client, raw_client, only_span):
    with openai_client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()

    with raw_client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as raw:
        assert events == [event.type for event in raw]
        assert final.to_dict() == raw.get_final_completion().to_dict()
    assert (final.choices[0].message.content, final.usage) == (ANSWER, None)
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


def test_instrument_asks_streams_for_usage_too(provider, raw_client, only_span):
    observatory_sdk.instrument()
    try:
        client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)
        chunks = _chunks(client.chat.completions.create(**STREAM))
    finally:
        observatory_sdk.uninstrument()

    assert chunks == _chunks(raw_client.chat.completions.create(**STREAM))
    assert only_span()["attributes"]["gen_ai.usage.output_tokens"] == 85


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


def test_changing_the_response_after_the_call_does_not_change_its_span(openai_client, only_span):
    """The span's attributes are built on the export thread, later, from what was read off the
    response when the call returned: an app reusing the response object cannot alter them."""
    response = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    response.usage.prompt_tokens = 1
    response.usage.completion_tokens = 2
    response.model = "edited"
    response.choices[0].finish_reason = "length"

    attributes = only_span()["attributes"]
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.output_tokens"] == 85
    assert attributes["gen_ai.response.model"] == OPENAI_MODEL
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
