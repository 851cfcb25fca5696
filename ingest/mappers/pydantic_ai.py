"""Pydantic AI's own instrumentation (scope `pydantic-ai`, alone or under logfire): a `chat {model}` span per
model request with gen_ai.* and usage details under gen_ai.usage.details.*, and an agent run span
(`agent run`, `{agent} run`, `invoke_agent {agent}`) whose gen_ai.usage.* is the sum over the run.

gen_ai.usage.input_tokens counts cache reads and writes in every version (Pydantic AI adds Anthropic's cache
counts itself); the cache counts are details: cache_read_tokens / cache_write_tokens (0.7+),
cache_read_input_tokens / cache_creation_input_tokens (Anthropic) or cached_tokens (OpenAI) before that.
"""

from __future__ import annotations

from decimal import Decimal

from ingest.mappers.genai_semconv import FILTER, build, complete, is_model_call
from ingest.mappers.normalize.operations import MODEL_OPERATIONS, operation_name
from ingest.mappers.normalize.tokens import first_tokens, semconv_usage
from ingest.mappers.normalize.values import as_decimal, content_text, parse_json
from ingest.records import AttrValue, CallFields, SpanView

SOURCE = "pydantic-ai"
SCOPE_PREFIX = "pydantic-ai"

_DETAILS = "gen_ai.usage.details."
_CACHE_READ = (_DETAILS + "cache_read_tokens", _DETAILS + "cache_read_input_tokens", _DETAILS + "cached_tokens")
_CACHE_WRITE = (_DETAILS + "cache_write_tokens", _DETAILS + "cache_creation_input_tokens")
_REASONING = (_DETAILS + "reasoning_tokens", _DETAILS + "thoughts_tokens")
_EVENTS = "events"  # instrumentation version 1: the messages as a JSON list of OTel event bodies
_FILTER = FILTER.extend(
    {*_CACHE_READ, *_CACHE_WRITE, *_REASONING, "operation.cost", _EVENTS, "model_request_parameters", "logfire.json_schema"}
)


def claims(span: SpanView) -> bool:
    return span.scope_name.startswith(SCOPE_PREFIX)


def _is_agent_run(attrs: dict[str, AttrValue]) -> bool:
    """The run span: agent name attributes and no model operation (its usage sums the run's requests)."""
    if "agent_name" not in attrs and "gen_ai.agent.name" not in attrs:
        return False
    return operation_name(attrs.get("gen_ai.operation.name")) not in MODEL_OPERATIONS


def _events_content(value: AttrValue) -> tuple[str | None, str | None]:
    events = parse_json(value)
    if type(events) is not list:
        return None, None
    prompt = [event for event in events if type(event) is dict and not _is_choice(event)]
    choices = [event for event in events if type(event) is dict and _is_choice(event)]
    return (content_text(prompt) if prompt else None), (content_text(choices) if choices else None)


def _is_choice(event: dict) -> bool:
    return event.get("event.name") == "gen_ai.choice" or ("message" in event and "index" in event)


def map_pydantic_ai(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    if _is_agent_run(attrs) or not is_model_call(attrs):
        return None
    usage = semconv_usage(attrs)
    if usage.cache_read is None:
        usage.cache_read = first_tokens(attrs, _CACHE_READ)
    if usage.cache_write is None:
        usage.cache_write = first_tokens(attrs, _CACHE_WRITE)
    if usage.reasoning is None:
        usage.reasoning = first_tokens(attrs, _REASONING)
    call = build(span, SOURCE, usage=usage, attribute_filter=_FILTER)
    cost = as_decimal(attrs.get("operation.cost"))
    if cost is not None and cost != Decimal(0):
        call.provided_cost_usd = cost
    if call.input_content is None and _EVENTS in attrs:
        call.input_content, output = _events_content(attrs[_EVENTS])
        call.output_content = call.output_content or output
    return complete(call, span)
