"""OTLP/JSON field readers: the spec's spellings (hex ids, int64 as strings, enum names or integers, lowerCamelCase
or snake_case keys) read into the same values the protobuf decoder produces, with a `Reject` reason for anything else."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ingest.otlp_decode import limits
from ingest.otlp_decode.limits import OtlpDecodeError, Reject
from ingest.records import AttrValue

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# Errors that reject one JSON span / record / point; OtlpDecodeError (not a ValueError) still propagates.
ROW_ERRORS = (Reject, TypeError, ValueError, AttributeError, KeyError, OverflowError)
_STRING, _INT, _DOUBLE, _BOOL, _ARRAY, _KVLIST, _BYTES = range(7)
_JSON_KINDS = {
    "stringValue": _STRING,
    "string_value": _STRING,
    "intValue": _INT,
    "int_value": _INT,
    "doubleValue": _DOUBLE,
    "double_value": _DOUBLE,
    "boolValue": _BOOL,
    "bool_value": _BOOL,
    "arrayValue": _ARRAY,
    "array_value": _ARRAY,
    "kvlistValue": _KVLIST,
    "kvlist_value": _KVLIST,
    "bytesValue": _BYTES,
    "bytes_value": _BYTES,
}
_SPECIAL_FLOATS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
TEMPORALITIES = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
}


def jget(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def jlist(obj: dict[str, Any], camel: str, snake: str, where: str) -> list[Any]:
    items = jget(obj, camel, snake)
    if items is None:
        return []
    if type(items) is not list:
        raise OtlpDecodeError(f"{where}.{camel} must be an array")
    return items


def jobject(obj: Any, where: str) -> dict[str, Any]:
    if type(obj) is not dict:
        raise OtlpDecodeError(f"{where} must be an object")
    return obj


def jint(value: Any, what: str) -> int:
    kind = type(value)
    if kind is int:
        return value
    if kind is str:
        digits = value[1:] if value[:1] == "-" else value
        if digits.isascii() and digits.isdigit() and len(digits) <= 30:
            return int(value)
    elif kind is float and value.is_integer():
        return int(value)
    raise Reject(f"{what} must be an integer, got {str(value)[:40]!r}")


def jfloat(value: Any, what: str) -> float:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    if kind is str:
        special = _SPECIAL_FLOATS.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise Reject(f"{what} must be a number, got {str(value)[:40]!r}")


def jenum(value: Any, names: dict[str, int], what: str) -> int:
    if value is None:
        return 0
    if type(value) is str and value in names:
        return names[value]
    return jint(value, what)


def jtime(obj: dict[str, Any], camel: str, snake: str) -> int:
    value = jget(obj, camel, snake)
    return 0 if value is None else jint(value, camel)


def jstr(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if type(value) is not str:
        raise Reject(f"{what} must be a string")
    return value


def jid(value: Any, size: int, what: str) -> bytes:
    """Decode an OTLP/JSON id: hex per the spec; base64 (protobuf's JSON mapping) is accepted too."""
    if value is None or value == "":
        return b""
    if type(value) is not str:
        raise Reject(f"{what} must be a hex string")
    if len(value) == 2 * size:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise Reject(f"{what} is not hexadecimal") from None
        if len(raw) == size:
            return raw
        raise Reject(f"{what} is not hexadecimal")
    if len(value) == 4 * ((size + 2) // 3):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == size:
            return raw
    raise Reject(f"{what} must be {size} bytes ({2 * size} hex characters), got {len(value)} characters")


def jvalue(value: Any, depth: int) -> AttrValue:
    if type(value) is not dict:
        raise Reject("attribute value must be an AnyValue object")
    for key, item in value.items():
        kind = _JSON_KINDS.get(key)
        if kind is None:
            continue
        if kind == _STRING:
            if type(item) is str:
                return item
            raise Reject("stringValue must be a string")
        if kind == _INT:
            number = jint(item, "intValue")
            if not _INT64_MIN <= number <= _INT64_MAX:
                raise Reject("intValue is outside the int64 range")
            return number
        if kind == _DOUBLE:
            return jfloat(item, "doubleValue")
        if kind == _BOOL:
            if type(item) is bool:
                return item
            raise Reject("boolValue must be true or false")
        if kind == _BYTES:
            if type(item) is not str:
                raise Reject("bytesValue must be a base64 string")
            try:
                return base64.b64decode(item, validate=True)
            except (binascii.Error, ValueError):
                raise Reject("bytesValue is not valid base64") from None
        if depth > limits.MAX_DEPTH:
            raise OtlpDecodeError(f"attribute value nested deeper than {limits.MAX_DEPTH} levels")
        if type(item) is not dict:
            raise Reject(f"{key} must be an object")
        values = item.get("values")
        if values is None:
            values = []
        elif type(values) is not list:
            raise Reject(f"{key}.values must be an array")
        if kind == _ARRAY:
            return [jvalue(element, depth + 1) for element in values]
        return jattrs(values, depth + 1)
    return None


def jattrs(pairs: Any, depth: int = 1) -> dict[str, AttrValue]:
    if pairs is None:
        return {}
    if type(pairs) is not list:
        raise Reject("attributes must be an array")
    if len(pairs) > limits.MAX_ATTRIBUTES:
        raise Reject(f"more than {limits.MAX_ATTRIBUTES} attributes")
    out: dict[str, AttrValue] = {}
    for kv in pairs:
        if type(kv) is not dict:
            raise Reject("each attribute must be a {key, value} object")
        key = kv.get("key")
        if type(key) is not str:
            raise Reject("attribute key must be a string")
        value = kv.get("value")
        if type(value) is dict:
            text = value.get("stringValue")
            if type(text) is str:
                out[key] = text
                continue
            number = value.get("intValue")
            if type(number) is str and number.isascii():
                try:
                    number = int(number)
                except ValueError:
                    raise Reject("intValue must be an integer") from None
            if type(number) is int:
                if not _INT64_MIN <= number <= _INT64_MAX:
                    raise Reject("intValue is outside the int64 range")
                out[key] = number
                continue
        out[key] = None if value is None else jvalue(value, depth)
    return out


def jresource(container: dict[str, Any]) -> dict[str, AttrValue]:
    resource = container.get("resource")
    if resource is None:
        return {}
    jobject(resource, "resource")
    try:
        return jattrs(resource.get("attributes"))
    except ROW_ERRORS as exc:
        reason = exc.reason if isinstance(exc, Reject) else "malformed attributes"
        raise OtlpDecodeError(f"resource: {reason}") from None


def jscope(container: dict[str, Any]) -> tuple[str, str]:
    scope = container.get("scope")
    if scope is None:
        scope = container.get("instrumentationLibrary")
    if scope is None:
        return "", ""
    jobject(scope, "scope")
    name = scope.get("name") or ""
    version = scope.get("version") or ""
    if type(name) is not str or type(version) is not str:
        raise OtlpDecodeError("scope name and version must be strings")
    return name, version
