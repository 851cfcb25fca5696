"""Reading attribute values: short labels, booleans, integers, seconds, money, and JSON held in strings."""

from __future__ import annotations

import base64
import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from ingest.mappers.normalize.reprs import repr_object
from ingest.records import AttrValue

MAX_LABEL = 512  # longest model / provider / user / team string kept


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


def text_object(value: AttrValue) -> dict[str, Any]:
    """A dict held in an attribute as JSON text, as a Python repr (`{'prompt_tokens': 1200, 'x': None}`,
    `Usage(prompt_tokens=1200)`), or structured; {} for anything else. For provider objects such as usage,
    which some instrumentations write with `str()` instead of JSON."""
    parsed = parse_json(value)
    if type(parsed) is dict:
        return parsed
    if parsed is None and type(value) is str and value:
        return repr_object(value)
    return {}


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
