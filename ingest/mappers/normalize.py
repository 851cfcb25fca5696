"""Normalization shared by the convention mappers: token counts, provider/operation/finish/error
vocabularies, time to first token, attribution and moving prompt/completion content out of attributes."""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import orjson

from ingest.records import AttrValue, CallFields, SpanView

MAX_TOKENS = 100_000_000  # per token class and call; more is garbage, not usage
MAX_LABEL = 512  # longest model / provider / user / team string kept


class InvalidSpan(Exception):
    """A span that claims to be a model call but carries nonsense (e.g. negative token counts).

    The caller rejects the span with `message` in a partial-success answer instead of storing it.
    """

    def __init__(self, message: str, span: SpanView | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span


# --- small value helpers --------------------------------------------------------------------------


def label(value: AttrValue) -> str:
    """A short identifier-like string from an attribute value ('' when absent or not scalar)."""
    kind = type(value)
    if kind is str:
        return value[:MAX_LABEL].strip()
    if kind is int or kind is float:
        return str(value)
    return ""


def first_label(attrs: dict[str, AttrValue], keys: tuple[str, ...]) -> str:
    """The label of the first of `keys` that has a non-empty one."""
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            text = value[:MAX_LABEL].strip() if type(value) is str else label(value)
            if text:
                return text
    return ""


def parse_json(value: AttrValue) -> Any:
    """Parse an attribute that holds JSON text; structured values pass through; None when unparseable."""
    if type(value) is str:
        if not value:
            return None
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value


def json_object(value: AttrValue) -> dict[str, Any]:
    parsed = parse_json(value)
    return parsed if type(parsed) is dict else {}


def unquote(value: AttrValue) -> AttrValue:
    """Langfuse stores metadata values JSON-encoded ("\\"acme\\""); give back the plain value."""
    if type(value) is str and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def as_bool(value: AttrValue) -> bool | None:
    if value is True or value is False:
        return value
    if type(value) is str:
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
    return None


def as_int(value: AttrValue) -> int | None:
    kind = type(value)
    if kind is int:
        return value
    if kind is str and len(value) <= 20 and value.isascii() and value.strip().isdigit():
        return int(value)
    if kind is float and value.is_integer():
        return int(value)
    return None


def http_code(value: AttrValue) -> int | None:
    """An HTTP status code (100-599) from an attribute value, else None."""
    code = as_int(value)
    return code if code is not None and 100 <= code <= 599 else None


def as_seconds(value: AttrValue) -> float | None:
    kind = type(value)
    if kind is float or kind is int:
        seconds = float(value)
    elif kind is str:
        try:
            seconds = float(value)
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def as_decimal(value: AttrValue) -> Decimal | None:
    if type(value) not in (int, float, str) or type(value) is bool:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return amount


def nested(obj: dict[str, Any], path: str) -> Any:
    """obj["a"]["b"] for path "a.b", or obj["a.b"] when the producer flattened the keys."""
    if path in obj:
        return obj[path]
    current: Any = obj
    for part in path.split("."):
        if type(current) is not dict:
            return None
        current = current.get(part)
    return current


def jsonable(value: AttrValue) -> Any:
    """Attribute values as JSON-serializable data (bytes become base64 text)."""
    kind = type(value)
    if kind is bytes:
        return base64.b64encode(value).decode("ascii")
    if kind is list:
        for item in value:
            item_kind = type(item)
            if item_kind is bytes or item_kind is list or item_kind is dict:
                return [jsonable(element) for element in value]
        return value
    if kind is dict:
        return {key: jsonable(item) for key, item in value.items()}
    return value


def content_text(value: AttrValue) -> str:
    """Content as a string: strings as they are, anything else JSON-encoded."""
    if type(value) is str:
        return value
    try:
        return orjson.dumps(jsonable(value)).decode()
    except TypeError:  # integers beyond 64 bits, which no OTLP decoder produces
        return json.dumps(jsonable(value), default=str)


# --- token counts ---------------------------------------------------------------------------------


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


# --- vocabularies ---------------------------------------------------------------------------------

_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure.ai.openai": "azure.ai.openai",
    "az.ai.openai": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azureopenai": "azure.ai.openai",
    "azure": "azure.ai.openai",
    "azure.ai.inference": "azure.ai.inference",
    "az.ai.inference": "azure.ai.inference",
    "azure_ai_inference": "azure.ai.inference",
    "aws.bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",  # Spring AI
    "aws": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "gcp.vertex_ai": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "vertex": "gcp.vertex_ai",
    "google_vertexai": "gcp.vertex_ai",
    "google_vertex": "gcp.vertex_ai",  # Pydantic AI google-vertex
    "google.vertex": "gcp.vertex_ai",  # Vercel AI SDK google.vertex.chat
    "vertex.anthropic": "gcp.vertex_ai",  # Vercel AI SDK vertex.anthropic.messages
    "gcp.gemini": "gcp.gemini",
    "gemini": "gcp.gemini",
    "google_ai_studio": "gcp.gemini",
    "google.ai.studio": "gcp.gemini",
    "google_genai": "gcp.gemini",
    "google.generativeai": "gcp.gemini",
    "google.generative_ai": "gcp.gemini",  # Vercel AI SDK google.generative-ai
    "google_gla": "gcp.gemini",  # Pydantic AI google-gla
    "gcp.gen_ai": "gcp.gen_ai",
    "google": "gcp.gen_ai",
    "cohere": "cohere",
    "mistral_ai": "mistral_ai",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x_ai",
    "xai": "x_ai",
    "grok": "x_ai",
    "perplexity": "perplexity",
    "ibm.watsonx.ai": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
    "ibm_watsonx_ai": "ibm.watsonx.ai",
    "ollama": "ollama",
    "together": "together_ai",
    "togetherai": "together_ai",
    "together_ai": "together_ai",
    "fireworks": "fireworks_ai",
    "fireworks_ai": "fireworks_ai",
    "oci_genai": "oci",
}
# Values of gen_ai.system / gen_ai.provider.name that name a framework, not who served the call: the
# provider is then unknown (and taken from the model name).
_NOT_PROVIDERS = frozenset(
    {
        "langchain",  # OpenLLMetry LangChain (before vendor detection), OpenLIT
        "llama_index",
        "llamaindex",
        "haystack",
        "strands_agents",  # AWS Strands Agents
        "gcp.vertex.agent",  # Google ADK
        "spring_ai",  # Spring AI ChatClient (framework spans)
        "semantic_kernel",
        "crewai",
        "autogen",
        "ag2",
        "litellm",  # OpenLIT's LiteLLM wrapper
        "unknown",  # LiteLLM without custom_llm_provider
    }
)


