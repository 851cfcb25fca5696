"""The response cache: a repeated request is answered from the cache (the provider sees one), streams are replayed
as streams, each hit is recorded as an app-cache hit with the cost avoided (and the caching page counts it), and
errors, `Cache-Control: no-store`, other teams and other organizations never get a cached answer."""

import csv
import io
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from decimal import Decimal

import openai
import pytest
from django.conf import settings
from django.utils import timezone

from billing.rollups import rollup_pending
from gateway.cache import PostgresStore, RedisStore, purge_expired
from gateway.rules import CachedResponse, CachePolicy
from gateway.services import allow_upstream_host, set_provider_account
from observatory.models import Membership, Organization, Role
from observatory.services import create_api_key
from tests.sdk.sdk_fakes import ANSWER, ANSWER_PARTS

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
SEARCH = {"x-observatory-team": "search"}
ONE_CALL = Decimal("0.0001542")  # the fake's usage priced as gpt-4o-mini (see test_openai)


@pytest.fixture
def policy(org, team):
    return CachePolicy.objects.create(organization=org, team=team, ttl_seconds=600)


def stored(count: int = 1, *, entries=lambda: CachedResponse.objects.count()) -> None:
    """Wait until the gateway has stored `count` answers: it stores off the event loop once the answer is sent, which
    takes longer than any fixed pause on a loaded machine."""
    deadline = time.monotonic() + 10
    while entries() < count:
        assert time.monotonic() < deadline, f"the gateway stored {entries()} answers, not {count}, within 10 s"
        time.sleep(0.02)


def test_a_repeated_request_is_answered_from_the_cache_and_recorded_as_saved(gw, oai, provider, policy, client, org,
                                                                              django_user_model):
    first = oai.chat.completions.create(model="gpt-4o-mini", messages=HI, temperature=0, extra_headers=SEARCH)
    stored()  # the first answer is stored once it is sent
    again = oai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI, temperature=0,
                                                          user="someone-else", extra_headers=SEARCH)

    assert len(provider.requests) == 1
    assert again.headers["x-observatory-cache"] == "hit"
    assert again.parse().choices[0].message.content == ANSWER == first.choices[0].message.content
    assert again.parse().id == first.id and again.parse().usage.prompt_tokens == 1200
    paid, cached = gw.calls(2)
    assert (paid.app_cache_hit, paid.cost_usd) == (False, ONE_CALL)
    assert (cached.app_cache_hit, cached.cost_usd, cached.cost_avoided_usd) == (True, Decimal(0), ONE_CALL)
    assert cached.status == "ok" and cached.input_tokens == 1200 and cached.team.slug == "search"
    assert cached.response_id == "" and cached.attributes["observatory.cache.response_id"] == paid.response_id

    rollup_pending()
    user = django_user_model.objects.create_user("ann", password="pw")
    Membership.objects.create(user=user, organization=org, role=Role.ADMIN)
    client.force_login(user)
    page = client.get("/caching/?range=7d")
    assert page.status_code == 200
    assert page.context["total"]["app_cache_hits"] == 1 and page.context["total"]["cost_avoided_usd"] == ONE_CALL
    download = client.get("/caching/?range=7d&format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert [(r["app_cache_hits"], r["cost_avoided_usd"]) for r in rows] == [("1", "0.000154")]  # to the micro-dollar


def test_a_stream_is_replayed_as_a_stream(gw, oai, provider, policy):
    first = list(oai.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True, extra_headers=SEARCH))
    stored()
    replayed = list(oai.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True, extra_headers=SEARCH))

    assert len(provider.requests) == 1
    assert [c.choices[0].delta.content for c in replayed if c.choices and c.choices[0].delta.content] == ANSWER_PARTS
    assert len(replayed) == len(first) == 5 and all(c.usage is None for c in replayed)  # the hidden usage chunk stays hidden
    paid, cached = gw.calls(2)
    assert not paid.app_cache_hit and paid.cost_usd == ONE_CALL
    assert cached.streaming and cached.app_cache_hit and cached.cost_avoided_usd == ONE_CALL
    assert cached.output_tokens == 85 and cached.finish_reason == "stop"


