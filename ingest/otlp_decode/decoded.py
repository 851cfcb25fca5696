"""What the decoders produce: flat views of log records and metric points (spans are `ingest.records.SpanView`),
with the count and reasons of what was rejected."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.records import AttrValue, SpanView


@dataclass(slots=True)
class DecodedTraces:
    spans: list[SpanView]
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class LogRecordView:
    """One OTLP log record (often a GenAI event), flattened like `SpanView`."""

    trace_id: str | None
    span_id: str | None
    time_ns: int  # time_unix_nano, or observed_time_unix_nano when the former is 0
    event_name: str  # the `eventName` field, else the `event.name` attribute
    severity_number: int
    severity_text: str
    body: AttrValue
    attributes: dict[str, AttrValue]
    resource: dict[str, AttrValue]
    scope_name: str
    scope_version: str


@dataclass(slots=True)
class DecodedLogs:
    records: list[LogRecordView]
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class MetricPointView:
    """One metric data point; histograms carry their sum in `value` and their count in `count`."""

    name: str
    unit: str
    kind: str  # gauge | sum | histogram (exponential histograms too)
    is_monotonic: bool
    temporality: int  # 0 unspecified, 1 delta, 2 cumulative
    attributes: dict[str, AttrValue]  # point attributes merged over resource attributes (point wins)
    resource: dict[str, AttrValue]
    scope_name: str
    start_ns: int
    time_ns: int
    value: float
    count: int | None = None


@dataclass(slots=True)
class DecodedMetrics:
    points: list[MetricPointView]
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


def event_name_attribute(attributes: dict[str, AttrValue]) -> str:
    """The `event.name` attribute of a log record without an eventName field ('' when absent or not text)."""
    value = attributes.get("event.name")
    return value if type(value) is str else ""
