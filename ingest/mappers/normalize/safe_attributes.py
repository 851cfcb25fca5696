"""What a call's or a trace span's `attributes` may keep while its organization does not capture content: an
allow-list of metadata keys, plus numbers and booleans under any other key; everything else is withheld.

A deny-list of content keys cannot keep up with the conventions (every library names its tool arguments,
tool definitions and message bodies its own way), so with capture off a value is stored only when it is known
not to be content:

1. Known content is always withheld, whatever its value: prompt and completion attributes (`content.py`),
   tool definitions and call arguments and results (`gen_ai.tool.definitions`, `gen_ai.tool.call.arguments`,
   OpenLIT's `gen_ai.tool.args`, OpenLLMetry's `llm.request.functions.*`, OpenInference's `llm.tools.*`,
   `tool.parameters`, `tool_call.function.arguments`, Vercel's `ai.prompt.tools` / `ai.toolCall.args` /
   `ai.toolCall.result`, Pydantic AI's `tool_arguments` / `tool_response` / `final_result`, ...), stop sequences,
   prompt templates and their variables, retrieved documents, error and exception messages (they echo the
   request: a content-filter or validation error quotes the prompt), logfire's formatted `logfire.msg`, and
   HTTP headers and bodies.
2. Metadata keys are kept with their value: models, providers, operations, ids, finish reasons, usage and cost,
   server, HTTP method/route/status, URLs without their query, resource-like namespaces (service, host, cloud,
   k8s, deployment, telemetry, process runtime), code locations, span kinds and names of workflows, agents and
   tools, and each convention's own metadata of that sort. Invocation parameters (OpenInference's
   `llm.invocation_parameters`, Langfuse's `model.parameters`) are kept with only their sampling settings.
3. The user's own tags are kept: `observatory.*`, `metadata` / `metadata.*` (OpenInference, LiteLLM),
   `langfuse.trace.metadata.*`, `langfuse.observation.metadata.*`, `langfuse.trace.tags`, `tag.tags`,
   `ai.telemetry.metadata.*`, `traceloop.association.properties.*`, and any key an attribution rule of the
   organization looks at (`declared`): the user named them to tag calls with, not to carry prompts.
4. Any other key keeps a number or a boolean (a count, a flag, a setting is not content); a string, list,
   dict or bytes value is withheld. `observatory.dropped_attributes` counts what was withheld, so a user
   can tell something was.

Spans of one instrumentation share their attribute names, so the split is cached per tuple of names.
"""

from __future__ import annotations

import json
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from ingest.mappers.normalize.attribution import ENVIRONMENT_KEYS, SESSION_KEYS, USER_KEYS
from ingest.mappers.normalize.content import CONTENT_KEYS, CONTENT_PREFIXES
from ingest.mappers.normalize.values import parse_json
from ingest.records import AttrValue

DROPPED_KEY = "observatory.dropped_attributes"

WITHHELD_KEYS = frozenset(
    {
        *CONTENT_KEYS,
        "gen_ai.tool.definitions",  # official, OpenLLMetry, OpenLIT
        "gen_ai.tool.description",
        "gen_ai.tool.args",  # OpenLIT
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.request.stop_sequences",  # the user's own text
        "gen_ai.openai.request.response_format",  # may be a whole JSON schema
        "tool.description",  # OpenInference tool spans
        "tool.parameters",
        "tool.json_schema",
        "tool_call.function.arguments",
        "llm.prompt_template.template",
        "llm.prompt_template.variables",
        "traceloop.prompt.template",
        "ai.prompt.tools",  # Vercel AI SDK
        "ai.prompt.toolChoice",
        "ai.toolCall.args",
        "ai.toolCall.result",
        "ai.schema",
        "ai.schema.description",
        "ai.embedding",
        "ai.embeddings",
        "ai.response.providerMetadata",  # Gemini grounding: the search queries made from the prompt
        "tool_arguments",  # Pydantic AI
        "tool_response",
        "final_result",
        "all_messages_events",
        "model_request_parameters",  # Pydantic AI: the tool definitions
        "events",
        "mlflow.chat.tools",  # MLflow
        "gcp.vertex.agent.tool_call_args",  # Google ADK
        "gcp.vertex.agent.tool_response",
        "gcp.vertex.agent.data",
        "tools",  # request keyword arguments recorded as attributes (MLflow)
        "functions",
        "messages",
        "prompt",
        "input",
        "system",
        "error.message",  # error texts echo the request
        "error.stack_trace",
        "exception.message",
        "exception.stacktrace",
        "otel.status_description",
        "langfuse.observation.status_message",
        "logfire.msg",  # the template formatted with its arguments
        "metadata.mcp_tool_call_metadata",  # LiteLLM: the MCP call's arguments
        "metadata.prompt_management_metadata",  # LiteLLM: prompt variables
        "metadata.vector_store_request_metadata",  # LiteLLM: the search query
        "metadata.requester_custom_headers",  # LiteLLM: may hold credentials
    }
)
WITHHELD_PREFIXES = (
    *CONTENT_PREFIXES,
    "gen_ai.request.functions",  # OpenLLMetry before gen_ai.tool.definitions
    "gen_ai.tool.definitions.",
    "llm.request.functions.",
    "llm.tools.",  # OpenInference
    "tools.",
    "functions.",
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    "document.",
    "traceloop.prompt.template_variables.",
    "http.request.header.",  # credentials
    "http.response.header.",
    "http.request.body",
    "http.response.body",
)

