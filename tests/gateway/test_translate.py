"""Chat calls translated between OpenAI and Anthropic (pure): requests with system prompts, images, tools and tool
results; whole answers; streams cut anywhere — each result read back with the official library's own types."""

import json

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from gateway.translate import (
    DEFAULT_MAX_TOKENS,
    AnthropicEvents,
    OpenAIChunks,
    Translation,
    anthropic_message,
    anthropic_request,
    error_message,
    openai_completion,
    openai_request,
)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)


def sse(*events):
    """Server-sent events as a provider writes them: Anthropic names each event, OpenAI does not."""
    out = b""
    for event in events:
        name = f"event: {event['type']}\n" if isinstance(event, dict) and "type" in event else ""
        out += (name + "data: " + (event if isinstance(event, str) else json.dumps(event)) + "\n\n").encode()
    return out


def fed(translator, stream: bytes, size: int) -> bytes:
    return b"".join(translator.feed(stream[i:i + size]) for i in range(0, len(stream), size)) + translator.finish()


def events_of(out: bytes) -> list[tuple[str, str]]:
    found = []
    for raw in out.decode().split("\n\n"):
        if raw:
            lines = raw.split("\n")
            name = next((line[7:] for line in lines if line.startswith("event: ")), "")
            found.append((name, next(line[6:] for line in lines if line.startswith("data: "))))
    return found


# requests ---------------------------------------------------------------------------------------------------------

OPENAI_TOOL_CONVERSATION = {
    "model": "claude-sonnet-4-5",
    "messages": [
        {"role": "system", "content": "You are a weather assistant."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Weather in Paris and Lyon? Here is the sky:"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg"}},
            {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C, sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "15°C, rain"}]},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                                "parameters": WEATHER, "strict": True}}],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "max_completion_tokens": 512,
    "temperature": 1.4,
    "top_p": 0.9,
    "stop": "END",
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "user-42",
    "n": 1, "seed": 7, "logprobs": True, "presence_penalty": 0.5, "response_format": {"type": "json_object"},
    "reasoning_effort": "low", "service_tier": "auto", "store": True, "metadata": {"app": "weather"},
}


def test_an_openai_request_becomes_an_anthropic_one_with_tools_images_and_tool_results():
    sent = anthropic_request(OPENAI_TOOL_CONVERSATION)

    assert sent == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": "You are a weather assistant.\n\nAnswer in French.",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Lyon? Here is the sky:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/sky.jpg"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Lyon"}},
            ]},
            {"role": "user", "content": [  # both tool results and the next question: one user turn
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18°C, sunny"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "15°C, rain"},
                {"type": "text", "text": "And tomorrow?"},
            ]},
        ],
        "temperature": 1,  # Anthropic's range ends at 1; top_p dropped beside a temperature
        "stop_sequences": ["END"],
        "stream": True,
        "tools": [{"name": "get_weather", "description": "Current weather", "input_schema": WEATHER}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "user-42"},
    }


def test_an_openai_request_without_a_limit_gets_the_default_max_tokens_and_keeps_top_p():
    sent = anthropic_request({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}],
                              "max_tokens": 0, "top_p": 0.5, "stop": ["a", "b"],
                              "tools": [{"type": "function", "function": {"name": "lookup"}}],
                              "tool_choice": {"type": "function", "function": {"name": "lookup"}}})

    assert sent["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert (sent["top_p"], sent["stop_sequences"]) == (0.5, ["a", "b"]) and "temperature" not in sent
    assert sent["tools"] == [{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}]
    assert sent["tool_choice"] == {"type": "tool", "name": "lookup"}
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_the_legacy_max_tokens_and_a_pdf_are_translated_and_other_files_dropped():
    sent = anthropic_request({"model": "claude-haiku-4-5", "max_tokens": 300, "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"}},
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,SUkq"}},
        {"type": "text", "text": ""},
    ]}]})

    assert sent["max_tokens"] == 300
    assert sent["messages"] == [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}}]}]


ANTHROPIC_TOOL_CONVERSATION = {
    "model": "gpt-4o-mini",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are a weather assistant.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/sky.jpg"}},
            {"type": "text", "text": "Weather in Paris?"},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should call the tool.", "signature": "sig"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "18°C, sunny"}]},
            {"type": "text", "text": "Thanks. Tomorrow?"},
        ]},
    ],
    "tools": [
        {"name": "get_weather", "description": "Current weather", "input_schema": WEATHER},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stop_sequences": ["1", "2", "3", "4", "5"],
    "temperature": 0.2,
    "top_k": 40,
    "thinking": {"type": "enabled", "budget_tokens": 512},
    "metadata": {"user_id": "user-42"},
    "stream": True,
}


def test_an_anthropic_request_becomes_an_openai_chat_request():
    sent = openai_request(ANTHROPIC_TOOL_CONVERSATION)

    assert sent == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg"}},
                {"type": "text", "text": "Weather in Paris?"},
            ]},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            ]},
            {"role": "tool", "tool_call_id": "toolu_01", "content": "18°C, sunny"},
            {"role": "user", "content": "Thanks. Tomorrow?"},
        ],
        "max_completion_tokens": 1024,
        "temperature": 0.2,
        "stop": ["1", "2", "3", "4"],  # OpenAI takes four
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER,
                                                    "description": "Current weather"}}],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "user": "user-42",
    }


