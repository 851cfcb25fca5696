"""The usual call (sync, not streamed, no content captured) is queued as a tuple record and read when its span is
built; every other call goes through a Call read when it starts. Both must export the same span."""

from __future__ import annotations

import gc

import anthropic
import observatory_sdk
import openai
import pytest
from observatory_sdk import pipeline
from observatory_sdk.accelerator import speedups

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]


def _by_path(spans):
    """Attributes of the record-path span and of the Call-path span."""
    assert len(spans) == 2
    return spans[0]["attributes"], spans[1]["attributes"]


@pytest.mark.anyio
async def test_openai_record_and_call_paths_export_the_same_span(provider, openai_client, async_openai_client, exported):
    request = {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "max_tokens": 50,
        "temperature": openai.NOT_GIVEN,
        "top_p": openai.omit,
        "user": "end-user-7",
    }
    with observatory_sdk.attribute(team="search", feature="answer"):
        openai_client.chat.completions.create(**request)
        await async_openai_client.chat.completions.create(**request)
    record, call = _by_path(sorted(exported(2), key=lambda span: span["start"]))

    assert record == call
    assert "gen_ai.request.temperature" not in record and "gen_ai.request.top_p" not in record
    assert record["observatory.team"] == "search" and record["observatory.feature"] == "answer"
    assert record["user.id"] == "end-user-7"
    assert record["gen_ai.request.max_tokens"] == 50
    assert record["gen_ai.usage.input_tokens"] == 1200


@pytest.mark.anyio
async def test_anthropic_record_and_call_paths_export_the_same_span(provider, anthropic_client, async_anthropic_client, exported):
    request = {"model": "claude-sonnet-4-5", "max_tokens": 64, "system": "Be brief.", "messages": MESSAGES[1:]}
    with observatory_sdk.attribute(product="helpdesk"):
        anthropic_client.messages.create(**request, stop_sequences=anthropic.NOT_GIVEN)
        await async_anthropic_client.messages.create(**request)
    record, call = _by_path(sorted(exported(2), key=lambda span: span["start"]))

    assert record == call
    assert record["observatory.product"] == "helpdesk"
    assert record["gen_ai.usage.input_tokens"] == 42 + 1500 + 300  # cached tokens included
    assert record["gen_ai.usage.cache_read.input_tokens"] == 1500


def test_a_sentinel_leaves_the_request_hash_as_if_it_were_not_passed(provider, openai_client, exported):
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=openai.NOT_GIVEN)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.5)
    hashes = [span["attributes"]["observatory.request_hash"] for span in sorted(exported(3), key=lambda span: span["start"])]

    assert hashes[0] == hashes[1] != hashes[2]


def test_nested_attribution_blocks_are_read_per_call(provider, openai_client, exported):
    with observatory_sdk.attribute(team="a"):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with observatory_sdk.attribute(feature="f"):
            openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    spans = sorted(exported(4), key=lambda span: span["start"])

    assert [(span["attributes"]["observatory.team"], span["attributes"].get("observatory.feature")) for span in spans] == [
        ("a", None),
        ("a", "f"),
        ("a", None),
        ("core", None),
    ]


@pytest.mark.anyio
async def test_without_sentinels_both_paths_still_export_the_same_span(
    provider, openai_client, async_openai_client, anthropic_client, async_anthropic_client, exported
):
    """Requests of the usual shape: the sync record is read by the C module where it is built (calls.record_attributes),
    the async call the general way."""
    chat = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_completion_tokens": 50, "top_p": 1, "safety_identifier": "s-1"}
    message = {"model": "claude-sonnet-4-5", "max_tokens": 64, "system": "Be brief.", "messages": MESSAGES[1:],
               "metadata": {"user_id": "u-2"}}
    with observatory_sdk.attribute(team="search"):
        openai_client.chat.completions.create(**chat)
        await async_openai_client.chat.completions.create(**chat)
        anthropic_client.messages.create(**message)
        await async_anthropic_client.messages.create(**message)
    spans = sorted(exported(4), key=lambda span: span["start"])
    openai_record, openai_call, anthropic_record, anthropic_call = (span["attributes"] for span in spans)

    assert openai_record == openai_call and anthropic_record == anthropic_call
    assert openai_record["gen_ai.request.max_tokens"] == 50 and openai_record["gen_ai.request.top_p"] == 1.0
    assert openai_record["user.id"] == "s-1" and anthropic_record["user.id"] == "u-2"
    assert anthropic_record["gen_ai.request.max_tokens"] == 64
    assert openai_record["observatory.prompt_prefix_hash"] != anthropic_record["observatory.prompt_prefix_hash"]


def test_a_failure_to_queue_a_call_never_reaches_the_app_and_is_logged_once(provider, openai_client, exported, monkeypatch, caplog):
    from observatory_sdk import failures, patching, pipeline

    monkeypatch.setattr(failures, "_seen", set())

    def broken(record):
        raise RuntimeError("queue is broken")

    monkeypatch.setattr(pipeline.current, "submit", broken)
    with caplog.at_level("WARNING", logger="observatory_sdk"):
        for _ in range(3):
            assert openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).usage.prompt_tokens == 1200
    monkeypatch.undo()
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    logged = [record for record in caplog.records if record.name == "observatory_sdk"]
    assert [record.getMessage() for record in logged] == ["observatory_sdk: could not record a call"]
    assert "queue is broken" in str(logged[0].exc_info[1])
    assert len(exported(1)) == 1  # the call after the repair is queued
    assert patching.is_wrapped(openai_client.chat.completions.create)


def test_an_observed_method_looks_like_the_method_it_observes(openai_client):
    create = openai_client.chat.completions.create
    plain = openai.OpenAI(api_key="sk-test").chat.completions.create

    assert create.__wrapped__ == plain.__func__.__get__(openai_client.chat.completions)
    assert create.__name__ == "create" and create.__doc__ == plain.__doc__


@pytest.mark.skipif(speedups is None, reason="the C module is not built here, or OBSERVATORY_SDK_PURE_PYTHON turns it off")
def test_a_queued_record_is_left_out_of_the_cyclic_collector_and_still_exported(provider, openai_client, exported):
    # Queued until its chunk is built, a tracked record reached the oldest generation and set off full collections of
    # the app's whole heap; what the app passed in stays tracked as it was.
    tools = ({"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=tools)
    (record,) = list(pipeline.current._calls)
    request, values = record[3], record[7]

    parts = (record, request, request["messages"], request["tools"], request["tools"][0], values)
    assert [gc.is_tracked(part) for part in parts] == [False] * 6
    assert gc.is_tracked(MESSAGES) and gc.is_tracked(tools[0])
    (span,) = exported(1)
    assert span["attributes"]["gen_ai.usage.input_tokens"] == 1200
    assert span["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
