"""Spans made through an OpenTelemetry SDK TracerProvider: the app's (passed to init() or set
as the global one), or one init() makes global when asked to. Imported only in those cases, when
opentelemetry-sdk is loaded anyway."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from .otlp import encode_readable_span
from .pipeline import SCOPE_NAME, Pipeline
from .version import __version__


def app_provider(explicit: Any, set_global: bool, resource_attributes: dict[str, Any]) -> TracerProvider | None:
    """The TracerProvider our spans go through: `explicit`, else the app's global SDK provider,
    else a new one made global when `set_global` asks for it, else None (we encode spans ourselves)."""
    if explicit is not None:
        return explicit  # type: ignore[no-any-return]
    global_provider = trace.get_tracer_provider()
    if isinstance(global_provider, TracerProvider):
        return global_provider
    if not set_global:
        return None
    from opentelemetry.sdk.resources import Resource

    provider = TracerProvider(resource=Resource.create(resource_attributes))
    trace.set_tracer_provider(provider)
    return provider


class ProviderSpans(SpanProcessor):
    """Added to the app's TracerProvider: makes our spans through it (so its sampler and its own
    exporters see them) and hands back to the pipeline only our own (scope `observatory_sdk`):
    the app's other spans are the app's to export."""

    def __init__(self, provider: TracerProvider, pipeline: Pipeline) -> None:
        self._tracer = provider.get_tracer(SCOPE_NAME, __version__)
        self._pipeline = pipeline

    def emit(self, name: str, context: Any, attributes: dict[str, Any], start_ns: int, end_ns: int, error: str | None) -> None:
        """Make one finished CLIENT span through the provider."""
        span = self._tracer.start_span(name, context=context, kind=SpanKind.CLIENT, attributes=attributes, start_time=start_ns)
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end_ns)  # on_end below queues it, if the provider's sampler kept it

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if self._pipeline.stopped or scope is None or scope.name != SCOPE_NAME:
            return
        self._pipeline.queue_span(encode_readable_span(span))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._pipeline.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        self._pipeline.shutdown()
