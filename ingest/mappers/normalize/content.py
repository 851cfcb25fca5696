"""Prompt and completion content: which attributes hold it, and how it is rebuilt into one input and one
output text (content is stored apart from the call, and only when content capture is on)."""

from __future__ import annotations

import re
from typing import Any

from ingest.mappers.normalize.values import content_text, jsonable, parse_json
from ingest.records import AttrValue, SpanView

CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "input.value",
        "output.value",
        "input.mime_type",
        "output.mime_type",
        "langfuse.observation.input",
        "langfuse.observation.output",
        "langfuse.trace.input",
        "langfuse.trace.output",
        "request_data",
        "response_data",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "llm.prompts",
        "gcp.vertex.agent.llm_request",  # Google ADK
        "gcp.vertex.agent.llm_response",
        "ai.prompt",  # Vercel AI SDK
        "ai.prompt.messages",
        "ai.response.text",
        "ai.response.toolCalls",
        "ai.result.text",
        "ai.result.toolCalls",
        "ai.response.object",
        "ai.result.object",
        "ai.value",
        "ai.values",
        "pydantic_ai.all_messages",  # Pydantic AI agent runs
        "mlflow.spanInputs",  # MLflow
        "mlflow.spanOutputs",
    }
)
CONTENT_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "embedding.embeddings.",
    "llm.prompts.",
)
_INPUT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.prompt",
    "input.value",
    "langfuse.observation.input",
    "request_data",
    "traceloop.entity.input",
    "llm.prompts",
    "ai.prompt.messages",
    "ai.prompt",
    "gcp.vertex.agent.llm_request",
    "mlflow.spanInputs",
)
_OUTPUT_KEYS = (
    "gen_ai.output.messages",
    "gen_ai.completion",
    "output.value",
    "langfuse.observation.output",
    "response_data",
    "traceloop.entity.output",
    "ai.response.text",
    "ai.result.text",
    "ai.response.object",
    "ai.result.object",
    "ai.response.toolCalls",
    "ai.result.toolCalls",
    "gcp.vertex.agent.llm_response",
    "mlflow.spanOutputs",
)
_INDEXED = re.compile(r"^(\d+)\.(.+)$")


def unflatten(content: dict[str, AttrValue], prefix: str) -> list[dict[str, Any]]:
    """Rebuild `prefix.{i}.a.b` attributes (OpenInference, old OpenLLMetry) into a list of dicts."""
    items: dict[int, dict[str, Any]] = {}
    size = len(prefix)
    for key, value in content.items():
        if not key.startswith(prefix):
            continue
        match = _INDEXED.match(key[size:])
        if match is None:
            continue
        items.setdefault(int(match.group(1)), {})[match.group(2)] = jsonable(value)
    return [items[index] for index in sorted(items)]


def _pick(content: dict[str, AttrValue], keys: tuple[str, ...], prefixes: tuple[str, ...]) -> str | None:
    for key in keys:
        value = content.get(key)
        if value is not None and value != "":
            return content_text(value)
    for prefix in prefixes:
        items = unflatten(content, prefix)
        if items:
            return content_text(items)
    return None


def split_content(content: dict[str, AttrValue]) -> tuple[str | None, str | None]:
    """(input_content, output_content) from the content attributes moved out of a span."""
    prompt = _pick(content, _INPUT_KEYS, ("gen_ai.prompt.", "llm.input_messages.", "llm.prompts."))
    if prompt is None:
        texts = [item.get("embedding.text") for item in unflatten(content, "embedding.embeddings.") if "embedding.text" in item]
        if texts:
            prompt = content_text(texts)
    system = content.get("gen_ai.system_instructions")
    if system is not None and system != "":
        if prompt is None:
            prompt = content_text(system)
        else:
            prompt = content_text({"system_instructions": _structured(system), "messages": _structured(prompt)})
    completion = _pick(content, _OUTPUT_KEYS, ("gen_ai.completion.", "llm.output_messages."))
    return prompt, completion


def _structured(value: AttrValue) -> Any:
    parsed = parse_json(value) if type(value) is str else jsonable(value)
    return value if parsed is None else parsed


def event_content(span: SpanView) -> tuple[str | None, str | None]:
    """Content carried by span events (older gen_ai.content.prompt / gen_ai.content.completion)."""
    prompt = completion = None
    for event in span.events:
        if event.name == "gen_ai.content.prompt":
            value = event.attributes.get("gen_ai.prompt")
            if value is not None:
                prompt = content_text(value)
        elif event.name == "gen_ai.content.completion":
            value = event.attributes.get("gen_ai.completion")
            if value is not None:
                completion = content_text(value)
    return prompt, completion