def provider_name(value: AttrValue) -> str:
    """Provider in the official gen_ai.provider.name vocabulary (unknown names are kept, lowercased).

    Framework names (LangChain, Strands, ADK, ...) give '', and a dotted name that is not known as a whole
    is known by its head (`openai.chat` from the Vercel AI SDK is openai).
    """
    if type(value) is str:
        known = _PROVIDERS.get(value)
        if known is not None:
            return known
    raw = label(value).lower()
    if not raw:
        return ""
    known = _PROVIDERS.get(raw)
    if known is not None:
        return known
    return _provider_slow(raw)


@lru_cache(maxsize=1024)
def _provider_slow(raw: str) -> str:
    name = raw.replace(" ", "_").replace("-", "_")
    known = _PROVIDERS.get(name)
    if known is not None:
        return known
    if name in _NOT_PROVIDERS:
        return ""
    head = name
    while "." in head:
        head = head.rsplit(".", 1)[0]
        known = _PROVIDERS.get(head)
        if known is not None:
            return known
    return raw


_MODEL_PREFIXES = (
    ("gpt-", "openai"),
    ("chatgpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-embedding", "openai"),
    ("davinci", "openai"),
    ("babbage", "openai"),
    ("claude", "anthropic"),
    ("gemini", "gcp.gemini"),
    ("mistral", "mistral_ai"),
    ("mixtral", "mistral_ai"),
    ("codestral", "mistral_ai"),
    ("command", "cohere"),
    ("embed-", "cohere"),
    ("grok", "x_ai"),
    ("deepseek", "deepseek"),
    ("sonar", "perplexity"),
)
# Bedrock model ids: `anthropic.claude-…-v1:0`, cross-region profiles `us.anthropic.claude-…`, ARNs.
_BEDROCK_MODEL = re.compile(
    r"^(?:arn:aws[\w-]*:bedrock:|(?:(?:us|eu|apac|au|jp|ca|global|us-gov)\.)?"
    r"(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|writer)\.[a-z])"
)


