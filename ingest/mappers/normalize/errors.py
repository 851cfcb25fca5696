"""Error normalization: a call's status, its error_type in a fixed low-cardinality vocabulary, and its
HTTP status, from error.type, exception events, span status and error messages."""

from __future__ import annotations

import re

from ingest.mappers.normalize.values import http_code, label
from ingest.records import AttrValue, CallFields, SpanView

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
