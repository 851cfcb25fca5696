"""The allow-list of attributes kept while content capture is off (ingest.mappers.normalize.safe_attributes):
one key at a time, then every real capture and corpus body, whose prompts, completions and tool definitions
must leave no trace in what is kept."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ingest.mappers import select_calls
from ingest.mappers.normalize.safe_attributes import (
    DROPPED_KEY,
    WITHHELD_KEYS,
    settings_only,
    url_without_query,
    without_content,
)
from ingest.otlp_decode import decode_traces

DATA = Path(__file__).resolve().parents[1] / "data" / "otlp"
BODIES = [entry["file"] for entry in json.loads((DATA / "index.json").read_text()) if entry["signal"] == "traces"] + [
    "captures/" + item["file"]
    for entry in json.loads((DATA / "captures" / "index.json").read_text())
    for item in entry["files"]
    if item["signal"] == "traces"
]
# Fragments of the prompts, completions, tool arguments and tool definitions the captured libraries recorded.
CAPTURED_CONTENT = ("capital of", "geography assistant", "paris", "berlin", "germany", "current weather")


@pytest.mark.parametrize(("key", "value"), [
    ("gen_ai.request.model", "gpt-4o-mini"),
    ("gen_ai.response.finish_reasons", ["stop"]),
    ("gen_ai.usage.raw", '{"prompt_tokens": 1200}'),
    ("server.address", "api.openai.com"),
    ("http.route", "/v1/chat/completions"),
    ("service.version", "1.4.2"),
    ("error.type", "RateLimitError"),
    ("traceloop.workflow.name", "support-answer"),
    ("gen_ai.tool.name", "get_weather"),
    ("logfire.msg_template", "Chat Completion with {request_data[model]!r}"),
    ("langfuse.trace.metadata.customer", '"acme"'),
    ("ai.telemetry.metadata.plan", "enterprise"),
    ("traceloop.association.properties.tenant", "acme"),
    ("metadata", '{"ls_provider": "openai"}'),
    ("llm.openai.id", "chatcmpl-1"),  # LiteLLM's raw response fields
    ("gen_ai.request.temperature", 0.2),  # numbers and flags under any key
    ("my.app.retries", 3),
    ("my.app.cached", True),
])
def test_it_keeps_metadata_and_numbers(key, value):
    assert without_content({key: value}) == {key: value}


@pytest.mark.parametrize(("key", "value"), [
    ("gen_ai.tool.args", '{"location": "Paris, France"}'),
    ("gen_ai.tool.call.arguments", '{"location": "Paris, France"}'),
    ("gen_ai.tool.call.result", '{"temperature": 21}'),
    ("gen_ai.tool.definitions", '[{"name": "get_weather"}]'),
    ("gen_ai.request.functions.0.parameters", "{}"),
    ("llm.request.functions.0.description", "Get the weather"),
    ("llm.tools.0.tool.json_schema", "{}"),
    ("tool.parameters", "{}"),
    ("tool_call.function.arguments", "{}"),
    ("ai.prompt.tools", ['{"name": "get_weather"}']),
    ("ai.toolCall.args", "{}"),
    ("ai.toolCall.result", "{}"),
    ("tool_arguments", "{}"),
    ("gen_ai.request.stop_sequences", ["Observation:"]),
    ("llm.openai.messages", "[{'role': 'user'}]"),
    ("error.message", "Invalid prompt: Paris, France"),
    ("logfire.msg", "running tool: Paris, France"),
    ("http.request.header.authorization", ["Bearer sk-1"]),
    ("my.app.note", "Paris, France"),  # unknown strings, lists and dicts
    ("my.app.list", ["Paris"]),
    ("my.app.bytes", b"Paris"),
    ("llm.input_messages.0.message.index", 0),  # known content keys, whatever the value
    ("embedding.embeddings.0.embedding.vector", [0.1, 0.2]),
])
def test_it_withholds_content_and_unknown_text(key, value):
    assert without_content({key: value, "server.port": 443}) == {"server.port": 443, DROPPED_KEY: 1}


def test_every_withheld_key_is_withheld_whatever_its_value():
    attributes = {key: 1 for key in WITHHELD_KEYS}

    assert without_content(attributes) == {DROPPED_KEY: len(WITHHELD_KEYS)}


def test_it_keeps_the_keys_the_organization_declared():
    attributes = {"app.owner": "ads", "gen_ai.tool.args": "{}", "app.note": "Paris, France"}

    assert without_content(attributes, frozenset({"app.owner", "gen_ai.tool.args"})) == {"app.owner": "ads", DROPPED_KEY: 2}


def test_it_answers_from_its_cache_for_each_value():
    layout = ("gen_ai.request.model", "app.note")

    assert without_content(dict(zip(layout, ("gpt-4o", 1), strict=True))) == {"gen_ai.request.model": "gpt-4o", "app.note": 1}
    assert without_content(dict(zip(layout, ("gpt-4o", "Paris"), strict=True))) == {"gen_ai.request.model": "gpt-4o",
                                                                                   DROPPED_KEY: 1}


@pytest.mark.parametrize(("value", "kept"), [
    ('{"model": "gpt-4o-mini", "temperature": 0.2, "tools": [{"name": "f"}], "stop": ["Q:"]}',
     '{"model": "gpt-4o-mini", "temperature": 0.2}'),
    ('"{\\"max_tokens\\": 200, \\"response_format\\": {\\"type\\": \\"json_schema\\", \\"json_schema\\": {}}}"',
     '{"max_tokens": 200}'),  # Langfuse: a JSON-quoted object
    ('{"stream_options": {"include_usage": true}, "reasoning": {"effort": "low"}, "tool_choice": "auto"}',
     '{"stream_options": {"include_usage": true}, "reasoning": {"effort": "low"}, "tool_choice": "auto"}'),
    ('{"tool_choice": {"type": "function", "function": {"name": "f"}}, "model": "a model named in a sentence"}', "{}"),
    ("not json", None),
])
def test_invocation_parameters_keep_their_settings_only(value, kept):
    assert settings_only(value) == kept


@pytest.mark.parametrize(("url", "kept"), [
    ("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),
    ("https://user:pw@host.example:8443/v1/models/gemini:generate?key=AIza#frag", "https://host.example:8443/v1/models/gemini:generate"),
    ("http://[::1]:8080/v1?q=Paris", "http://[::1]:8080/v1"),
    ("http://[broken", None),
])
def test_urls_lose_their_query_and_credentials(url, kept):
    assert url_without_query(url) == kept


@pytest.mark.parametrize("body", BODIES)
def test_nothing_captured_as_content_is_kept(body):
    raw = (DATA / body).read_bytes()
    raw = gzip.decompress(raw) if body.endswith(".gz") else raw
    content_type = "application/json" if body.removesuffix(".gz").endswith(".json") else "application/x-protobuf"
    calls, context = select_calls(decode_traces(raw, content_type).spans)

    kept = [without_content(call.attributes) for call in calls] + [without_content(span.attributes) for span in context]

    text = json.dumps(kept, default=str).lower()
    assert [fragment for fragment in CAPTURED_CONTENT if fragment in text] == []