def provider_from_model(model: str) -> str:
    """The provider a model name implies: Bedrock ids, Vertex `claude-…@date`, `provider/model`, families."""
    lowered = model.lower()
    if not lowered:
        return ""
    if _BEDROCK_MODEL.match(lowered):
        return "aws.bedrock"
    if "/" in lowered:
        head, _, tail = lowered.partition("/")
        known = _PROVIDERS.get(head.replace("-", "_"))
        if known is not None:
            return known
        if head not in ("models", "publishers"):
            return ""  # an unknown host or organisation (`meta-llama/…`): the family says nothing of who served it
        return provider_from_model(tail)
    for prefix, provider in _MODEL_PREFIXES:
        if lowered.startswith(prefix):
            if provider == "anthropic" and "@" in lowered:
                return "gcp.vertex_ai"  # claude-3-5-sonnet@20240620 is Vertex AI's naming
            return provider
    return ""


_OPERATIONS = {
    "chat": "chat",
    "chat_completions": "chat",
    "chat.completions": "chat",
    "text_completion": "text_completion",
    "completion": "text_completion",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "embedding": "embeddings",
    "embed": "embeddings",
    "responses": "responses",
    "response": "responses",
    "generate_content": "generate_content",
    "rerank": "rerank",
    # Semantic Kernel (.NET and Python)
    "chat.streaming_completions": "chat",
    "text.completions": "text_completion",
    "text.streaming_completions": "text_completion",
    "text_completions": "text_completion",
    # LiteLLM call types
    "acompletion": "chat",
    "atext_completion": "text_completion",
    "aembedding": "embeddings",
}
# Operation names that only streamed calls carry.
STREAMING_OPERATIONS = frozenset({"chat.streaming_completions", "text.streaming_completions"})
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "embeddings", "responses", "generate_content", "rerank"})
NON_CALL_OPERATIONS = frozenset(
    {
        "invoke_agent",
        "create_agent",
        "execute_tool",
        "workflow",
        "task",
        "agent",
        "tool",
        "retrieval",
        "vectordb",
        "framework",
    }
)


def operation_name(value: AttrValue) -> str:
    if type(value) is str:
        known = _OPERATIONS.get(value)
        if known is not None:
            return known
    raw = label(value).lower()
    return _OPERATIONS.get(raw, raw)


_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "completed": "stop",
    "complete": "stop",
    "eos": "stop",
    "finish_reason_stop": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "model_length": "length",
    "incomplete": "length",
    "tool_calls": "tool_call",
    "tool_call": "tool_call",
    "toolcalls": "tool_call",
    "functioncall": "tool_call",
    "contentfilter": "content_filter",
    "maxtokens": "length",
    "endturn": "stop",
    "tool_use": "tool_call",
    "function_call": "tool_call",
    "content_filter": "content_filter",
    "content_filtered": "content_filter",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "refusal": "content_filter",
    "guardrail_intervened": "content_filter",
    "error": "error",
    "failed": "error",
}


def finish_reason(value: AttrValue) -> str:
    """stop / length / tool_call / content_filter / error from a list, a JSON list string or a scalar.

    Also the shapes of Semantic Kernel (`["Stop"]`, `[Stop, ToolCalls]`, `FinishReason.STOP`) and the
    Vercel AI SDK (`tool-calls`).
    """
    if type(value) is str:
        known = _FINISH.get(value)
        if known is not None:
            return known
        text = value.strip()
        if text[:1] in ("[", '"'):
            parsed = parse_json(text)
            if parsed is not None:
                return finish_reason(parsed)
        return _finish_slow(text) if len(text) <= _MAX_FINISH_TEXT else ""
    if type(value) is list:
        for item in value:
            reason = finish_reason(item)
            if reason:
                return reason
    return ""


_MAX_FINISH_TEXT = 256  # a few comma-separated reasons; longer text is not one (and is not cached)


@lru_cache(maxsize=1024)
def _finish_slow(text: str) -> str:
    for item in text.strip("[]").split(","):
        word = item.strip().strip("\"'").rsplit(".", 1)[-1].lower().replace("-", "_")
        reason = _FINISH.get(word) or _FINISH.get(word.replace("_", ""))
        if reason:
            return reason
    return ""


# --- errors -------------------------------------------------------------------------------------

