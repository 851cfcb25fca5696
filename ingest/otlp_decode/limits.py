"""What an OTLP body may hold, and the two ways of refusing it: `OtlpDecodeError` fails the whole body
(the HTTP layer answers 400), `Reject` drops one span, log record or point (partial success).

Shared by the protobuf and OTLP/JSON decoders. The decoders read the limits as `limits.MAX_...` so that
a test can lower one.
"""

from __future__ import annotations

MAX_ATTRIBUTES = 512  # per span, event, resource, log record, data point and kvlist value
MAX_DEPTH = 16  # nested arrayValue / kvlistValue levels inside one attribute value
MAX_EVENTS = 1000  # per span
MAX_SPANS = 50_000  # per request
MAX_LOG_RECORDS = 50_000  # per request
MAX_METRIC_POINTS = 50_000  # per request
MAX_ERRORS_REPORTED = 100  # rejection reasons kept per request; `rejected` still counts them all

MIN_TIME_NS = 946_684_800 * 10**9  # 2000-01-01T00:00:00Z
MAX_FUTURE_NS = 86_400 * 10**9  # a start time more than a day ahead of our clock is rejected

ZERO_TRACE_ID = bytes(16)
ZERO_SPAN_ID = bytes(8)


class OtlpDecodeError(Exception):
    """The body is not a decodable OTLP export; `message` says why (the HTTP layer answers 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Reject(Exception):
    """One span, log record or point is invalid; the rest of the request is kept."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def note_error(errors: list[str], message: str) -> None:
    """Keep a rejection reason for the partial-success answer, up to MAX_ERRORS_REPORTED of them."""
    if len(errors) < MAX_ERRORS_REPORTED:
        errors.append(message)


def span_problem(tid: bytes, sid: bytes, psid: bytes, start: int, end: int, latest: int) -> str | None:
    """Why a span's ids or times make it unusable, or None; `latest` is the latest start time accepted."""
    if len(tid) != 16:
        return f"trace id must be 16 bytes, got {len(tid)}"
    if tid == ZERO_TRACE_ID:
        return "trace id is all zeros"
    if len(sid) != 8:
        return f"span id must be 8 bytes, got {len(sid)}"
    if sid == ZERO_SPAN_ID:
        return "span id is all zeros"
    if psid and len(psid) != 8:
        return f"parent span id must be 8 bytes, got {len(psid)}"
    if start < MIN_TIME_NS:
        return "start time is missing or before 2000-01-01"
    if start > latest:
        return "start time is more than a day in the future"
    if end < start:
        return "end time is before start time"
    return None


def span_label(sid: bytes) -> str:
    return f"span {sid.hex()}" if len(sid) == 8 else "span"


def log_ids(tid: bytes, sid: bytes) -> tuple[str | None, str | None]:
    """A log record's (trace id, span id) as hex; ids are optional on log records, so empty or zero is None."""
    if tid and len(tid) != 16:
        raise Reject(f"trace id must be 16 bytes, got {len(tid)}")
    if sid and len(sid) != 8:
        raise Reject(f"span id must be 8 bytes, got {len(sid)}")
    trace_id = tid.hex() if tid and tid != ZERO_TRACE_ID else None
    span_id = sid.hex() if sid and sid != ZERO_SPAN_ID else None
    return trace_id, span_id
