"""Refusals: the provider's are passed through unchanged and recorded as failed calls; the gateway's own (no key,
unknown model or route, no provider key) come in the provider's error shape, and reach no provider."""

from decimal import Decimal

import anthropic
import httpx
import openai
import pytest

from gateway.services import set_provider_account
from ingest.models import LLMCall
from tests.sdk.sdk_fakes import ANTHROPIC_ERRORS, OPENAI_ERRORS

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]


def test_a_provider_429_is_passed_through_and_recorded_as_a_failed_call(gw, oai):
    with pytest.raises(openai.RateLimitError) as raised:
        oai.chat.completions.create(model="fail-429", messages=HI)

    assert raised.value.status_code == 429
    assert raised.value.body == OPENAI_ERRORS[429]  # the provider's body, unchanged
    assert raised.value.response.headers["x-request-id"] == "req_fake_error"
    (call,) = gw.calls(1)
    assert (call.status, call.error_type, call.http_status) == ("error", "rate_limit", 429)
    assert call.input_tokens == 0 and call.cost_usd == 0  # refused: nothing billed


def test_a_provider_500_is_passed_through_to_the_anthropic_client(gw, claude):
    with pytest.raises(anthropic.InternalServerError) as raised:
        claude.messages.create(model="fail-500", max_tokens=10, messages=HI)

    assert raised.value.status_code == 500 and raised.value.body == {"type": "error", "error": ANTHROPIC_ERRORS[500]}
    (call,) = gw.calls(1)
    assert (call.provider, call.status, call.error_type, call.http_status) == ("anthropic", "error", "server_error", 500)


def test_a_stream_refused_by_the_provider_is_an_error_the_client_sees(gw, oai):
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="fail-429", messages=HI, stream=True)

    (call,) = gw.calls(1)
    assert call.streaming and call.http_status == 429


def test_a_model_of_another_provider_is_unknown_here_and_reaches_no_provider(gw, oai, claude, provider):
    with pytest.raises(openai.NotFoundError) as raised:
        oai.chat.completions.create(model="claude-sonnet-4-5", messages=HI)
    with pytest.raises(anthropic.NotFoundError) as refused:
        claude.messages.create(model="gpt-4o", max_tokens=10, messages=HI)

    assert raised.value.code == "model_not_found"
    assert "'claude-sonnet-4-5' is not served at /v1/chat/completions: it is a anthropic model; call it at /v1/messages" \
        in raised.value.message
    assert refused.value.body["error"]["type"] == "not_found_error"
    assert provider.requests == [] and gw.calls(0) == []


def test_a_request_without_a_model_is_a_400(gw, obs_key):
    response = httpx.post(gw.url + "/v1/chat/completions", json={"messages": HI},
                          headers={"Authorization": f"Bearer {obs_key}"})

    assert response.status_code == 400
    assert response.json()["error"]["message"] == 'the request has no model: name one in the body\'s "model" field'


def test_bad_json_is_a_400_and_an_unknown_route_a_404_in_the_providers_shape(gw, obs_key):
    bad = httpx.post(gw.url + "/v1/messages", content=b"{not json", headers={"x-api-key": obs_key})
    unknown = httpx.post(gw.url + "/v1/completions", json={"model": "gpt-4o"}, headers={"Authorization": f"Bearer {obs_key}"})
    anthropic_unknown = httpx.post(gw.url + "/v1/complete", json={}, headers={"anthropic-version": "2023-06-01"})
    wrong_method = httpx.get(gw.url + "/v1/chat/completions")

    assert bad.status_code == 400 and bad.json()["type"] == "error"
    assert bad.json()["error"]["message"].startswith("the request body is not valid JSON")
    assert unknown.status_code == 404 and unknown.json()["error"]["message"].startswith(
        "the gateway serves no POST /v1/completions: it serves POST /v1/chat/completions, /v1/responses")
    assert anthropic_unknown.status_code == 404 and anthropic_unknown.json()["error"]["type"] == "not_found_error"
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["message"] == "use POST for /v1/chat/completions"


def test_a_missing_or_wrong_key_is_a_401_in_the_providers_shape(gw, provider):
    with pytest.raises(openai.AuthenticationError) as wrong:
        openai.OpenAI(base_url=gw.url + "/v1", api_key="obs_000000000000_nope", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=HI)
    missing = httpx.post(gw.url + "/v1/messages", json={"model": "claude-sonnet-4-5", "messages": HI},
                         headers={"anthropic-version": "2023-06-01"})

    assert wrong.value.message.endswith("invalid or revoked Observatory API key")
    assert missing.status_code == 401 and missing.json()["error"] == {
        "type": "authentication_error",
        "message": "missing Observatory API key: set the client's api_key to your Observatory key (obs_…)",
    }
    assert provider.requests == [] and LLMCall.objects.count() == 0


