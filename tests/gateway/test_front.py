"""The gateway's ASGI front: relayed paths go straight to the gateway, the rest to its Starlette app, and a bug of
ours on a relayed call still reaches the client as a 500 in its provider's shape."""

import httpx
import openai
import pytest

from gateway.app import Gateway
from gateway.pipeline import Pipeline
from gateway.services import allow_upstream_host, set_provider_account

pytestmark = pytest.mark.django_db(transaction=True)


async def broken_hook(exchange):
    raise ValueError("a bug")


def test_a_bug_on_a_relayed_call_is_a_500_in_the_providers_shape(serve_gateway, org, provider, priced, obs_key):
    allow_upstream_host(org, f"127.0.0.1:{provider.server_address[1]}")
    set_provider_account(org, "openai", base_url=provider.url + "/v1", api_key="sk-stored-openai")
    gw = serve_gateway(Gateway(pipeline=Pipeline(before_upstream=[broken_hook])))
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0)

    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    assert failed.value.status_code == 500
    assert failed.value.body["message"] == "the gateway failed on this request; see its log"
    assert httpx.get(gw.url + "/healthz").json() == {"status": "ok"}  # the Starlette app behind still answers
    assert httpx.get(gw.url + "/v1/chat/completions").status_code == 405