_ERROR_NAMES = {
    "ratelimiterror": "rate_limit",
    "ratelimit": "rate_limit",
    "ratelimitexceeded": "rate_limit",
    "toomanyrequests": "rate_limit",
    "resourceexhausted": "rate_limit",
    "insufficientquota": "rate_limit",
    "internalservererror": "server_error",
    "servererror": "server_error",
    "apierror": "server_error",
    "serviceunavailableerror": "overloaded",
    "overloadederror": "overloaded",
    "overloaded": "overloaded",
    "apitimeouterror": "timeout",
    "timeout": "timeout",
    "apiconnectionerror": "connection",
    "authenticationerror": "authentication",
    "permissiondeniederror": "permission",
    "badrequesterror": "bad_request",
    "invalidrequesterror": "bad_request",
    "unprocessableentityerror": "bad_request",
    "notfounderror": "not_found",
    "contextlengthexceeded": "context_length",
    "contentfilter": "content_filter",
    "cancellederror": "cancelled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
_ERROR_FRAGMENTS = (
    ("ratelimit", "rate_limit"),
    ("toomanyrequests", "rate_limit"),
    ("throttl", "rate_limit"),
    ("quota", "rate_limit"),
    ("contextlength", "context_length"),
    ("contextwindow", "context_length"),
    ("toolong", "context_length"),
    ("contentfilter", "content_filter"),
    ("contentpolicy", "content_filter"),
    ("moderation", "content_filter"),
    ("overload", "overloaded"),
    ("timeout", "timeout"),
    ("timedout", "timeout"),
    ("deadline", "timeout"),
    ("connect", "connection"),
    ("network", "connection"),
    ("authenticat", "authentication"),
    ("unauthorized", "authentication"),
    ("apikey", "authentication"),
    ("permission", "permission"),
    ("forbidden", "permission"),
    ("accessdenied", "permission"),
    ("notfound", "not_found"),
    ("cancel", "cancelled"),
    ("internalserver", "server_error"),
    ("servererror", "server_error"),
    ("unavailable", "server_error"),
    ("badgateway", "server_error"),
    ("badrequest", "bad_request"),
    ("invalidrequest", "bad_request"),
    ("invalidargument", "bad_request"),
    ("unprocessable", "bad_request"),
    ("validation", "bad_request"),
)
_MESSAGE_MARKERS = (
    ("context_length_exceeded", "context_length"),
    ("maximum context length", "context_length"),
    ("prompt is too long", "context_length"),
    ("content_filter", "content_filter"),
    ("content_policy", "content_filter"),
    ("content management policy", "content_filter"),
    ("overloaded", "overloaded"),
    ("rate_limit", "rate_limit"),
    ("rate limit", "rate_limit"),
    ("insufficient_quota", "rate_limit"),
    ("timed out", "timeout"),
    ("timeout", "timeout"),
)
_CLASS_REPR = re.compile(r"<class '([^']+)'>")
_MESSAGE_CLASS = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Timeout))\b")
_NON_ALNUM = re.compile(r"[^a-z0-9]")
_HTTP_IN_MESSAGE = re.compile(r"(?:Error code|status code|status|HTTP)[:= ]+([1-5]\d\d)\b", re.IGNORECASE)


def error_kind(raw: AttrValue) -> str:
    """Normalize one error.type / exception class / API error type; '' when it says nothing."""
    text = label(raw)
    if not text:
        return ""
    match = _CLASS_REPR.search(text)
    if match:
        text = match.group(1)
    if text.isdigit():
        return error_from_http(int(text))
    key = _NON_ALNUM.sub("", text.rsplit(".", 1)[-1].lower())
    if not key or key == "other":
        return ""
    exact = _ERROR_NAMES.get(key)
    if exact is not None:
        return exact
    for fragment, kind in _ERROR_FRAGMENTS:
        if fragment in key:
            return kind
    return ""


def error_from_http(status: int | None) -> str:
    if status is None or status < 400:
        return ""
    if status == 429:
        return "rate_limit"
    if status in (503, 529):
        return "overloaded"
    if status in (408, 504):
        return "timeout"
    if status == 401:
        return "authentication"
    if status == 403:
        return "permission"
    if status == 404:
        return "not_found"
    if status == 499:
        return "cancelled"
    if status >= 500:
        return "server_error"
    return "bad_request"


def error_from_message(message: str) -> str:
    lowered = message.lower()
    for marker, kind in _MESSAGE_MARKERS:
        if marker in lowered:
            return kind
    return ""


