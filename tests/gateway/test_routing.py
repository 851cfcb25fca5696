"""Routing rules at the gateway: a canary share moves that share of a feature's calls to the cheaper model (the
fake provider sees it), a rewrite moves all, and a provider's 429 or 500 is retried on the fallback model; each
record says which rule and arm served it and the model the client asked for."""

from decimal import Decimal

import openai
import pytest

from billing.models import Recommendation
from gateway.routing import bucket
from gateway.rules import RoutingRule
from observatory import canary

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
FAQ = {"x-observatory-team": "search", "x-observatory-feature": "faq"}


@pytest.fixture
def recommendation(org, team):
    return Recommendation.objects.create(
        organization=org, kind=Recommendation.Kind.MODEL_ROUTING, team=team, feature="faq", model="gpt-4o",
        title="Route “faq” from gpt-4o to gpt-4o-mini", evidence={"suggested_model": "gpt-4o-mini"},
        monthly_savings_usd=Decimal("120"), fingerprint="model_routing:faq:openai:gpt-4o")


def test_applying_a_recommendation_sends_its_share_to_the_cheaper_model(gw, oai, provider, recommendation):
    rule = canary.apply_as_canary(recommendation)  # 10%, by request id
    ids = [f"req-{n}" for n in range(200)]
    expected = sum(bucket(rule.id, request_id) < 10 for request_id in ids)

    for request_id in ids:
        oai.chat.completions.create(model="gpt-4o", messages=HI,
                                    extra_headers={**FAQ, "x-observatory-request-id": request_id})

    to_b = [r for r in provider.requests if r["body"]["model"] == "gpt-4o-mini"]
    assert len(provider.requests) == 200
    assert len(to_b) == expected and 10 <= len(to_b) <= 32  # ~10% of 200, binomial spread allowed
    calls = gw.calls(200)
    arms = [c.attributes["observatory.route.arm"] for c in calls]
    assert arms.count("canary") == expected and arms.count("control") == 200 - expected
    assert {c.attributes["observatory.request_model"] for c in calls} == {"gpt-4o"}
    assert {c.attributes["observatory.route.rule"] for c in calls} == {str(rule.id)}
    assert {c.request_model for c in calls if c.attributes["observatory.route.arm"] == "canary"} == {"gpt-4o-mini"}


def test_the_same_request_id_always_takes_the_same_arm(gw, oai, provider, recommendation):
    rule = canary.apply_as_canary(recommendation, Decimal(50))
    for _ in range(5):
        oai.chat.completions.create(model="gpt-4o", messages=HI, extra_headers={**FAQ, "x-request-id": "same-one"})

    assert len({r["body"]["model"] for r in provider.requests}) == 1
    assert provider.requests[0]["body"]["model"] == ("gpt-4o-mini" if bucket(rule.id, "same-one") < 50 else "gpt-4o")


def test_other_features_and_models_are_not_routed(gw, oai, provider, recommendation):
    canary.apply_as_canary(recommendation, Decimal(100))
    oai.chat.completions.create(model="gpt-4o", messages=HI, extra_headers={"x-observatory-feature": "chat"})
    oai.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers=FAQ)
    oai.chat.completions.create(model="gpt-4o", messages=HI, extra_headers=FAQ)

    assert [r["body"]["model"] for r in provider.requests] == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    other, untouched, routed = gw.calls(3)
    assert "observatory.route.arm" not in other.attributes and "observatory.route.arm" not in untouched.attributes
    assert routed.attributes["observatory.route.arm"] == "canary"


def test_a_rolled_back_canary_sends_every_call_to_the_original_model(gw, oai, provider, recommendation):
    rule = canary.apply_as_canary(recommendation, Decimal(100))
    canary.roll_back(rule)
    oai.chat.completions.create(model="gpt-4o", messages=HI, extra_headers=FAQ)

    assert provider.requests[0]["body"]["model"] == "gpt-4o"


@pytest.mark.parametrize("failing", ["fail-429", "fail-500"])
def test_a_429_or_500_is_retried_on_the_fallback_model(gw, oai, provider, org, failing):
    RoutingRule.objects.create(organization=org, from_model=failing, fallback_model="gpt-4o-mini")

    answer = oai.chat.completions.create(model=failing, messages=HI)

    assert answer.choices[0].message.content  # the client never saw the failure
    assert [r["body"]["model"] for r in provider.requests] == [failing, "gpt-4o-mini"]
    failed, served = gw.calls(2)
    assert (failed.status, failed.http_status, failed.request_model) == ("error", int(failing[5:]), failing)
    assert (served.status, served.request_model, served.cost_usd) == ("ok", "gpt-4o-mini", Decimal("0.0001542"))
    assert served.attributes["observatory.route.fallback_from"] == failing
    assert served.attributes["observatory.request_model"] == failing


def test_without_a_fallback_the_providers_error_reaches_the_client(gw, oai, provider, org):
    RoutingRule.objects.create(organization=org, from_model="fail-429", to_model="fail-500", share_percent=100)

    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="fail-429", messages=HI)

    assert [r["body"]["model"] for r in provider.requests] == ["fail-500"]


def test_a_stream_falls_back_before_its_first_byte(gw, oai, provider, org):
    RoutingRule.objects.create(organization=org, from_model="fail-429", fallback_model="gpt-4o-mini")

    chunks = list(oai.chat.completions.create(model="fail-429", messages=HI, stream=True))

    assert len(chunks) == 5 and [r["body"]["model"] for r in provider.requests] == ["fail-429", "gpt-4o-mini"]
    failed, served = gw.calls(2)
    assert failed.http_status == 429 and served.streaming and served.output_tokens == 85


def test_a_timeout_falls_back(serve_gateway, org, provider, priced, obs_key, settings):
    from gateway.app import Gateway
    from gateway.services import allow_upstream_host, set_provider_account

    allow_upstream_host(org, f"127.0.0.1:{provider.server_address[1]}")
    set_provider_account(org, "openai", base_url=provider.url + "/v1", api_key="sk-stored-openai")
    RoutingRule.objects.create(organization=org, from_model="slow", fallback_model="gpt-4o-mini")
    provider.requests.clear()
    gw = serve_gateway(Gateway(read_timeout=0.2))
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0)

    answer = client.chat.completions.create(model="slow", messages=HI)

    assert answer.choices[0].message.content
    failed, served = gw.calls(2)
    assert (failed.error_type, failed.http_status) == ("timeout", 504) and served.request_model == "gpt-4o-mini"
