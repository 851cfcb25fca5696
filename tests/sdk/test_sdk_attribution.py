"""Attribution: nested blocks, the decorator form, asyncio tasks and threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import observatory_sdk
import pytest
from observatory_sdk import attribute, current_attribution

MESSAGES = [{"role": "user", "content": "Say hello."}]


def _by_feature(spans):
    return {span["attributes"].get("observatory.feature"): span["attributes"] for span in spans}


def test_nested_blocks_merge_and_the_inner_value_wins():
    with attribute(team="search", product="web", user="u-1"):
        with attribute(product="api", feature="rank"):
            inner = dict(current_attribution())
        outer = dict(current_attribution())

    assert inner == {"team": "search", "product": "api", "user": "u-1", "feature": "rank"}
    assert outer == {"team": "search", "product": "web", "user": "u-1"}
    assert dict(current_attribution()) == {}


def test_it_exports_attribution_over_the_init_defaults(openai_client, only_span):
    with attribute(team="search", product="web", feature="rank", user="u-1", session="s-9", environment="prod"):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    attributes = only_span()["attributes"]
    assert attributes["observatory.team"] == "search"
    assert attributes["observatory.product"] == "web"
    assert attributes["observatory.feature"] == "rank"
    assert attributes["observatory.environment"] == "prod"
    assert attributes["user.id"] == "u-1"
    assert attributes["session.id"] == "s-9"


def test_the_openai_user_field_is_the_fallback_user(openai_client, only_span):
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, user="end-user-7")

    assert only_span()["attributes"]["user.id"] == "end-user-7"


def test_the_decorator_form_on_a_sync_function(openai_client, only_span):
    @attribute(feature="summarize")
    def summarize():
        return openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    summarize()

    assert only_span()["attributes"]["observatory.feature"] == "summarize"
    assert dict(current_attribution()) == {}


@pytest.mark.anyio
async def test_the_decorator_form_on_an_async_function(async_openai_client, only_span):
    @attribute(feature="classify")
    async def classify():
        return await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    await classify()

    assert only_span()["attributes"]["observatory.feature"] == "classify"


def test_the_decorator_refuses_generators():
    with pytest.raises(TypeError):

        @attribute(feature="x")
        def generate():
            yield 1


@pytest.mark.anyio
async def test_concurrent_asyncio_tasks_keep_their_own_attribution(async_openai_client, exported):
    async def work(feature):
        with attribute(feature=feature):
            await asyncio.sleep(0)
            await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    with attribute(team="platform"):
        await asyncio.gather(*(asyncio.create_task(work(f"task-{number}")) for number in range(5)))

    spans = _by_feature(exported(5))
    assert sorted(spans) == [f"task-{number}" for number in range(5)]
    assert {attributes["observatory.team"] for attributes in spans.values()} == {"platform"}


def test_a_new_thread_starts_without_attribution_unless_the_context_is_copied(openai_client, exported):
    def call(feature_expected):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, user=feature_expected)

    with attribute(feature="in-thread"):
        plain = threading.Thread(target=call, args=("plain",))
        plain.start()
        plain.join()
        with ThreadPoolExecutor(max_workers=1) as executor:
            executor.submit(observatory_sdk.copy_context().run, call, "copied").result()

    spans = {span["attributes"]["user.id"]: span["attributes"] for span in exported(2)}
    assert "observatory.feature" not in spans["plain"]
    assert spans["copied"]["observatory.feature"] == "in-thread"