def http_status_from_message(message: str) -> int | None:
    match = _HTTP_IN_MESSAGE.search(message)
    return int(match.group(1)) if match else None


def exception_details(span: SpanView) -> tuple[str, str]:
    """(exception.type, exception.message) of the span's first `exception` event."""
    for event in span.events:
        if event.name == "exception":
            attrs = event.attributes
            return label(attrs.get("exception.type")), label_long(attrs.get("exception.message"))
    return "", ""


def label_long(value: AttrValue) -> str:
    return value[:4096] if type(value) is str else ""


HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")


def apply_status(
    call: CallFields, span: SpanView, raw_error_type: AttrValue, *, extra_message: str = "", failed: bool = False
) -> None:
    """Set status, error_type (fixed vocabulary) and http_status from every place they hide.

    `failed` and `extra_message` carry a convention's own error flag and text (Langfuse's level/status_message).
    """
    attrs = span.attributes
    http_status = None
    for key in HTTP_STATUS_KEYS:
        value = attrs.get(key)
        if value is not None:
            http_status = http_code(value)
            if http_status is not None:
                break
    raw_label = "" if raw_error_type is None else label(raw_error_type)
    failed = failed or span.status_code == 2 or bool(raw_label) or (http_status is not None and http_status >= 400)
    if not failed:
        call.status = "ok"
        call.http_status = http_status
        return
    exc_type, exc_message = exception_details(span)
    message = span.status_message or extra_message or exc_message
    if http_status is None:
        http_status = http_status_from_message(message) or http_status_from_message(exc_message)
    class_match = _MESSAGE_CLASS.match(message)
    kind = (
        error_kind(raw_label)
        or error_kind(exc_type)
        or (error_kind(class_match.group(1)) if class_match else "")
        or error_from_http(http_status)
        or error_from_message(message)
        or "other"
    )
    if kind == "bad_request":
        kind = error_from_message(message) or kind
    call.status = "error"
    call.error_type = kind
    call.http_status = http_status


# --- time ---------------------------------------------------------------------------------------


