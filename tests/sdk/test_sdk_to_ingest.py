"""End to end: the SDK wraps real OpenAI/Anthropic clients (against a fake provider), exports over
OTLP/HTTP to the running app, and ingest turns the spans into priced, attributed call records."""

import time
from decimal import Decimal

import anthropic
import observatory_sdk
import openai
import pytest

from billing.pricing.at_ingest import catalog_cache
from billing.services import load_default_catalog
from ingest.models import LLMCall
from observatory.services import create_api_key, forget_cached_keys


@pytest.fixture
def app_sdk(live_server, org, team):
    from ingest.services import tenancy_cache

    forget_cached_keys()
    tenancy_cache.clear()
    load_default_catalog()
    catalog_cache.refresh(force=True)
    key = create_api_key(org, "sdk", team=team).plaintext
    observatory_sdk.init(endpoint=live_server.url, api_key=key, product="assistant", environment="staging")
    yield
    observatory_sdk.shutdown(timeout=5)


def _wait_for_calls(count: int) -> list[LLMCall]:
    """The calls once `count` are stored: an OTLP/HTTP trace export is stored right after the server's answer."""
    assert observatory_sdk.flush(timeout=10)
    deadline = time.monotonic() + 10
    while LLMCall.objects.count() < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(LLMCall.objects.select_related("team", "product").order_by("start_time"))


@pytest.mark.django_db(transaction=True)
def test_sdk_calls_become_priced_call_records(app_sdk, provider):
    oa = observatory_sdk.wrap(openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0))
    an = observatory_sdk.wrap(anthropic.Anthropic(base_url=provider.url, api_key="sk-ant", max_retries=0))
    with observatory_sdk.attribute(team="search", feature="answer", user="u-42"):
        oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        an.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    stream = oa.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks

    calls = _wait_for_calls(3)
    assert len(calls) == 3
    chat, claude, streamed = calls
    assert (chat.input_tokens, chat.cached_input_tokens, chat.output_tokens, chat.reasoning_tokens) == (1200, 1024, 85, 64)
    assert chat.cost_usd == Decimal("0.0001542") and chat.cost_status == "priced"
    assert (claude.input_tokens, claude.cached_input_tokens, claude.cache_write_tokens, claude.output_tokens) == (
        1842,
        1500,
        300,
        77,
    )
    assert claude.cost_usd == Decimal("0.002856")
    assert {c.team.slug for c in (chat, claude)} == {"search"} and streamed.team.slug == "search"
    assert chat.feature == "answer" and chat.end_user == "u-42" and chat.environment == "staging"
    assert {c.product.slug for c in calls} == {"assistant"}
    assert streamed.streaming and streamed.ttft_ms is not None and streamed.ttft_ms > 0
    assert {c.source for c in calls} == {"observatory-sdk"}
    assert all(c.prompt_prefix_hash and c.request_hash for c in calls)


@pytest.mark.django_db(transaction=True)
def test_sdk_errors_and_app_cache_hits_arrive(app_sdk, provider):
    oa = observatory_sdk.wrap(openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0))
    with pytest.raises(openai.RateLimitError):
        oa.chat.completions.create(model="fail-429", messages=[{"role": "user", "content": "hi"}])
    observatory_sdk.record_cache_hit(model="gpt-4o-mini", input_tokens=1200, output_tokens=85)
    calls = _wait_for_calls(2)
    failed = next(c for c in calls if c.status == "error")
    assert (failed.error_type, failed.http_status) == ("rate_limit", 429)
    hit = next(c for c in calls if c.app_cache_hit)
    assert hit.cost_usd == Decimal(0) and hit.cost_avoided_usd == Decimal("0.000231")  # 1200×1.5e-7 + 85×6e-7