@pytest.mark.parametrize(("anthropic_choice", "openai_choice"), [
    ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tool_choices_translate(anthropic_choice, openai_choice):
    body = {"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "get_weather", "input_schema": WEATHER}], "tool_choice": anthropic_choice}

    assert openai_request(body)["tool_choice"] == openai_choice
    back = anthropic_request({**openai_request(body), "tools": [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]})
    assert back["tool_choice"] == anthropic_choice


# whole answers ---------------------------------------------------------------------------------------------------

ANTHROPIC_ANSWER = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "thinking", "thinking": "Paris first.", "signature": "sig"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 42, "cache_read_input_tokens": 1500, "cache_creation_input_tokens": 300, "output_tokens": 77},
}


def test_an_anthropic_answer_becomes_a_chat_completion_with_tool_calls_and_cache_usage():
    completion = ChatCompletion.model_validate(openai_completion(ANTHROPIC_ANSWER, created=1_700_000_000))

    assert (completion.id, completion.model, completion.created) == (
        "msg_01XFDUDYJgAACzvnptvVoYEL", "claude-sonnet-4-5-20250929", 1_700_000_000)
    choice = completion.choices[0]
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", "Let me check.")
    (call,) = choice.message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("toolu_01", "get_weather", {"city": "Paris"})
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1842, 77, 1919)  # 42 + 1,500 + 300
    assert usage.prompt_tokens_details.cached_tokens == 1500


@pytest.mark.parametrize(("stop_reason", "finish_reason"), [
    ("end_turn", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"), ("stop_sequence", "stop"),
    ("refusal", "content_filter"), ("model_context_window_exceeded", "length"),
])
def test_stop_reasons_map_to_finish_reasons(stop_reason, finish_reason):
    answer = {**ANTHROPIC_ANSWER, "content": [{"type": "text", "text": "Hi"}], "stop_reason": stop_reason}

    assert openai_completion(answer, 0)["choices"][0]["finish_reason"] == finish_reason


OPENAI_ANSWER = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1_741_569_952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Checking.", "refusal": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}}],
    "usage": {"prompt_tokens": 1200, "completion_tokens": 85, "total_tokens": 1285,
              "prompt_tokens_details": {"cached_tokens": 1024}, "completion_tokens_details": {"reasoning_tokens": 64}},
}


def test_a_chat_completion_becomes_an_anthropic_message():
    message = Message.model_validate(anthropic_message(OPENAI_ANSWER))

    assert (message.id, message.model, message.stop_reason) == (
        "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "gpt-4o-mini-2024-07-18", "tool_use")
    text, tool = message.content
    assert text.text == "Checking." and (tool.id, tool.name, tool.input) == ("call_1", "get_weather", {"city": "Paris"})
    usage = message.usage  # 1,200 prompt tokens of which 1,024 cached
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens, usage.output_tokens) == (
        176, 1024, 0, 85)


@pytest.mark.parametrize(("finish_reason", "stop_reason"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal")])
def test_finish_reasons_map_to_stop_reasons(finish_reason, stop_reason):
    answer = {**OPENAI_ANSWER, "choices": [{**OPENAI_ANSWER["choices"][0], "finish_reason": finish_reason}]}

    assert anthropic_message(answer)["stop_reason"] == stop_reason


def test_a_refusal_is_the_anthropic_answers_text():
    answer = {**OPENAI_ANSWER, "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": None, "refusal": "I can't help with that."}}]}

    message = Message.model_validate(anthropic_message(answer))

    assert (message.content[0].text, message.stop_reason) == ("I can't help with that.", "refusal")


def test_translation_answers_in_the_clients_shape_and_refuses_what_is_not_json():
    to_openai = Translation("openai", "anthropic")
    assert json.loads(to_openai.answer(json.dumps(ANTHROPIC_ANSWER).encode(), 5))["object"] == "chat.completion"
    assert json.loads(Translation("anthropic", "openai").answer(json.dumps(OPENAI_ANSWER).encode(), 5))["type"] == "message"
    with pytest.raises(ValueError, match="not a JSON object"):
        to_openai.answer(b"<html>502 Bad Gateway</html>", 5)


def test_error_messages_are_read_from_either_providers_body():
    assert error_message(b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}') == "Overloaded"
    assert error_message(b'{"error": {"message": "Rate limit reached", "type": "tokens"}}') == "Rate limit reached"
    assert error_message(b"upstream connect error") == ""


# streams ---------------------------------------------------------------------------------------------------------

ANTHROPIC_STREAM = sse(
    {"type": "message_start", "message": {
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U", "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4-5-20250929", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 472, "cache_read_input_tokens": 1024, "cache_creation_input_tokens": 0, "output_tokens": 2}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay, let's check "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "the weather."}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ' "Paris"}'}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 89}},
    {"type": "message_stop"},
)