def timestamp(ns: int) -> datetime:
    """UTC datetime of a unix-nanosecond time, truncated to the microsecond."""
    return datetime.fromtimestamp(ns // 1000 / 1e6, UTC)


def ttft_from_seconds(value: AttrValue) -> float | None:
    seconds = as_seconds(value)
    return None if seconds is None else seconds * 1000.0


def ttft_from_event(span: SpanView, event_name: str) -> float | None:
    """Milliseconds from span start to the first event called `event_name`."""
    for event in span.events:
        if event.name == event_name:
            delta = event.time_ns - span.start_ns
            return delta / 1e6 if delta >= 0 else None
    return None


def ttft_from_iso(value: AttrValue, start_ns: int) -> float | None:
    """Milliseconds from span start to an absolute ISO-8601 timestamp (Langfuse completion_start_time)."""
    text = unquote(value)
    if type(text) is not str or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - timestamp(start_ns)
    ms = delta.total_seconds() * 1000.0
    return ms if ms >= 0 else None


# --- attribution ----------------------------------------------------------------------------------

USER_KEYS = (
    "user.id",
    "enduser.id",
    "gen_ai.user",
    "gen_ai.request.user",
    "llm.user",  # OpenLLMetry before 0.30, LiteLLM: the OpenAI `user` request field
    "traceloop.association.properties.user_id",
    "langfuse.user.id",
)
SESSION_KEYS = (
    "session.id",
    "gen_ai.conversation.id",
    "traceloop.association.properties.session_id",
    "langfuse.session.id",
)
ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")


_RESOURCE_CACHE: dict[int, tuple[dict[str, AttrValue], tuple[str, ...]]] = {}
_RESOURCE_CACHE_SIZE = 4096


def _resource_attribution(resource: dict[str, AttrValue]) -> tuple[str, ...]:
    """(team, product, feature, environment, deployment environment, service name) of a resource.

    Spans of one ResourceSpans share the resource dict, so this is computed once per resource.
    """
    entry = _RESOURCE_CACHE.get(id(resource))
    if entry is not None and entry[0] is resource:
        return entry[1]
    values = (
        label(resource.get("observatory.team")),
        label(resource.get("observatory.product")),
        label(resource.get("observatory.feature")),
        label(resource.get("observatory.environment")),
        first_label(resource, ENVIRONMENT_KEYS),
        label(resource.get("service.name")),
    )
    if len(_RESOURCE_CACHE) >= _RESOURCE_CACHE_SIZE:
        _RESOURCE_CACHE.clear()
    _RESOURCE_CACHE[id(resource)] = (resource, values)
    return values


def apply_attribution(call: CallFields, span: SpanView, fallback: dict[str, str] | None = None) -> None:
    """team/product/feature/environment, end user, session and service name.

    Order: observatory.* span attributes, observatory.* resource attributes, then what the
    library's own context mechanism carried (`fallback`), then (environment only)
    deployment.environment(.name) on the span or resource.
    """
    attrs = span.attributes
    get = attrs.get
    team, product, feature, environment, deployment, service = _resource_attribution(span.resource)
    if (value := get("observatory.team")) is not None:
        team = label(value) or team
    if (value := get("observatory.product")) is not None:
        product = label(value) or product
    if (value := get("observatory.feature")) is not None:
        feature = label(value) or feature
    if (value := get("observatory.environment")) is not None:
        environment = label(value) or environment
    end_user = first_label(attrs, USER_KEYS)
    session = first_label(attrs, SESSION_KEYS)
    if fallback:
        team = team or fallback.get("team", "")
        product = product or fallback.get("product", "")
        feature = feature or fallback.get("feature", "")
        environment = environment or fallback.get("environment", "")
        end_user = end_user or fallback.get("user", "")
        session = session or fallback.get("session", "")
    call.team = team
    call.product = product
    call.feature = feature
    call.environment = environment or first_label(attrs, ENVIRONMENT_KEYS) or deployment
    call.end_user = end_user
    call.session = session
    call.service_name = service


# --- content ------------------------------------------------------------------------------------

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


_KEEP, _DROP, _CONTENT = 0, 1, 2
_MAX_CACHED_KEYS = 20_000
_MAX_CACHED_LAYOUTS = 2048
_MAX_LAYOUT_CHARS = 2048  # longer tuples of names (all names together) are classified again on each span


class AttributeFilter:
    """Splits a span's attributes: consumed into columns (dropped), content (moved out), the rest kept.

    Each mapper has one. Spans of one instrumentation carry the same attribute names in the same order,
    so the split is cached per tuple of names (its "layout"), and key classifications per name.
    """

    __slots__ = ("_classes", "_layouts", "consumed", "consumed_prefixes")

    def __init__(self, consumed: frozenset[str], consumed_prefixes: tuple[str, ...] = ("observatory.",)) -> None:
        self.consumed = consumed
        self.consumed_prefixes = consumed_prefixes
        self._classes: dict[str, int] = {}
        self._layouts: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def _classify(self, key: str) -> int:
        if key in self.consumed or key.startswith(self.consumed_prefixes):
            kind = _DROP
        elif key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES):
            kind = _CONTENT
        else:
            kind = _KEEP
        if len(self._classes) < _MAX_CACHED_KEYS:
            self._classes[key] = kind
        return kind

    def _layout(self, keys: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(names to keep, content names) among `keys`, in their order."""
        keep: list[str] = []
        content: list[str] = []
        classes = self._classes
        for key in keys:
            kind = classes.get(key)
            if kind is None:
                kind = self._classify(key)
            if kind == _KEEP:
                keep.append(key)
            elif kind == _CONTENT:
                content.append(key)
        layout = (tuple(keep), tuple(content))
        if sum(map(len, keys)) <= _MAX_LAYOUT_CHARS:
            if len(self._layouts) >= _MAX_CACHED_LAYOUTS:
                self._layouts.clear()
            self._layouts[keys] = layout
        return layout

    def extend(self, consumed: set[str] | frozenset[str]) -> AttributeFilter:
        return AttributeFilter(self.consumed | consumed, self.consumed_prefixes)

    def split(self, attrs: dict[str, AttrValue]) -> tuple[dict[str, AttrValue], dict[str, AttrValue]]:
        """(attributes to keep, content attributes)."""
        keys = tuple(attrs)
        layout = self._layouts.get(keys)
        if layout is None:
            layout = self._layout(keys)
        keep_keys, content_keys = layout
        keep: dict[str, AttrValue] = {}
        for key in keep_keys:
            value = attrs[key]
            value_type = type(value)
            keep[key] = jsonable(value) if value_type is list or value_type is dict or value_type is bytes else value
        return keep, {key: attrs[key] for key in content_keys} if content_keys else {}
