"""GenAI content carried by OTLP log records instead of span attributes (pitfall 10): the 2.3b0 message /
choice events with content in the log body, and gen_ai.client.inference.operation.details."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.mappers.normalize.content import CONTENT_KEYS, split_content
from ingest.mappers.normalize.finish_reasons import finish_reason
from ingest.mappers.normalize.values import content_text, label
from ingest.otlp_decode import LogRecordView
from ingest.records import AttrValue

_MESSAGE_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
OPERATION_DETAILS = "gen_ai.client.inference.operation.details"


@dataclass(slots=True)
class ContentFragment:
    """Prompt or completion content for the call span (trace_id, span_id); the caller attaches it."""

    trace_id: str | None
    span_id: str | None
    event_name: str
    role: str  # system | user | assistant | tool, "" for a whole exchange
    kind: str  # input | output | exchange (input and output together)
    input_content: str | None = None
    output_content: str | None = None
    finish_reason: str = ""  # normalized; 2.3b0 streams report it only in gen_ai.choice
    response_id: str = ""  # gen_ai.response.id: joins records exported without trace context (openlit streams)

    @property
    def content(self) -> str:
        """The fragment's text: the output for kind "output", else the input (an exchange has both fields)."""
        if self.kind == "output":
            return self.output_content or ""
        return self.input_content or ""


def _message_text(body: AttrValue) -> str | None:
    if body is None or body == "" or body == {}:
        return None
    if type(body) is dict:
        content = body.get("content")
        if type(content) is str and len(body) == 1:
            return content
        message = body.get("message")
        if type(message) is dict and type(message.get("content")) is str and len(message) <= 2:
            return message["content"]
    return content_text(body)


def map_log_record(record: LogRecordView) -> ContentFragment | None:
    """The content a log record carries for a call span, or None for unrelated records."""
    name = record.event_name
    role = _MESSAGE_ROLES.get(name)
    if role is not None:
        text = _message_text(record.body)
        if text is None:
            return None
        return ContentFragment(record.trace_id, record.span_id, name, role, "input", input_content=text)
    if name == "gen_ai.choice":
        body = record.body
        reason = finish_reason(body.get("finish_reason")) if type(body) is dict else ""
        return ContentFragment(
            record.trace_id,
            record.span_id,
            name,
            "assistant",
            "output",
            output_content=_message_text(body),
            finish_reason=reason,
        )
    attrs = record.attributes
    if name == OPERATION_DETAILS or "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs:
        content = {key: value for key, value in attrs.items() if key in CONTENT_KEYS and value is not None}
        prompt, completion = split_content(content)
        if prompt is None and completion is None:
            return None
        return ContentFragment(
            record.trace_id,
            record.span_id,
            name,
            "",
            "exchange",
            input_content=prompt,
            output_content=completion,
            finish_reason=finish_reason(attrs.get("gen_ai.response.finish_reasons")),
            response_id=label(attrs.get("gen_ai.response.id")),
        )
    return None


def merge_fragments(fragments: list[ContentFragment]) -> dict[tuple[str, str], ContentFragment]:
    """One fragment per call span: message events are gathered, in order, into JSON lists of
    {"role", "content"}; an operation.details exchange wins over individual messages."""
    merged: dict[tuple[str, str], ContentFragment] = {}
    inputs: dict[tuple[str, str], list[dict[str, str]]] = {}
    outputs: dict[tuple[str, str], list[dict[str, str]]] = {}
    for fragment in fragments:
        if fragment.trace_id is None or fragment.span_id is None:
            continue
        key = (fragment.trace_id, fragment.span_id)
        current = merged.get(key)
        if current is None:
            current = merged[key] = ContentFragment(key[0], key[1], fragment.event_name, "", "exchange")
        current.finish_reason = current.finish_reason or fragment.finish_reason
        if fragment.kind == "exchange":
            current.input_content = fragment.input_content or current.input_content
            current.output_content = fragment.output_content or current.output_content
            current.event_name = fragment.event_name
        elif fragment.kind == "input" and fragment.input_content is not None:
            inputs.setdefault(key, []).append({"role": fragment.role, "content": fragment.input_content})
        elif fragment.kind == "output" and fragment.output_content is not None:
            outputs.setdefault(key, []).append({"role": fragment.role, "content": fragment.output_content})
    for key, messages in inputs.items():
        if merged[key].input_content is None:
            merged[key].input_content = content_text(messages)
    for key, messages in outputs.items():
        if merged[key].output_content is None:
            merged[key].output_content = content_text(messages)
    return merged
