"""The app's own OpenTelemetry API, used only when the app has loaded it: the span a call is made
under becomes the parent of the call's span. The SDK checks `sys.modules` before importing this
module, so an app without OpenTelemetry never loads it (nor opentelemetry-sdk, nor protobuf)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace


def parent_of(context: Any) -> tuple[int, int, bool] | None:
    """(trace id, span id, is remote) of the span current in `context`, or None."""
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return None
    return span_context.trace_id, span_context.span_id, span_context.is_remote
