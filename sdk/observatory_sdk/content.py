"""Prompt and completion text in the GenAI semantic-convention message shape (role + parts), as
size-capped JSON. Only used when capture_content is on."""

from __future__ import annotations

import json
from typing import Any

TRUNCATED = "…[truncated]"
_TEXT_KEYS = ("content", "arguments", "response")
_MIN_PART_CHARS = 32


def text_part(text: Any) -> dict[str, Any]:
    return {"type": "text", "content": text if isinstance(text, str) else str(text)}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else _dump(value)


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": _as_text(arguments)}


def tool_result_part(call_id: Any, response: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": call_id, "response": _as_text(response)}


def other_part(kind: Any) -> dict[str, Any]:
    """Images, audio, files and unknown blocks: only their type is kept, never the data."""
    return {"type": str(kind or "unknown")}


def message(role: Any, parts: list[dict[str, Any]], finish_reason: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"role": str(role or "user"), "parts": parts}
    if finish_reason:
        result["finish_reason"] = finish_reason
    return result


def _dump(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, ensure_ascii=False, default=str)


def _shorten(messages: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    shortened = []
    for item in messages:
        parts = []
        for part in item.get("parts", []):
            part = dict(part)
            for key in _TEXT_KEYS:
                value = part.get(key)
                if isinstance(value, str) and len(value) > limit:
                    part[key] = value[:limit] + TRUNCATED
            parts.append(part)
        shortened.append({**item, "parts": parts})
    return shortened


def messages_json(messages: list[dict[str, Any]], max_chars: int) -> str:
    """JSON of `messages`, at most about `max_chars` long: long texts are cut first (marked with
    TRUNCATED), then the oldest messages are left out. Texts longer than `max_chars` are cut before
    the first dump, so a 100k-token prompt is never written out whole."""
    text = _dump(_shorten(messages, max_chars))
    limit = max_chars
    while len(text) > max_chars and limit > _MIN_PART_CHARS:
        limit //= 2
        text = _dump(_shorten(messages, limit))
    kept = _shorten(messages, limit) if len(text) > max_chars else messages
    while len(text) > max_chars and len(kept) > 1:
        kept = kept[1:]
        text = _dump(kept)
    return text
