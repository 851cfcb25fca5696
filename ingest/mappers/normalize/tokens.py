"""Token arithmetic: counts read from every spelling of usage, and stored with the call record's fixed
semantics (input includes the cache, output includes reasoning)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingest.mappers.normalize.values import nested
from ingest.records import AttrValue, CallFields, SpanView

MAX_TOKENS = 100_000_000  # per token class and call; more is garbage, not usage


class InvalidSpan(Exception):
    """A span that claims to be a model call but carries nonsense (e.g. negative token counts).

    The caller rejects the span with `message` in a partial-success answer instead of storing it.
    """

    def __init__(self, message: str, span: SpanView | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span


def token_count(value: AttrValue, name: str) -> int | None:
    """A token count from an attribute value; garbage raises InvalidSpan rather than being stored."""
    if value is None:
        return None
    kind = type(value)
    if kind is int:
        count = value
    elif kind is str and len(value) <= 20 and value.isascii() and value.strip().isdigit():
        count = int(value)
    elif kind is float and value.is_integer():
        count = int(value)
    else:
        raise InvalidSpan(f"{name} is not a token count: {str(value)[:40]!r}")
    if count < 0:
        raise InvalidSpan(f"{name} is negative: {count}")
    if count > MAX_TOKENS:
        raise InvalidSpan(f"{name} is implausibly large: {count}")
    return count


def first_tokens(attrs: dict[str, AttrValue], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return token_count(value, key)
    return None


@dataclass(slots=True)
class Usage:
    """Token usage as reported; `input_excludes_cache` when input is known to be the uncached part."""

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    total: int | None = None
    input_excludes_cache: bool = False

    def reported(self) -> bool:
        return (
            self.input is not None
            or self.output is not None
            or self.total is not None
            or self.cache_read is not None
            or self.cache_write is not None
            or self.reasoning is not None
        )

    def fill_from(self, other: Usage) -> None:
        """Take the counts this usage lacks from `other` (e.g. span attributes after a JSON usage)."""
        if self.input is None and other.input is not None:
            self.input = other.input
            self.input_excludes_cache = other.input_excludes_cache
        if self.output is None:
            self.output = other.output
        if self.cache_read is None:
            self.cache_read = other.cache_read
        if self.cache_write is None:
            self.cache_write = other.cache_write
        if self.reasoning is None:
            self.reasoning = other.reasoning
        if self.total is None:
            self.total = other.total


INPUT_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens")
OUTPUT_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.usage.completion_tokens")
TOTAL_KEYS = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens")
CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cached_input_tokens",
)
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.cache_write_input_tokens",  # AWS Strands Agents
)
REASONING_KEYS = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens")
_USAGE_KEYS = (INPUT_KEYS, OUTPUT_KEYS, CACHE_READ_KEYS, CACHE_WRITE_KEYS, REASONING_KEYS, TOTAL_KEYS)


def semconv_usage(attrs: dict[str, AttrValue]) -> Usage:
    """Usage from gen_ai.* attributes in all their official, deprecated and vendor spellings."""
    get = attrs.get
    found: list[int | None] = []
    for keys in _USAGE_KEYS:
        count = None
        for key in keys:
            value = get(key)
            if value is not None:
                count = value if type(value) is int and 0 <= value <= MAX_TOKENS else token_count(value, key)
                break
        found.append(count)
    return Usage(*found)


def _usage_value(obj: dict[str, Any], paths: tuple[str, ...], name: str) -> int | None:
    for path in paths:
        value = nested(obj, path)
        if value is not None:
            return token_count(value, name)
    return None


def usage_from_object(obj: dict[str, Any], name: str) -> Usage:
    """Usage from a provider's own usage object (Langfuse usage_details, logfire gen_ai.usage.raw).

    OpenAI chat (prompt_tokens / completion_tokens + *_details), OpenAI Responses (input_tokens /
    output_tokens + *_details), Anthropic (input_tokens excluding cache + cache_*_input_tokens),
    Gemini (*_token_count, output excluding thoughts), Bedrock Converse (inputTokens ...) and
    Langfuse's generic keys (input / output / total).
    """
    usage = Usage(
        input=_usage_value(obj, ("prompt_tokens", "input_tokens", "input", "prompt_token_count", "inputTokens"), name),
        output=_usage_value(
            obj, ("completion_tokens", "output_tokens", "output", "candidates_token_count", "outputTokens"), name
        ),
        total=_usage_value(obj, ("total_tokens", "total", "total_token_count", "totalTokens"), name),
        reasoning=_usage_value(
            obj,
            (
                "completion_tokens_details.reasoning_tokens",
                "output_tokens_details.reasoning_tokens",
                "output_reasoning_tokens",
                "output_reasoning",
                "reasoning_tokens",
                "thoughts_token_count",
            ),
            name,
        ),
    )
    anthropic_read = _usage_value(obj, ("cache_read_input_tokens", "cacheReadInputTokens"), name)
    anthropic_write = _usage_value(obj, ("cache_creation_input_tokens", "cacheWriteInputTokens"), name)
    if anthropic_read is not None or anthropic_write is not None:
        usage.cache_read = anthropic_read
        usage.cache_write = anthropic_write
        usage.input_excludes_cache = True
    else:
        usage.cache_read = _usage_value(
            obj,
            (
                "prompt_tokens_details.cached_tokens",
                "input_tokens_details.cached_tokens",
                "input_cached_tokens",
                "input_cache_read",
                "cached_content_token_count",
            ),
            name,
        )
    if "thoughts_token_count" in obj and usage.output is not None and usage.reasoning:
        usage.output += usage.reasoning
    return usage


def apply_usage(call: CallFields, usage: Usage, *, input_excludes_cache: bool = False) -> None:
    """Store usage with the call record's fixed semantics.

    input_tokens includes cache reads and writes: added when the source is known to exclude them
    (openlit on Anthropic, raw Anthropic usage), when input < cache read + cache write shows it, or when
    a reported total equals input + cache read + cache write + output.
    output_tokens includes reasoning: added when output < reasoning or when a reported total equals input +
    output + reasoning.
    """
    read = usage.cache_read or 0
    write = usage.cache_write or 0
    reasoning = usage.reasoning or 0
    output = usage.output
    total = usage.total
    tokens_in = usage.input
    if tokens_in is None and total is not None and output is not None and total >= output:
        tokens_in = total - output
    tokens_in = tokens_in or 0
    reported_in = tokens_in
    if (
        input_excludes_cache
        or usage.input_excludes_cache
        or tokens_in < read + write
        # A total that counts the cache on top of input and output (Bedrock Converse totalTokens) shows
        # that input left it out.
        or (read + write and total is not None and output is not None and total == tokens_in + read + write + output)
    ):
        tokens_in += read + write
    output = output or 0
    if output < reasoning or (
        # Gemini's candidates and xAI's completion tokens leave the thinking out; a total counting it shows that.
        reasoning and total is not None and total in (reported_in + output + reasoning, tokens_in + output + reasoning)
    ):
        output += reasoning
    call.input_tokens = tokens_in
    call.cached_input_tokens = read
    call.cache_write_tokens = write
    call.output_tokens = output
    call.reasoning_tokens = reasoning
    call.usage_reported = usage.reported()
