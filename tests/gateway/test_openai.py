"""The real OpenAI client, pointed at the gateway, works unchanged — sync, async, streaming — and each call becomes
exactly one priced, attributed call record."""

import asyncio
from decimal import Decimal

import openai
import pytest

from tests.sdk.sdk_fakes import ANSWER, ANSWER_PARTS

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]


def test_it_relays_a_chat_completion_and_records_it_priced(gw, oai, provider, team, obs_key):
    answer = oai.chat.completions.create(model="gpt-4o-mini", messages=HI,
                                         extra_headers={"x-observatory-team": "search", "x-observatory-feature": "faq",
                                                        "x-observatory-user": "u-42"})

    assert answer.choices[0].message.content == ANSWER
    assert answer.usage.prompt_tokens == 1200
    (call,) = gw.calls(1)
    assert (call.input_tokens, call.cached_input_tokens, call.output_tokens, call.reasoning_tokens) == (1200, 1024, 85, 64)
    assert call.cost_usd == Decimal("0.0001542") and call.cost_status == "priced"
    assert (call.provider, call.operation, call.request_model, call.response_model) == (
        "openai", "chat", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert call.team == team and call.feature == "faq" and call.end_user == "u-42"
    assert call.status == "ok" and call.http_status == 200 and not call.streaming
    assert call.source == "observatory-gateway" and call.response_id == "chatcmpl-fake1"
    assert call.duration_ms > 0 and call.ttft_ms is None
    sent = provider.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    assert headers["authorization"] == "Bearer sk-stored-openai"  # the stored key, never the Observatory key
    assert obs_key not in str(sent["headers"]) and not any(name.startswith("x-observatory") for name in headers)
    assert sent["body"] == {"model": "gpt-4o-mini", "messages": HI}


def test_a_stream_reaches_the_client_as_it_would_without_the_gateway_and_carries_usage(gw, oai, provider):
    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))

    assert [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content] == ANSWER_PARTS
    assert all(c.choices and c.usage is None for c in chunks)  # the usage chunk the gateway asked for is held back
    assert len(chunks) == 5
    assert provider.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    (call,) = gw.calls(1)
    assert call.streaming and (call.input_tokens, call.output_tokens) == (1200, 85)
    assert call.cost_usd == Decimal("0.0001542") and call.finish_reason == "stop"
    assert 0 < call.ttft_ms <= call.duration_ms


def test_a_client_that_asks_for_stream_usage_gets_it(gw, oai):
    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True,
                                              stream_options={"include_usage": True}))

    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1200
    (call,) = gw.calls(1)
    assert call.output_tokens == 85


def test_responses_and_embeddings_are_relayed_and_recorded(gw, oai):
    response = oai.responses.create(model="gpt-4o-mini", input="hi")
    events = list(oai.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    embedding = oai.embeddings.create(model="text-embedding-3-small", input="hi")

    assert response.output_text == ANSWER
    assert events[-1].type == "response.completed"
    assert embedding.data[0].embedding == [0.25, -0.5, 0.75]
    plain, streamed, embedded = gw.calls(3)
    assert (plain.operation, plain.input_tokens, plain.cached_input_tokens, plain.output_tokens) == ("responses", 1200, 1024, 85)
    assert streamed.streaming and streamed.output_tokens == 85 and streamed.response_id == "resp_fake1"
    assert plain.cost_usd == streamed.cost_usd == Decimal("0.0001542")
    assert (embedded.operation, embedded.input_tokens, embedded.cost_usd) == ("embeddings", 18, Decimal("3.6E-7"))


def test_the_async_client_works_unchanged(gw, obs_key):
    async def use_it():
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0)
        answer = await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
        parts = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
        await client.close()
        return answer, parts

    answer, parts = asyncio.run(use_it())

    assert answer.choices[0].message.content == ANSWER and parts == ANSWER_PARTS
    calls = gw.calls(2)
    assert sorted((c.streaming, c.input_tokens, c.output_tokens) for c in calls) == [(False, 1200, 85), (True, 1200, 85)]