METADATA_KEYS = frozenset(
    {
        *USER_KEYS,
        *SESSION_KEYS,
        *ENVIRONMENT_KEYS,
        # official GenAI conventions and their deprecated names
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.response.id",
        "gen_ai.response.finish_reasons",
        "gen_ai.response.finish_reason",
        "gen_ai.output.type",
        "gen_ai.request.encoding_formats",
        "gen_ai.agent.id",
        "gen_ai.agent.name",
        "gen_ai.tool.name",
        "gen_ai.tool.type",
        "gen_ai.tool.call.id",
        "gen_ai.data_source.id",
        "gen_ai.openai.request.service_tier",
        "gen_ai.openai.response.service_tier",
        "gen_ai.openai.response.system_fingerprint",
        "gen_ai.openai.api_version",
        "gen_ai.openai.api_type",
        "gen_ai.sdk.version",  # OpenLIT
        "gen_ai.application_name",
        "gen_ai.environment",
        "gen_ai.type",
        "openai.api.type",
        "openai.request.service_tier",
        "openai.response.service_tier",
        "openai.response.system_fingerprint",
        "anthropic.message.stop_reason",
        "anthropic.request.id",
        "anthropic.response.service_tier",
        # where the request went
        "server.address",
        "server.port",
        "http.method",
        "http.request.method",
        "http.request.method_original",
        "http.response.status_code",
        "http.status_code",
        "http.route",
        "http.scheme",
        "http.flavor",
        "http.host",
        "http.server_name",
        "http.user_agent",
        "user_agent.original",
        "url.scheme",
        "url.domain",
        "url.port",
        "url.path",
        "url.template",
        "db.system",
        "db.system.name",
        "db.name",
        "db.namespace",
        "db.operation",
        "db.operation.name",
        "db.collection.name",
        "db.sql.table",
        "error.type",
        "error.code",  # LiteLLM
        "error.llm_provider",
        "exception.type",
        "otel.status_code",
        "otel.scope.name",
        "otel.scope.version",
        "otel.library.name",
        "otel.library.version",
        "process.pid",
        "thread.id",
        "thread.name",
        "tag.tags",
        # OpenInference
        "openinference.span.kind",
        "llm.system",
        "llm.provider",
        "llm.model_name",
        "llm.request.model_name",
        "llm.response.model_name",
        "llm.finish_reason",
        "llm.prompt_template.version",
        "embedding.model_name",
        "reranker.model_name",
        "tool.name",
        "tool.id",
        "tool_call.id",
        "tool_call.function.name",
        "metadata",  # using_attributes(metadata=...) and LangChain run metadata: the user's tags
        # OpenLLMetry, LiteLLM
        "llm.request.type",
        "llm.is_streaming",
        "llm.request.model",
        "llm.response.model",
        "llm.response.finish_reason",
        "llm.response.stop_reason",
        "traceloop.span.kind",
        "traceloop.workflow.name",
        "traceloop.entity.name",
        "traceloop.entity.path",
        "traceloop.entity.version",
        "traceloop.prompt.key",
        "traceloop.prompt.version",
        "traceloop.prompt.version_name",
        "traceloop.prompt.version_hash",
        "traceloop.prompt.managed",
        "litellm.call_id",
        "litellm.provider.model",
        # Langfuse
        "langfuse.observation.type",
        "langfuse.observation.level",
        "langfuse.observation.model.name",
        "langfuse.observation.usage_details",
        "langfuse.observation.cost_details",
        "langfuse.observation.completion_start_time",
        "langfuse.observation.prompt.name",
        "langfuse.observation.prompt.version",
        "langfuse.trace.name",
        "langfuse.trace.tags",
        "langfuse.environment",
        "langfuse.release",
        "langfuse.version",
        # logfire, Pydantic AI
        "logfire.span_type",
        "logfire.msg_template",  # the template only: ingest.dedup recognizes stream responses by it
        "logfire.level_num",
        "logfire.tags",
        "agent_name",
        "model_name",
        # Vercel AI SDK
        "ai.operationId",
        "operation.name",
        "resource.name",
        "ai.model.id",
        "ai.model.provider",
        "ai.response.model",
        "ai.response.id",
        "ai.response.finishReason",
        "ai.finishReason",
        "ai.response.timestamp",
        "ai.telemetry.functionId",
        "ai.toolCall.name",
        "ai.toolCall.id",
        "ai.schema.name",
        # MLflow (and the request's `model` / `stream` keyword arguments it records)
        "mlflow.spanType",
        "mlflow.traceRequestId",
        "mlflow.llm.model",
        "mlflow.llm.provider",
        "mlflow.llm.cost",
        "mlflow.chat.tokenUsage",
        "mlflow.message.format",
        "mlflow.spanLogLevel",
        "mlflow.spanFunctionName",
        "mlflow.trace.user",
        "mlflow.trace.session",
        "model",
        "stream",
        # Google ADK
        "gcp.vertex.agent.invocation_id",
        "gcp.vertex.agent.session_id",
        "gcp.vertex.agent.event_id",
    }
)
METADATA_PREFIXES = (
    "observatory.",
    "gen_ai.usage.",
    "gen_ai.cost.",
    "gen_ai.token.",
    "llm.usage.",
    "llm.token_count.",
    "llm.cost.",
    "ai.usage.",
    "network.",
    "net.",
    "rpc.",
    "code.",
    "service.",
    "telemetry.",
    "deployment.",
    "cloud.",
    "k8s.",
    "host.",
    "os.",
    "container.",
    "faas.",
    "process.runtime.",
    "metadata.",
    "langfuse.trace.metadata.",
    "langfuse.observation.metadata.",
    "ai.telemetry.metadata.",
    "traceloop.association.properties.",
)
# LiteLLM's raw provider response on its `raw_gen_ai_request` span, llm.<provider>.<field>: these fields are
# metadata; messages, system, choices, content, tools and extra_body are the exchange itself.
_RAW_RESPONSE_FIELDS = frozenset(
    {"id", "model", "object", "created", "service_tier", "system_fingerprint", "usage", "stop_reason", "role", "type"}
)