def test_a_plain_request_is_not_answered_with_a_cached_stream(gw, oai, provider, policy):
    list(oai.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True, extra_headers=SEARCH))
    stored()
    answer = oai.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers=SEARCH)

    assert answer.choices[0].message.content == ANSWER and len(provider.requests) == 2


def test_no_store_from_the_client_skips_the_cache(gw, oai, provider, policy):
    for _ in range(2):
        oai.chat.completions.create(model="gpt-4o-mini", messages=HI,
                                    extra_headers={**SEARCH, "Cache-Control": "no-store"})
        time.sleep(0.2)

    assert len(provider.requests) == 2
    assert CachedResponse.objects.count() == 0
    assert [c.app_cache_hit for c in gw.calls(2)] == [False, False]


def test_errors_are_never_cached(gw, oai, provider, policy):
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model="fail-500", messages=HI, extra_headers=SEARCH)
        time.sleep(0.2)

    assert len(provider.requests) == 2 and CachedResponse.objects.count() == 0


def test_calls_no_policy_covers_go_to_the_provider_every_time(gw, oai, provider, policy):
    for _ in range(2):
        oai.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers={"x-observatory-team": "ads"})
        time.sleep(0.2)

    assert len(provider.requests) == 2


def test_organizations_never_share_an_entry(gw, oai, provider, policy, team):
    other = Organization.objects.create(name="Globex", slug="globex")
    allow_upstream_host(other, f"127.0.0.1:{provider.server_address[1]}")
    set_provider_account(other, "openai", base_url=provider.url + "/v1", api_key="sk-globex")
    other_team = other.teams.create(name="Search", slug="search")
    CachePolicy.objects.create(organization=other, team=other_team, ttl_seconds=600)
    theirs = openai.OpenAI(base_url=gw.url + "/v1", api_key=create_api_key(other, "gw").plaintext, max_retries=0)

    oai.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers=SEARCH)
    stored()
    theirs.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers=SEARCH)

    assert len(provider.requests) == 2
    sent = {name.lower(): value for name, value in provider.requests[-1]["headers"].items()}
    assert sent["authorization"] == "Bearer sk-globex"


def test_two_gateway_processes_share_the_cache(gw, serve_gateway, oai, provider, policy, obs_key):
    second = serve_gateway()
    other = openai.OpenAI(base_url=second.url + "/v1", api_key=obs_key, max_retries=0)

    oai.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers=SEARCH)
    stored()
    answer = other.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI, extra_headers=SEARCH)

    assert answer.headers["x-observatory-cache"] == "hit" and len(provider.requests) == 1


def test_expired_entries_are_not_served_and_are_purged(org):
    store = PostgresStore()
    store.put("a" * 64, org.id, b"old", 60)
    store.put("b" * 64, org.id, b"new", 3600)
    CachedResponse.objects.filter(key="a" * 64).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert store.get("a" * 64) is None and bytes(store.get("b" * 64)) == b"new"
    assert purge_expired() == 1
    assert list(CachedResponse.objects.values_list("key", flat=True)) == ["b" * 64]
    assert settings.CELERY_BEAT_SCHEDULE["purge-gateway-cache"]["task"] == "gateway.tasks.purge_expired_responses"


@pytest.fixture
def redis_url(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    store = RedisStore(url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            store.client.ping()
            break
        except Exception:
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(10)


def test_with_redis_configured_two_gateways_share_entries_there(redis_url, settings, gw, serve_gateway, oai, provider,
                                                               policy, obs_key):
    settings.GATEWAY_REDIS_URL = redis_url
    first, second = serve_gateway(), serve_gateway()
    one = openai.OpenAI(base_url=first.url + "/v1", api_key=obs_key, max_retries=0)
    two = openai.OpenAI(base_url=second.url + "/v1", api_key=obs_key, max_retries=0)

    one.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers=SEARCH)
    stored(entries=lambda: len(RedisStore(redis_url).client.keys("observatory:gateway:cache:*")))
    answer = two.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI, extra_headers=SEARCH)

    assert answer.headers["x-observatory-cache"] == "hit" and len(provider.requests) == 1
    assert CachedResponse.objects.count() == 0  # in Redis, not in PostgreSQL
    assert len(RedisStore(redis_url).client.keys("observatory:gateway:cache:*")) == 1
