"""Prompt and completion content: never exported by default, JSON messages when asked for."""

from __future__ import annotations

import json

import anthropic
import observatory_sdk
import openai
from observatory_sdk.content import TRUNCATED, message, messages_json, text_part
from sdk_fakes import ANSWER

SECRET_SYSTEM = "You are the secret pricing assistant."
SECRET_QUESTION = "What is our margin on widgets?"


def _all_text(spans):
    return json.dumps([span["attributes"] for span in spans])


def _calls(provider):
    client = observatory_sdk.wrap(openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0))
    claude = observatory_sdk.wrap(anthropic.Anthropic(base_url=provider.url, api_key="sk-ant", max_retries=0))
    messages = [{"role": "system", "content": SECRET_SYSTEM}, {"role": "user", "content": SECRET_QUESTION}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
        pass
    client.responses.create(model="gpt-4o-mini", input=SECRET_QUESTION, instructions=SECRET_SYSTEM)
    claude.messages.create(model="claude-sonnet-5", max_tokens=64, system=SECRET_SYSTEM, messages=[messages[1]])


def test_no_prompt_or_answer_text_is_exported_by_default(provider, exported):
    _calls(provider)

    text = _all_text(exported(4))
    for secret in (SECRET_SYSTEM, SECRET_QUESTION, ANSWER, "Hello"):
        assert secret not in text
    assert "gen_ai.input.messages" not in text


def test_capture_content_exports_messages_as_json(provider, sink):
    observatory_sdk.init(endpoint=sink.endpoint, capture_content=True)
    try:
        _calls(provider)
        assert observatory_sdk.flush(5)
    finally:
        observatory_sdk.shutdown()

    chat, streamed, responses, claude = (span["attributes"] for span in sink.wait_for_spans(4))
    assert json.loads(chat["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": SECRET_SYSTEM}]},
        {"role": "user", "parts": [{"type": "text", "content": SECRET_QUESTION}]},
    ]
    assert json.loads(chat["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
    ]
    assert json.loads(streamed["gen_ai.output.messages"])[0]["parts"][0]["content"] == ANSWER
    assert json.loads(responses["gen_ai.input.messages"])[0]["parts"][0]["content"] == SECRET_SYSTEM
    assert json.loads(responses["gen_ai.output.messages"])[0]["parts"][0]["content"] == ANSWER
    assert json.loads(claude["gen_ai.input.messages"])[0] == {
        "role": "system",
        "parts": [{"type": "text", "content": SECRET_SYSTEM}],
    }
    assert json.loads(claude["gen_ai.output.messages"])[0]["finish_reason"] == "end_turn"


def test_captured_content_is_capped_and_stays_valid_json():
    messages = [message("user", [text_part("x" * 50_000)]), message("assistant", [text_part("y" * 50_000)])]

    text = messages_json(messages, 2_000)

    assert len(text) <= 2_000
    decoded = json.loads(text)
    assert decoded[0]["parts"][0]["content"].endswith(TRUNCATED)


def test_small_content_is_left_whole():
    messages = [message("user", [text_part("hello")])]

    assert json.loads(messages_json(messages, 2_000)) == messages


def test_capture_never_reads_a_one_shot_iterable_before_the_client(provider, sink):
    observatory_sdk.init(endpoint=sink.endpoint, capture_content=True)
    try:
        client = observatory_sdk.wrap(openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0))
        parts = iter([{"type": "text", "text": SECRET_QUESTION}])
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": parts}])
        assert observatory_sdk.flush(5)
    finally:
        observatory_sdk.shutdown()

    assert provider.requests[-1]["body"]["messages"][0]["content"] == [{"type": "text", "text": SECRET_QUESTION}]
    attributes = sink.wait_for_spans(1)[0]["attributes"]
    assert "observatory.request_hash" not in attributes
    assert json.loads(attributes["gen_ai.input.messages"]) == [{"role": "user", "parts": [{"type": "unknown"}]}]
