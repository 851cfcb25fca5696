"""Finish reasons: stop / length / tool_call / content_filter / error from every provider's spelling."""

from __future__ import annotations

from functools import lru_cache

from ingest.mappers.normalize.values import parse_json
from ingest.records import AttrValue

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
