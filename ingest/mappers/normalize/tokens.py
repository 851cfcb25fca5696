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
    """Token usage as reported.

    `input_excludes_cache`: the mapper knows this source reports input without the cache (openlit on Anthropic,
    Vercel before 6.x). `input_may_exclude_cache`: the counts come in Anthropic's own shape (input_tokens beside
    cache_*_input_tokens), which leaves the cache out unless a reported total says input already holds it.
    """

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    total: int | None = None
    input_excludes_cache: bool = False
    input_may_exclude_cache: bool = False

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
            self.input_may_exclude_cache = other.input_may_exclude_cache
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


_CACHE_READ_PATHS = (
    "prompt_tokens_details.cached_tokens",
    "input_tokens_details.cached_tokens",
    "input_cached_tokens",
    "input_cache_read",
    "cached_content_token_count",
)
_CACHE_WRITE_PATHS = (
    "prompt_tokens_details.cache_write_tokens",  # LiteLLM, LangChain
    "prompt_tokens_details.cache_creation_tokens",
    "input_tokens_details.cache_write_tokens",
    "input_cache_write",
    "input_cache_creation",
)


def usage_from_object(obj: dict[str, Any], name: str) -> Usage:
    """Usage from a provider's own usage object (Langfuse usage_details, logfire gen_ai.usage.raw, LiteLLM's
    usage_object, MLflow's outputs).

    OpenAI chat (prompt_tokens / completion_tokens + *_details), OpenAI Responses (input_tokens /
    output_tokens + *_details), Anthropic (input_tokens excluding cache + cache_*_input_tokens; wrappers such
    as LiteLLM keep those keys beside a prompt_tokens that includes the cache, which their total shows),
    Gemini (*_token_count, output excluding thoughts), Bedrock Converse (inputTokens ...) and Langfuse's
    generic keys (input / output / total).
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
        usage.input_may_exclude_cache = True
    usage.cache_read = anthropic_read if anthropic_read is not None else _usage_value(obj, _CACHE_READ_PATHS, name)
    usage.cache_write = anthropic_write if anthropic_write is not None else _usage_value(obj, _CACHE_WRITE_PATHS, name)
    if "thoughts_token_count" in obj and usage.output is not None and usage.reasoning:
        usage.output += usage.reasoning
    return usage


def _adds_cache(usage: Usage, tokens_in: int, read: int, write: int, reasoning: int, explicit: bool) -> bool:
    """Whether the reported input leaves the cache out, from the strongest evidence down:

    1. input < cache read + cache write: it cannot hold them;
    2. a total equal to input + cache + output: the total counted the cache on top of input (Bedrock Converse);
    3. the mapper knows its source leaves the cache out (openlit on Anthropic, Vercel AI before 6.x);
    4. counts in Anthropic's own shape leave it out, unless a total equal to input + output (+ reasoning) shows
       that input already holds it (LiteLLM's prompt_tokens 1842 = 42 + 1500 + 300, total 1919 = 1842 + 77).
    """
    cache = read + write
    if not cache:
        return False
    if tokens_in < cache:
        return True
    total, output = usage.total, usage.output
    has_total = total is not None and output is not None
    if has_total and total == tokens_in + cache + output:
        return True
    if explicit or usage.input_excludes_cache:
        return True
    if usage.input_may_exclude_cache:
        return not (has_total and total in (tokens_in + output, tokens_in + output + reasoning))
    return False


def apply_usage(call: CallFields, usage: Usage, *, input_excludes_cache: bool = False) -> None:
    """Store usage with the call record's fixed semantics.

    input_tokens includes cache reads and writes: they are added when the evidence says the source left them
    out (see `_adds_cache`). output_tokens includes reasoning: added when output < reasoning or when a
    reported total equals input + output + reasoning.
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
    if (read or write) and _adds_cache(usage, tokens_in, read, write, reasoning, input_excludes_cache):
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


def settle_usage(call: CallFields) -> None:
    """A stream whose counts are all zero reported no usage: instrumentations start their counters at 0 and a
    stream without a usage chunk never moves them (no model call reads zero input tokens)."""
    if (
        call.streaming
        and call.usage_reported
        and not (call.input_tokens or call.output_tokens or call.cached_input_tokens or call.cache_write_tokens)
    ):
        call.usage_reported = False
