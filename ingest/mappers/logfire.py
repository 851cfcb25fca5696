"""Logfire (logfire.openai / logfire.anthropic): gen_ai.* with cache and reasoning counts only inside the JSON
string gen_ai.usage.raw, finish reasons as a JSON string, and streams split into a request span without
usage plus a `streaming response from ...` log-span carrying the usage."""

from __future__ import annotations

from ingest.mappers.genai_semconv import FILTER, build, complete, is_model_call
from ingest.mappers.normalize.timing import timestamp
from ingest.mappers.normalize.tokens import semconv_usage, usage_from_object
from ingest.mappers.normalize.values import as_bool, as_seconds, json_object, label
from ingest.records import CallFields, SpanView

SOURCE = "logfire"
STREAM_RESPONSE_PREFIX = "streaming response from"

_FILTER = FILTER.extend({"gen_ai.usage.raw"})


def claims(span: SpanView) -> bool:
    attrs = span.attributes
    return span.scope_name.startswith("logfire") or "logfire.msg_template" in attrs or "logfire.span_type" in attrs


def _template(span: SpanView) -> str:
    return label(span.attributes.get("logfire.msg_template")) or span.name


def is_stream_response(span: SpanView) -> bool:
    """The log-span logfire emits when a stream is consumed; it carries the usage of the request span."""
    return _template(span).startswith(STREAM_RESPONSE_PREFIX)


def map_logfire(span: SpanView) -> CallFields | None:
    attrs = span.attributes
    stream_response = is_stream_response(span)
    if not stream_response and not is_model_call(attrs):
        return None
    raw = json_object(attrs.get("gen_ai.usage.raw"))
    usage = usage_from_object(raw, "gen_ai.usage.raw") if raw else semconv_usage(attrs)
    if raw:
        usage.fill_from(semconv_usage(attrs))
    call = build(span, SOURCE, usage=usage, attribute_filter=_FILTER)
    request = json_object(attrs.get("request_data"))
    if not call.request_model:
        call.request_model = label(request.get("model"))
    response_model = label(json_object(attrs.get("response_data")).get("model"))
    if response_model:
        call.response_model = response_model
    template = _template(span)
    if "Responses API" in template:
        call.operation = "responses"
    elif not call.operation and "Embedding" in template:
        call.operation = "embeddings"
    call.streaming = call.streaming or stream_response or as_bool(request.get("stream")) is True
    if stream_response:
        # A log-span: start == end == when the stream finished; `duration` (s) is how long it ran.
        seconds = as_seconds(attrs.get("duration"))
        if seconds is not None:
            start_ns = max(span.end_ns - int(seconds * 1e9), 0)
            call.start_time = timestamp(start_ns)
            call.duration_ms = seconds * 1000.0
    return complete(call, span)