# Invocation parameters are kept with these settings only (never messages, tools, stop sequences or schemas).
_PARAMETERS = frozenset(
    {
        "model", "temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "max_output_tokens", "n",
        "seed", "stream", "stream_options", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs",
        "parallel_tool_calls", "service_tier", "reasoning_effort", "reasoning", "thinking", "truncation", "store",
        "encoding_format", "dimensions", "timeout", "max_retries", "tool_choice",
    }
)
_SCALARS = (bool, int, float, type(None))

_METADATA, _UNKNOWN, _WITHHELD, _PARAMETERS_JSON, _URL, _URL_TARGET = range(6)
_MAX_CACHED_KEYS = 20_000
_MAX_CACHED_LAYOUTS = 2048
_MAX_LAYOUT_CHARS = 2048

_classes: dict[str, int] = {}
_layouts: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, int], ...], int]] = {}
_SANITIZED = {
    "llm.invocation_parameters": _PARAMETERS_JSON,
    "embedding.invocation_parameters": _PARAMETERS_JSON,
    "langfuse.observation.model.parameters": _PARAMETERS_JSON,
    "url.full": _URL,
    "http.url": _URL,
    "gen_ai.openai.api_base": _URL,
    "http.target": _URL_TARGET,
}


def classify(key: str) -> int:
    """The class of one attribute name (cached): withheld, metadata, a value to sanitize, or unknown."""
    if key in WITHHELD_KEYS or key.startswith(WITHHELD_PREFIXES):
        kind = _WITHHELD
    elif key in _SANITIZED:
        kind = _SANITIZED[key]
    elif key in METADATA_KEYS or key.startswith(METADATA_PREFIXES) or _is_raw_response_field(key):
        kind = _METADATA
    else:
        kind = _UNKNOWN
    if len(_classes) < _MAX_CACHED_KEYS:
        _classes[key] = kind
    return kind


