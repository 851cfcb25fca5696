"""Reading usage from provider answers (pure): whole bodies and streams cut anywhere, the held-back usage chunk."""

import json

import pytest

from gateway.routes import ROUTES, error_body, model_problem
from gateway.usage import StreamWatcher, error_type_of, usage_from_body

CHAT = ROUTES["/v1/chat/completions"]
MESSAGES = ROUTES["/v1/messages"]


def sse(*events, named=False):
    out = b""
    for event in events:
        name = f"event: {event['type']}\n" if named and isinstance(event, dict) else ""
        out += (name + "data: " + (event if isinstance(event, str) else json.dumps(event)) + "\n\n").encode()
    return out


CHUNK = {"id": "chatcmpl-9", "model": "gpt-4o-2024-08-06", "choices": [{"index": 0, "delta": {"content": "Hi"},
                                                                       "finish_reason": None}], "usage": None}
LAST = {**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
USAGE = {**CHUNK, "choices": [], "usage": {"prompt_tokens": 900, "completion_tokens": 40,
                                           "prompt_tokens_details": {"cached_tokens": 512},
                                           "completion_tokens_details": {"reasoning_tokens": 8}}}
STREAM = sse(CHUNK, CHUNK, LAST, USAGE, "[DONE]")


@pytest.mark.parametrize("size", [1, 7, 64, len(STREAM)])
def test_the_usage_chunk_the_gateway_asked_for_is_held_back_wherever_the_stream_is_cut(size):
    watcher = StreamWatcher(CHAT, hide_usage_chunk=True)

    out = b"".join(watcher.feed(STREAM[i:i + size]) for i in range(0, len(STREAM), size)) + watcher.finish()

    assert out == sse(CHUNK, CHUNK, LAST, "[DONE]")
    usage = watcher.usage
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_tokens) == (900, 512, 40, 8)
    assert (usage.response_model, usage.response_id, usage.finish_reason) == ("gpt-4o-2024-08-06", "chatcmpl-9", "length")


def test_a_stream_whose_client_asked_for_usage_passes_byte_for_byte():
    watcher = StreamWatcher(CHAT)

    out = b"".join(watcher.feed(STREAM[i:i + 10]) for i in range(0, len(STREAM), 10)) + watcher.finish()

    assert out == STREAM and watcher.usage.output_tokens == 40


def test_anthropic_stream_usage_adds_the_cache_to_input_and_takes_the_last_output_count():
    start = {"type": "message_start", "message": {"id": "msg_1", "model": "claude-opus-4-1", "usage": {
        "input_tokens": 10, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 100, "output_tokens": 1}}}
    delta = {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 333}}
    watcher = StreamWatcher(MESSAGES)

    watcher.feed(sse(start, {"type": "ping"}, delta, {"type": "message_stop"}, named=True))

    usage = watcher.usage
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens, usage.output_tokens) == (2110, 2000, 100, 333)
    assert usage.finish_reason == "length" and usage.response_id == "msg_1"


def test_a_stream_is_complete_once_its_closing_event_went_by_in_each_providers_shape():
    openai_chat = StreamWatcher(CHAT)
    openai_chat.feed(sse(CHUNK, LAST, USAGE))
    before_done = openai_chat.complete
    openai_chat.feed(b"data: [DO")  # a closing event cut in two
    cut = openai_chat.complete
    openai_chat.feed(b"NE]\n\n")

    anthropic_messages = StreamWatcher(MESSAGES)
    anthropic_messages.feed(sse({"type": "message_start", "message": {"id": "msg_2", "usage": {}}},
                                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}, named=True))
    anthropic_messages.feed(sse({"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "a message_stop event ends it"}}, named=True))
    before_stop = anthropic_messages.complete
    anthropic_messages.feed(sse({"type": "message_stop"}, named=True))

    responses = StreamWatcher(ROUTES["/v1/responses"])
    responses.feed(sse({"type": "response.created", "response": {"id": "resp_1"}},
                       {"type": "response.output_text.delta", "delta": "Hi"}, named=True))
    before_completed = responses.complete
    responses.feed(sse({"type": "response.completed", "response": {"id": "resp_1", "status": "completed"}}, named=True))

    assert (before_done, cut, openai_chat.complete) == (False, False, True)
    assert (before_stop, anthropic_messages.complete) == (False, True)
    assert (before_completed, responses.complete) == (False, True)


def test_a_body_without_usage_says_it_reported_none():
    assert not usage_from_body(CHAT, b'{"id": "x", "choices": []}').reported
    assert not usage_from_body(CHAT, b"not json").reported


def test_a_providers_error_type_is_normalized():
    assert error_type_of(400, b'{"error": {"code": "context_length_exceeded", "type": "invalid_request_error"}}') == \
        "context_length"
    assert error_type_of(529, b'{"type": "error", "error": {"type": "overloaded_error"}}') == "overloaded"
    assert error_type_of(502, b"<html>bad gateway</html>") == "server_error"


def test_our_refusals_take_each_providers_shape():
    assert error_body("openai", 401, "no key") == {
        "error": {"message": "no key", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    assert error_body("anthropic", 401, "no key") == {"type": "error", "error": {"type": "authentication_error",
                                                                                  "message": "no key"}}


def test_models_no_family_claims_go_through_and_another_providers_are_refused():
    assert model_problem(CHAT, "my-finetune") is None and model_problem(CHAT, "gpt-4o") is None
    assert model_problem(MESSAGES, "gpt-4o")[0] == 404
    assert model_problem(CHAT, "")[0] == 400 and model_problem(CHAT, 42)[0] == 400
