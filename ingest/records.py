"""Plain data shapes that flow through ingest: decoded OTLP spans in, normalized calls out.

Decoders (protobuf and OTLP/JSON) produce `SpanView`s; mappers turn a `SpanView` into a
`CallFields` (one model call) or nothing (a span that is only trace context). What other apps hand
ingest through `ingest.hooks` (a call's cost, the attribution rules) is plain data too. No Django here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

AttrValue = Any  # str | bool | int | float | bytes | list[AttrValue] | dict[str, AttrValue] | None


@dataclass(slots=True)
class EventView:
    name: str
    time_ns: int
    attributes: dict[str, AttrValue]


@dataclass(slots=True)
class SpanView:
    """One OTLP span, flattened: ids as lowercase hex, attributes as plain Python values."""

    trace_id: str  # 32 lowercase hex chars
    span_id: str  # 16 lowercase hex chars
    parent_span_id: str | None  # None for a root span
    name: str
    kind: int
    start_ns: int  # unix epoch nanoseconds
    end_ns: int
    status_code: int  # 0 unset, 1 ok, 2 error (OTLP StatusCode)
    status_message: str
    attributes: dict[str, AttrValue]
    events: list[EventView]
    resource: dict[str, AttrValue]  # resource attributes, shared by the spans of one ResourceSpans
    scope_name: str
    scope_version: str


@dataclass(slots=True)
class CallFields:
    """One model call, normalized to the call record (see DESIGN.md, "The call record").

    Token semantics are fixed here whatever the source reported:
    input_tokens includes cached reads and cache writes; output_tokens includes reasoning.
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_time: datetime  # UTC-aware
    duration_ms: float
    ttft_ms: float | None = None
    provider: str = ""  # normalized: openai, anthropic, azure_openai, aws_bedrock, gcp_vertex_ai, ...
    operation: str = ""  # chat, embeddings, responses, text_completion, generate_content, ...
    request_model: str = ""
    response_model: str = ""
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    usage_reported: bool = False  # False when the span carried no usage at all (e.g. a stream without usage)
    streaming: bool = False
    status: str = "ok"  # ok | error
    error_type: str = ""  # normalized low-cardinality: rate_limit, server_error, timeout, ...
    http_status: int | None = None
    finish_reason: str = ""  # normalized: stop, length, tool_call, content_filter, error, ""
    # The provider's id of the response (chatcmpl-…, msg_…, resp_…): two spans with the same one report one call,
    # in one export (ingest.mappers.duplicates) or across exports (ingest.dedup, from the stored column).
    response_id: str = ""
    team: str = ""
    product: str = ""
    feature: str = ""
    environment: str = ""
    end_user: str = ""
    session: str = ""
    service_name: str = ""
    # which instrumentation: observatory-sdk, otel-genai, openllmetry, openlit, openinference, langfuse, logfire, anthropic-sdk,
    # vercel-ai, pydantic-ai, litellm, mlflow
    source: str = ""
    source_version: str = ""
    app_cache_hit: bool = False
    cost_avoided_usd: Decimal | None = None
    prompt_prefix_hash: str = ""
    request_hash: str = ""
    provided_cost_usd: Decimal | None = None  # a cost the instrumentation computed itself (cross-check only)
    input_content: str | None = None  # prompt text/JSON, only kept when the organization captures content
    output_content: str | None = None
    attributes: dict[str, AttrValue] = field(default_factory=dict)  # remaining span attributes, content removed


@dataclass(slots=True, unsafe_hash=True)
class IngestCost:
    """A call's cost as it is stored; cost_status is one of ingest.models.CostStatus. A value: never changed once made
    (not `frozen`: a frozen dataclass's __init__ costs ~0.6 µs more, once per ingested call)."""

    cost_usd: Decimal | None
    cost_status: str
    price_id: int | None
    cost_avoided_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One attribution rule, as users edit them (stored by billing): a call whose `field` matches the shell
    pattern `pattern` gets the rule's team, product and feature, for whatever it did not name itself."""

    organization_id: int
    field: str  # one of ingest.attribution.RuleField
    pattern: str
    attribute_key: str = ""  # for field "attribute"
    team_id: int | None = None
    product_id: int | None = None
    feature: str = ""