def test_without_a_stored_provider_key_the_clients_own_is_passed_through(gw, org, obs_key, provider):
    set_provider_account(org, "openai", api_key="")
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0)

    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=HI,
                                            extra_headers={"x-upstream-api-key": "sk-client-own"})

    assert "no openai API key" in refused.value.message and "x-upstream-api-key" in refused.value.message
    assert answer.choices[0].message.content
    headers = {name.lower(): value for name, value in provider.requests[-1]["headers"].items()}
    assert headers["authorization"] == "Bearer sk-client-own" and "x-upstream-api-key" not in headers
    assert len(gw.calls(1)) == 1


def test_a_provider_that_does_not_answer_in_time_is_a_504_recorded_as_a_timeout(serve_gateway, org, provider, priced, obs_key):
    from gateway.app import Gateway
    from gateway.services import allow_upstream_host

    allow_upstream_host(org, f"127.0.0.1:{provider.server_address[1]}")
    set_provider_account(org, "openai", base_url=provider.url + "/v1", api_key="sk-stored-openai")
    gw = serve_gateway(Gateway(read_timeout=0.3))
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0)

    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="slow", messages=HI)  # the fake answers after a second

    assert raised.value.status_code == 504 and raised.value.code == "upstream_timeout"
    (call,) = gw.calls(1)
    assert (call.status, call.error_type, call.http_status, call.request_model) == ("error", "timeout", 504, "slow")


def test_a_provider_that_cannot_be_reached_is_a_502_recorded_as_a_connection_error(serve_gateway, org, priced, obs_key):
    import socket

    from gateway.services import allow_upstream_host

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the socket is closed
    allow_upstream_host(org, f"127.0.0.1:{port}")
    set_provider_account(org, "anthropic", base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-ant")
    gw = serve_gateway()

    with pytest.raises(anthropic.InternalServerError) as raised:
        anthropic.Anthropic(base_url=gw.url, api_key=obs_key, max_retries=0).messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=HI)

    assert raised.value.status_code == 502 and raised.value.body["error"]["type"] == "api_error"
    assert raised.value.body["error"]["message"].startswith("the anthropic API could not be reached")
    (call,) = gw.calls(1)
    assert (call.status, call.error_type, call.http_status) == ("error", "connection", 502)


def test_a_body_over_the_limit_is_a_413(gw, obs_key, settings, provider):
    settings.GATEWAY_MAX_BODY_BYTES = 2048

    response = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {obs_key}"},
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 4096}]})

    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert "over the gateway's 2048-byte limit" in response.json()["error"]["message"]
    assert provider.requests == []


def test_a_before_hook_can_answer_in_place_of_the_provider_or_change_the_request(serve_gateway, org, provider, priced,
                                                                                obs_key):
    """The seam later features plug into: a budget refusing, a cache answering, a routing rule rewriting the model."""
    from starlette.responses import JSONResponse

    from gateway.app import Gateway
    from gateway.pipeline import Pipeline
    from gateway.services import allow_upstream_host

    async def route_to_mini(exchange):
        if exchange.model == "gpt-4o":
            exchange.rewrite(model="gpt-4o-mini")

    async def refuse_team_ads(exchange):
        if exchange.attribution.get("team") == "ads":
            return JSONResponse({"error": {"message": "over budget", "type": "budget", "code": None}}, status_code=429)
        return None

    allow_upstream_host(org, f"127.0.0.1:{provider.server_address[1]}")
    set_provider_account(org, "openai", base_url=provider.url + "/v1", api_key="sk-stored-openai")
    provider.requests.clear()
    gw = serve_gateway(Gateway(Pipeline(before_upstream=[route_to_mini, refuse_team_ads])))
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0)

    client.chat.completions.create(model="gpt-4o", messages=HI)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o", messages=HI, extra_headers={"x-observatory-team": "ads"})

    assert [request["body"]["model"] for request in provider.requests] == ["gpt-4o-mini"]
    (call,) = gw.calls(1)
    assert call.request_model == "gpt-4o-mini" and call.cost_usd == Decimal("0.0001542")