def _is_raw_response_field(key: str) -> bool:
    parts = key.split(".")
    return len(parts) == 3 and parts[0] == "llm" and parts[2] in _RAW_RESPONSE_FIELDS


def _layout(keys: tuple[str, ...]):
    """(metadata keys, unknown keys, (key, sanitizer) pairs, number of withheld keys) among `keys`."""
    metadata: list[str] = []
    unknown: list[str] = []
    sanitized: list[tuple[str, int]] = []
    withheld = 0
    for key in keys:
        kind = _classes.get(key)
        if kind is None:
            kind = classify(key)
        if kind == _METADATA:
            metadata.append(key)
        elif kind == _UNKNOWN:
            unknown.append(key)
        elif kind == _WITHHELD:
            withheld += 1
        else:
            sanitized.append((key, kind))
    layout = (tuple(metadata), tuple(unknown), tuple(sanitized), withheld)
    if sum(map(len, keys)) <= _MAX_LAYOUT_CHARS:
        if len(_layouts) >= _MAX_CACHED_LAYOUTS:
            _layouts.clear()
        _layouts[keys] = layout
    return layout


def without_content(attributes: dict[str, AttrValue], declared: frozenset[str] = frozenset()) -> dict[str, AttrValue]:
    """The attributes a call or trace span keeps while content capture is off.

    `declared`: keys an attribution rule of the organization looks at; their values are kept (known content
    keys excepted). With anything withheld, the kept attributes say how many values under
    `observatory.dropped_attributes`.
    """
    keys = tuple(attributes)
    layout = _layouts.get(keys)
    if layout is None:
        layout = _layout(keys)
    metadata, unknown, sanitized, withheld = layout
    kept = {key: attributes[key] for key in metadata}
    for key in unknown:
        value = attributes[key]
        if type(value) in _SCALARS or key in declared:
            kept[key] = value
        else:
            withheld += 1
    for key, kind in sanitized:
        value = _sanitize(kind, attributes[key])
        if value is None:
            withheld += 1
        else:
            kept[key] = value
    if withheld:
        previous = kept.get(DROPPED_KEY)
        kept[DROPPED_KEY] = withheld + (previous if type(previous) is int else 0)
    return kept


def _sanitize(kind: int, value: AttrValue) -> str | None:
    if type(value) is not str:
        return None
    if kind == _PARAMETERS_JSON:
        return settings_only(value)
    if kind == _URL:
        return url_without_query(value)
    return value.partition("?")[0].partition("#")[0] or None  # http.target: its path, without the query


@lru_cache(maxsize=4096)  # spans of one application repeat the same parameters
def settings_only(value: str) -> str | None:
    """A JSON object of request parameters reduced to its sampling settings (a JSON-quoted object too, as
    Langfuse writes it); None when it is not such an object.

    >>> settings_only('{"model": "gpt-4o", "temperature": 0.2, "tools": [{"name": "get_weather"}], "stop": ["Q:"]}')
    '{"model": "gpt-4o", "temperature": 0.2}'
    """
    parsed = parse_json(value)
    if type(parsed) is str:
        parsed = parse_json(parsed)
    if type(parsed) is not dict:
        return None
    kept = {key: item for key, item in parsed.items() if key in _PARAMETERS and _is_setting(item)}
    return json.dumps(kept)


def _is_setting(value: AttrValue) -> bool:
    """A number, flag or short enum-like word, or a flat object of them (stream_options, reasoning, thinking)."""
    if type(value) is dict:
        return all(_is_flat_setting(item) for item in value.values())
    return _is_flat_setting(value)


def _is_flat_setting(value: AttrValue) -> bool:
    if type(value) is str:
        return len(value) <= 64 and " " not in value
    return type(value) in _SCALARS


@lru_cache(maxsize=4096)
def url_without_query(value: str) -> str | None:
    """A URL without its query, fragment and credentials (an API key may ride in the query).

    >>> url_without_query("https://user:secret@generativelanguage.googleapis.com/v1/models:generate?key=AIza")
    'https://generativelanguage.googleapis.com/v1/models:generate'
    """
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) or None
