"""A routing rule's fallback to the other provider: an OpenAI chat call its provider refuses (429 / 500) is answered
by Anthropic — and an Anthropic messages call by OpenAI — the client getting an object of its own library's type,
sync and streamed, and the records saying which provider served and what it cost."""

import json
import logging
from decimal import Decimal

import anthropic
import openai
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from gateway.rules import RoutingRule
from gateway.services import set_provider_account
from tests.sdk.sdk_fakes import ANSWER, ANSWER_PARTS

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
# claude-sonnet-4-5 in the catalog: $3 / M input, $0.30 / M cache reads, $3.75 / M cache writes, $15 / M output. The fake
# Anthropic answer: 42 uncached + 1,500 read + 300 written in, 77 out →
# 42 × 3 + 1,500 × 0.30 + 300 × 3.75 + 77 × 15 = 126 + 450 + 1,125 + 1,155 = $2,856 / M = $0.002856
CLAUDE_COST = Decimal("0.002856")
# gpt-4o-mini: $0.15 / M input, $0.075 / M cached, $0.60 / M output. The fake OpenAI answer: 1,200 in of which 1,024
# cached, 85 out → 176 × 0.15 + 1,024 × 0.075 + 85 × 0.60 = 26.4 + 76.8 + 51 = $154.2 / M = $0.0001542
MINI_COST = Decimal("0.0001542")


def tokens(call):
    return (call.input_tokens, call.cached_input_tokens, call.cache_write_tokens, call.output_tokens)


def headers_of(request):
    return {name.lower(): value for name, value in request["headers"].items()}


@pytest.fixture
def to_claude(org):
    return RoutingRule.objects.create(organization=org, from_model="fail-429", fallback_provider="anthropic",
                                      fallback_model="claude-sonnet-4-5")


@pytest.fixture
def to_openai(org):
    return RoutingRule.objects.create(organization=org, from_model="fail-500", fallback_provider="openai",
                                      fallback_model="gpt-4o-mini")


