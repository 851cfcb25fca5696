"""The Anthropic integration against the loopback fake: token totals include the cache."""

from __future__ import annotations

import anthropic
import observatory_sdk
import pytest
from sdk_fakes import ANSWER, ANSWER_PARTS, ANTHROPIC_MODEL

MESSAGES = [{"role": "user", "content": "Say hello."}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _assert_usage(attributes):
    assert attributes["gen_ai.usage.input_tokens"] == 1842  # 42 + 1500 cache read + 300 cache write
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1500
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == 300
    assert attributes["gen_ai.usage.output_tokens"] == 77


def test_it_exports_a_message_span_with_cache_included(anthropic_client, only_span):
    message = anthropic_client.messages.create(
        model="claude-sonnet-5", max_tokens=256, system="You are terse.", messages=MESSAGES
    )

    assert isinstance(message, anthropic.types.Message)
    assert message.content[0].text == ANSWER
    span = only_span()
    attributes = span["attributes"]
    assert span["name"] == "chat claude-sonnet-5"
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.response.model"] == ANTHROPIC_MODEL
    assert attributes["gen_ai.response.id"] == "msg_fake1"
    assert attributes["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert attributes["gen_ai.request.max_tokens"] == 256
    assert attributes["gen_ai.request.stream"] is False
    _assert_usage(attributes)


def test_a_raw_event_stream_counts_output_once(anthropic_client, only_span):
    stream = anthropic_client.messages.create(model="claude-sonnet-5", max_tokens=256, messages=MESSAGES, stream=True)

    assert isinstance(stream, anthropic.Stream)
    texts = [event.delta.text for event in stream if event.type == "content_block_delta"]
    assert texts == ANSWER_PARTS
    span = only_span()
    attributes = span["attributes"]
    _assert_usage(attributes)  # 77, not 78: message_start's 1 is not added to message_delta's total
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert 0 < attributes["gen_ai.response.time_to_first_chunk"] <= (span["end"] - span["start"]) / 1e9


def test_the_stream_helper_keeps_its_api_and_is_observed_once(anthropic_client, only_span):
    with anthropic_client.messages.stream(model="claude-sonnet-5", max_tokens=256, messages=MESSAGES) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()

    assert texts == ANSWER_PARTS
    assert final.usage.output_tokens == 77
    attributes = only_span()["attributes"]
    _assert_usage(attributes)
    assert attributes["gen_ai.request.stream"] is True


@pytest.mark.parametrize(("status", "error_class"), [(429, anthropic.RateLimitError), (500, anthropic.InternalServerError)])
def test_the_app_gets_the_clients_own_error(anthropic_client, only_span, status, error_class):
    with pytest.raises(error_class) as raised:
        anthropic_client.messages.create(model=f"fail-{status}", max_tokens=256, messages=MESSAGES)

    assert type(raised.value) is error_class
    assert raised.value.status_code == status
    span = only_span()
    assert span["status_code"] == 2
    assert span["attributes"]["error.type"] == error_class.__name__
    assert span["attributes"]["http.response.status_code"] == status


def test_an_error_opening_the_stream_helper_is_recorded(anthropic_client, only_span):
    with pytest.raises(anthropic.RateLimitError):
        with anthropic_client.messages.stream(model="fail-429", max_tokens=256, messages=MESSAGES):
            pass

    assert only_span()["attributes"]["error.type"] == "RateLimitError"


def test_a_timeout_is_recorded(anthropic_client, only_span):
    with pytest.raises(anthropic.APITimeoutError):
        anthropic_client.messages.create(model="slow", max_tokens=256, messages=MESSAGES, timeout=0.2)

    assert only_span()["attributes"]["error.type"] == "APITimeoutError"


def test_tool_use_is_reported(anthropic_client, only_span):
    message = anthropic_client.messages.create(model="claude-sonnet-5", max_tokens=256, messages=MESSAGES, tools=[WEATHER_TOOL])

    assert message.content[0].name == "get_weather"
    attributes = only_span()["attributes"]
    assert attributes["gen_ai.response.finish_reasons"] == ["tool_use"]
    _assert_usage(attributes)


@pytest.mark.anyio
async def test_async_create_and_stream_helper(async_anthropic_client, exported):
    message = await async_anthropic_client.messages.create(model="claude-sonnet-5", max_tokens=256, messages=MESSAGES)
    async with async_anthropic_client.messages.stream(model="claude-sonnet-5", max_tokens=256, messages=MESSAGES) as stream:
        text = await stream.get_final_text()

    assert message.content[0].text == ANSWER
    assert text == ANSWER
    plain, streamed = (span["attributes"] for span in exported(2))
    _assert_usage(plain)
    _assert_usage(streamed)
    assert streamed["gen_ai.request.stream"] is True


@pytest.mark.anyio
async def test_async_raw_stream(async_anthropic_client, only_span):
    stream = await async_anthropic_client.messages.create(model="claude-sonnet-5", max_tokens=256, messages=MESSAGES, stream=True)
    kinds = [event.type async for event in stream]

    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    _assert_usage(only_span()["attributes"])


def test_instrument_covers_create_and_the_stream_helper(provider, exported):
    observatory_sdk.instrument()
    try:
        client = anthropic.Anthropic(base_url=provider.url, api_key="sk-ant-test", max_retries=0)
        client.messages.create(model="claude-sonnet-5", max_tokens=256, messages=MESSAGES)
        with client.messages.stream(model="claude-sonnet-5", max_tokens=256, messages=MESSAGES) as stream:
            stream.until_done()
    finally:
        observatory_sdk.uninstrument()

    plain, streamed = (span["attributes"] for span in exported(2))
    _assert_usage(plain)
    _assert_usage(streamed)
    assert streamed["gen_ai.request.stream"] is True
