"""The real Anthropic client, pointed at the gateway, works unchanged — sync, async, streaming — and each call becomes
exactly one priced call record, its input counted with the cache (Anthropic reports it apart)."""

import asyncio
from decimal import Decimal

import anthropic
import pytest

from tests.sdk.sdk_fakes import ANSWER, ANSWER_PARTS

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
TOKENS = (1842, 1500, 300, 77)  # 42 uncached + 1,500 cache reads + 300 cache writes; 77 out


def tokens(call):
    return (call.input_tokens, call.cached_input_tokens, call.cache_write_tokens, call.output_tokens)


def test_it_relays_a_message_and_records_it_priced(gw, claude, provider, obs_key):
    message = claude.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=HI,
                                     extra_headers={"x-observatory-product": "assistant"})

    assert message.content[0].text == ANSWER and message.usage.input_tokens == 42
    (call,) = gw.calls(1)
    assert tokens(call) == TOKENS
    assert call.cost_usd == Decimal("0.002856")  # as the SDK's record of the same call
    assert (call.provider, call.operation, call.response_model, call.finish_reason) == (
        "anthropic", "chat", "claude-sonnet-4-5-20250929", "stop")
    assert call.product.slug == "assistant" and call.team is None
    headers = {name.lower(): value for name, value in provider.requests[-1]["headers"].items()}
    assert headers["x-api-key"] == "sk-ant-stored" and headers["anthropic-version"]
    assert obs_key not in str(headers)


def test_a_stream_passes_every_event_and_is_recorded_with_its_usage(gw, claude):
    with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=HI) as stream:
        parts = list(stream.text_stream)
        final = stream.get_final_message()

    assert parts == ANSWER_PARTS and final.usage.output_tokens == 77
    (call,) = gw.calls(1)
    assert call.streaming and tokens(call) == TOKENS and call.cost_usd == Decimal("0.002856")
    assert 0 < call.ttft_ms <= call.duration_ms


def test_the_async_client_works_unchanged(gw, obs_key):
    async def use_it():
        client = anthropic.AsyncAnthropic(base_url=gw.url, api_key=obs_key, max_retries=0)
        message = await client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=HI)
        stream = await client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=HI, stream=True)
        kinds = [event.type async for event in stream]
        await client.close()
        return message, kinds

    message, kinds = asyncio.run(use_it())

    assert message.content[0].text == ANSWER
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and kinds.count("content_block_delta") == 3
    assert [tokens(call) for call in gw.calls(2)] == [TOKENS, TOKENS]