def test_it_answers_an_openai_call_from_anthropic_when_openai_refuses(gw, oai, provider, to_claude, obs_key):
    answer = oai.chat.completions.create(model="fail-429", messages=[{"role": "system", "content": "Be brief."}, *HI],
                                         max_tokens=200, temperature=0.3, n=1, seed=5)

    assert isinstance(answer, openai.types.chat.ChatCompletion)
    assert (answer.id, answer.model, answer.choices[0].message.content, answer.choices[0].finish_reason) == (
        "msg_fake1", "claude-sonnet-4-5-20250929", ANSWER, "stop")
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.prompt_tokens_details.cached_tokens) == (
        1842, 77, 1500)
    first, second = provider.requests
    assert (first["path"], first["body"]["model"]) == ("/v1/chat/completions", "fail-429")
    assert second["path"] == "/v1/messages"
    assert second["body"] == {"model": "claude-sonnet-4-5", "max_tokens": 200, "system": "Be brief.", "temperature": 0.3,
                              "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    sent = headers_of(second)
    assert (sent["x-api-key"], sent["anthropic-version"]) == ("sk-ant-stored", "2023-06-01")
    assert "authorization" not in sent and obs_key not in str(sent)

    failed, served = gw.calls(2)
    assert (failed.provider, failed.status, failed.http_status, failed.error_type, failed.request_model) == (
        "openai", "error", 429, "rate_limit", "fail-429")
    assert (served.provider, served.operation, served.status, served.request_model, served.response_model) == (
        "anthropic", "chat", "ok", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
    assert tokens(served) == (1842, 1500, 300, 77) and served.cost_usd == CLAUDE_COST
    assert served.response_id == "msg_fake1" and served.finish_reason == "stop"
    assert served.attributes["observatory.route.fallback_from"] == "fail-429"
    assert served.attributes["observatory.request_model"] == "fail-429"


def test_tool_calls_come_back_as_openai_tool_calls(gw, oai, provider, to_claude):
    answer = oai.chat.completions.create(model="fail-429", messages=HI, tools=[WEATHER_TOOL], tool_choice="auto")

    choice = answer.choices[0]
    (call,) = choice.message.tool_calls
    assert (choice.finish_reason, call.id, call.function.name) == ("tool_calls", "toolu_fake1", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    sent = provider.requests[1]["body"]
    assert sent["tools"] == [{"name": "get_weather", "description": "Current weather",
                              "input_schema": WEATHER_TOOL["function"]["parameters"]}]
    assert sent["tool_choice"] == {"type": "auto"} and sent["max_tokens"] == 4096
    assert gw.calls(2)[1].finish_reason == "tool_call"  # the record's normalized name


def test_an_openai_stream_is_answered_by_an_anthropic_stream_with_the_usage_chunk(gw, oai, to_claude):
    chunks = list(oai.chat.completions.create(model="fail-429", messages=HI, stream=True,
                                              stream_options={"include_usage": True}))

    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (1842, 77)
    failed, served = gw.calls(2)
    assert (failed.http_status, served.provider, served.streaming) == (429, "anthropic", True)
    assert tokens(served) == (1842, 1500, 300, 77) and served.cost_usd == CLAUDE_COST
    assert served.ttft_ms is not None


def test_a_stream_whose_client_asked_no_usage_gets_none_and_is_still_recorded_with_its_tokens(gw, oai, to_claude):
    chunks = list(oai.chat.completions.create(model="fail-429", messages=HI, stream=True))

    assert all(c.choices and c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ANSWER
    assert tokens(gw.calls(2)[1]) == (1842, 1500, 300, 77)


def test_it_answers_an_anthropic_call_from_openai_when_anthropic_fails(gw, claude, provider, to_openai, obs_key):
    message = claude.messages.create(model="fail-500", max_tokens=100, messages=HI, system="Be brief.", extra_body={"top_k": 5},
                                     metadata={"user_id": "u-7"})

    assert isinstance(message, anthropic.types.Message)
    assert (message.id, message.model, message.content[0].text, message.stop_reason) == (
        "chatcmpl-fake1", "gpt-4o-mini-2024-07-18", ANSWER, "end_turn")
    usage = message.usage  # 1,200 prompt tokens of which 1,024 cached
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (176, 1024, 85)
    second = provider.requests[1]
    assert second["path"] == "/v1/chat/completions"
    assert second["body"] == {"model": "gpt-4o-mini", "max_completion_tokens": 100, "user": "u-7",
                              "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}
    sent = headers_of(second)
    assert sent["authorization"] == "Bearer sk-stored-openai" and "x-api-key" not in sent
    assert "anthropic-version" not in sent and obs_key not in str(sent)

    failed, served = gw.calls(2)
    assert (failed.provider, failed.http_status, failed.request_model) == ("anthropic", 500, "fail-500")
    assert (served.provider, served.request_model, served.response_model, served.status) == (
        "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "ok")
    assert tokens(served) == (1200, 1024, 0, 85) and served.cost_usd == MINI_COST
    assert served.attributes["observatory.route.fallback_from"] == "fail-500"


def test_openai_tool_calls_come_back_as_anthropic_tool_use(gw, claude, to_openai):
    message = claude.messages.create(model="fail-500", max_tokens=100, messages=HI, tools=[
        {"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}])

    (tool,) = message.content
    assert (tool.type, tool.id, tool.name, tool.input, message.stop_reason) == (
        "tool_use", "call_fake1", "get_weather", {"city": "Paris"}, "tool_use")


def test_an_anthropic_stream_is_answered_by_an_openai_stream(gw, claude, provider, to_openai):
    with claude.messages.stream(model="fail-500", max_tokens=100, messages=HI) as stream:
        parts = list(stream.text_stream)
        final = stream.get_final_message()

    assert parts == ANSWER_PARTS and final.content[0].text == ANSWER and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (176, 1024, 85)
    assert provider.requests[1]["body"]["stream_options"] == {"include_usage": True}
    failed, served = gw.calls(2)
    assert (failed.provider, failed.http_status) == ("anthropic", 500)
    assert (served.provider, served.streaming, served.cost_usd) == ("openai", True, MINI_COST)
    assert tokens(served) == (1200, 1024, 0, 85)


def test_without_a_stored_key_for_the_other_provider_the_first_failure_reaches_the_client(gw, oai, provider, org,
                                                                                            to_claude, caplog):
    set_provider_account(org, "anthropic", api_key="")

    with caplog.at_level(logging.WARNING, logger="gateway.routing"), pytest.raises(openai.RateLimitError) as refused:
        oai.chat.completions.create(model="fail-429", messages=HI)

    assert "Rate limit reached" in str(refused.value)
    assert [r["path"] for r in provider.requests] == ["/v1/chat/completions"]
    assert "no fallback to anthropic" in caplog.text and "no anthropic API key" in caplog.text
    (failed,) = gw.calls(1)
    assert (failed.provider, failed.http_status) == ("openai", 429)


def test_a_refusal_of_the_other_provider_reaches_the_client_in_its_own_shape(gw, oai, provider, org):
    RoutingRule.objects.create(organization=org, from_model="fail-429", fallback_provider="anthropic",
                               fallback_model="fail-500")

    with pytest.raises(openai.InternalServerError) as refused:
        oai.chat.completions.create(model="fail-429", messages=HI)

    assert refused.value.body["message"] == "anthropic (fallback): Internal server error"
    assert refused.value.body["type"] == "server_error"
    failed, also_failed = gw.calls(2)
    assert (failed.provider, failed.http_status) == ("openai", 429)
    assert (also_failed.provider, also_failed.http_status, also_failed.status) == ("anthropic", 500, "error")


def test_responses_calls_do_not_cross_providers(gw, oai, provider, org):
    RoutingRule.objects.create(organization=org, from_model="fail-429", fallback_provider="anthropic",
                               fallback_model="claude-sonnet-4-5")

    with pytest.raises(openai.RateLimitError):
        oai.responses.create(model="fail-429", input="hi")

    assert [r["path"] for r in provider.requests] == ["/v1/responses"]


# the rule itself -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"fallback_provider": "anthropic"}, "fallback_model", "A fallback to Anthropic needs the Anthropic model"),
    ({"fallback_provider": "anthropic", "fallback_model": "gpt-4o-mini"}, "fallback_model", "is a model of openai: a fallback to Anthropic needs one of Anthropic's models"),
    ({"fallback_provider": "openai", "fallback_model": "claude-haiku-4-5"}, "fallback_model", "is a model of anthropic"),
    ({"fallback_provider": "openai", "fallback_model": "gpt-4o-mini", "fallback_base_url": "https://llm.example.com/v1"},
     "fallback_base_url", "leave this empty"),
])
def test_a_cross_provider_fallback_needs_a_model_of_that_provider(org, fields, field, message):
    rule = RoutingRule(organization=org, from_model="gpt-4o", **fields)

    with pytest.raises(ValidationError) as invalid:
        rule.full_clean()

    assert message in invalid.value.message_dict[field][0]


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456!"))
    return client


def routing_rule_form(org, **fields):
    return {"organization": org.pk, "name": "", "from_model": "gpt-4o", "to_model": "", "share_percent": "100",
            "split": "request_id", "fallback_model": "", "fallback_provider": "", "fallback_base_url": "",
            "status": "kept", "feature": "", **fields}


def test_an_admin_adds_a_fallback_to_the_other_provider(admin_client, org):
    response = admin_client.post("/admin/gateway/routingrule/add/", routing_rule_form(
        org, fallback_provider="anthropic", fallback_model="claude-sonnet-4-5"))

    assert response.status_code == 302, response.content.decode()[:2000]
    rule = RoutingRule.objects.get()
    assert (rule.fallback_provider, rule.fallback_model) == ("anthropic", "claude-sonnet-4-5")


def test_the_admin_form_shows_why_a_fallback_to_the_other_provider_is_refused(admin_client, org):
    response = admin_client.post("/admin/gateway/routingrule/add/", routing_rule_form(org, fallback_provider="anthropic"))

    assert response.status_code == 200
    assert "A fallback to Anthropic needs the Anthropic model to retry on." in response.content.decode()
    assert not RoutingRule.objects.exists()