@pytest.mark.parametrize("size", [1, 13, 200, len(ANTHROPIC_STREAM)])
def test_an_anthropic_stream_becomes_openai_chunks_with_the_usage_chunk_the_client_asked_for(size):
    out = fed(OpenAIChunks(include_usage=True, created=1_700_000_000), ANTHROPIC_STREAM, size)

    events = events_of(out)
    assert events[-1] == ("", "[DONE]") and all(name == "" for name, _ in events)
    chunks = [ChatCompletionChunk.model_validate(json.loads(data)) for _, data in events[:-1]]
    assert {(c.id, c.model, c.object, c.created) for c in chunks} == {
        ("msg_014p7gG3wDgGV9EUtLvnow3U", "claude-sonnet-4-5-20250929", "chat.completion.chunk", 1_700_000_000)}
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == "Okay, let's check the weather."
    calls = [call for d in deltas for call in d.tool_calls or []]
    assert (calls[0].index, calls[0].id, calls[0].function.name) == (0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert json.loads("".join(call.function.arguments or "" for call in calls)) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    last = chunks[-1]
    assert last.choices == [] and (last.usage.prompt_tokens, last.usage.completion_tokens) == (1496, 89)  # 472 + 1,024
    assert last.usage.prompt_tokens_details.cached_tokens == 1024
    assert all(c.usage is None for c in chunks[:-1])


def test_without_include_usage_the_chunks_carry_no_usage():
    out = fed(OpenAIChunks(include_usage=False, created=0), ANTHROPIC_STREAM, 64)

    chunks = [json.loads(data) for _, data in events_of(out)[:-1]]
    assert all(chunk["choices"] and "usage" not in chunk for chunk in chunks)
    assert out.endswith(b"data: [DONE]\n\n")


def test_a_cut_anthropic_stream_ends_without_done_and_an_error_event_reaches_the_openai_client():
    cut = ANTHROPIC_STREAM[:ANTHROPIC_STREAM.index(b"event: message_delta")]
    assert b"[DONE]" not in fed(OpenAIChunks(True, 0), cut, 50)

    failing = cut + sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    _, data = events_of(fed(OpenAIChunks(True, 0), failing, 50))[-1]
    assert json.loads(data) == {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}}


def chunk(delta, finish=None):
    return {"id": "chatcmpl-AzQ1", "object": "chat.completion.chunk", "created": 1_741_569_952,
            "model": "gpt-4o-mini-2024-07-18", "usage": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


OPENAI_STREAM = sse(
    chunk({"role": "assistant", "content": "", "refusal": None}),
    chunk({"content": "Let me "}),
    chunk({"content": "check."}),
    chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"city":"Lyon"}'}}]}),
    chunk({}, "tool_calls"),
    {**chunk({}), "choices": [], "usage": {"prompt_tokens": 1200, "completion_tokens": 85, "total_tokens": 1285,
                                           "prompt_tokens_details": {"cached_tokens": 1024}}},
    "[DONE]",
)


@pytest.mark.parametrize("size", [1, 17, 300, len(OPENAI_STREAM)])
def test_an_openai_stream_becomes_anthropic_events(size):
    out = fed(AnthropicEvents(), OPENAI_STREAM, size)

    events = [(name, STREAM_EVENT.validate_python(json.loads(data))) for name, data in events_of(out)]
    assert all(name == event.type for name, event in events)
    assert [e.type for _, e in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start = events[0][1].message
    assert (start.id, start.model) == ("chatcmpl-AzQ1", "gpt-4o-mini-2024-07-18")
    blocks = [e.content_block for _, e in events if e.type == "content_block_start"]
    assert [(b.type, getattr(b, "id", None)) for b in blocks] == [("text", None), ("tool_use", "call_1"), ("tool_use", "call_2")]
    deltas = [e for _, e in events if e.type == "content_block_delta"]
    assert "".join(d.delta.text for d in deltas if d.index == 0) == "Let me check."
    assert json.loads("".join(d.delta.partial_json for d in deltas if d.index == 1)) == {"city": "Paris"}
    assert json.loads("".join(d.delta.partial_json for d in deltas if d.index == 2)) == {"city": "Lyon"}
    end = events[-2][1]
    assert end.delta.stop_reason == "tool_use"
    assert (end.usage.input_tokens, end.usage.cache_read_input_tokens, end.usage.output_tokens) == (176, 1024, 85)


def test_an_openai_stream_error_becomes_an_anthropic_error_event():
    failing = sse(chunk({"role": "assistant", "content": "Hel"}),
                  {"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}})

    name, data = events_of(fed(AnthropicEvents(), failing, 40))[-1]

    assert name == "error"
    assert json.loads(data) == {"type": "error", "error": {"type": "api_error", "message": "The server had an error"}}


def test_a_translation_picks_the_stream_of_the_clients_shape():
    assert isinstance(Translation("openai", "anthropic", include_usage=True).stream(0), OpenAIChunks)
    assert isinstance(Translation("anthropic", "openai").stream(0), AnthropicEvents)
