"""The background half of the SDK: a bounded queue of calls filled by the hot path, turned into
encoded spans in chunks, and one worker thread that exports those in batches, with retry and
counters.

Where the spans are built matters more than what building costs. A worker thread that needs
Python's GIL while the app's thread runs Python waits for it, and on CPython 3.11 every short
release of the GIL by the app (a file check, a small read) wakes it again for nothing, at several
microseconds of CPU each: a worker building spans while the app was busy cost more CPU than the
building itself. So the calling thread builds the queued calls itself every BUILD_CHUNK calls
(about 4 ms of work once per 256 calls, with the code warm, instead of a cold ~35 µs on every
call), and the worker wakes only to export: when a batch is ready, at the export interval while
spans are queued (building what the app left below a chunk), and never while nothing is queued.

Spans are built either through an OpenTelemetry SDK TracerProvider (the app's, so its processors
and exporters see them too: see app_tracer_provider), or, when the app has none, directly as OTLP
bytes: that skips the SDK's per-span machinery, which costs more than everything else the SDK
does per call, and leaves opentelemetry-sdk and protobuf unloaded."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from .calls import Call, span_attributes, span_name
from .exporter import OtlpHttpSender
from .failures import log_once
from .otlp import SPAN_KIND_CLIENT, STATUS_ERROR, encode_request, encode_resource, encode_scope, encode_span
from .settings import Settings
from .version import __version__

if TYPE_CHECKING:
    from .app_tracer_provider import ProviderSpans

SCOPE_NAME = "observatory_sdk"
BATCH_SIZE = 512
BUILD_CHUNK = 256
EXPORT_INTERVAL = 1.0
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0

current: Pipeline | None = None
"""The pipeline the wrappers feed; None before init() and after shutdown()."""


class Pipeline:
    """Turns queued calls into spans on a worker thread and posts them to Observatory."""

    def __init__(self, settings: Settings, sender: OtlpHttpSender | None, resource: dict[str, Any]) -> None:
        self.settings = settings
        self.provider_spans: ProviderSpans | None = None
        """Set when spans go through an OpenTelemetry SDK TracerProvider."""
        self._resource = encode_resource(resource)
        self._scope = encode_scope(SCOPE_NAME, __version__)
        self._sender = sender
        self._limit = settings.max_queue_size
        self._calls: deque[Call] = deque(maxlen=self._limit)
        self._spans: deque[bytes] = deque(maxlen=self._limit)
        self._sleeping = True
        """The worker waits without a timeout: the next queued call must wake it (see _next_wake)."""
        self._dropped = 0
        self._exported = 0
        self._failed_exports = 0
        self._backoff_attempts = 0
        self._retry_at = 0.0
        self._server_retry_at = 0.0
        self._last_export = time.monotonic()
        self._flush_requests = 0
        self._flushes_done = 0
        self._flush_deadline = 0.0
        self._stopping = False
        self._stopped = False
        self._start_worker()

    def _start_worker(self) -> None:
        # Re-entrant: a stream dropped mid-way is recorded from __del__, which may run anywhere.
        self._lock = threading.RLock()
        self._flushed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="observatory-sdk-export", daemon=True)
        self._thread.start()

    # -- hot path ---------------------------------------------------------------------------

    def submit(self, call: Call) -> None:
        """Queue one call; when the queue is full the oldest queued call is dropped and counted.
        Every BUILD_CHUNK calls, the calling thread turns the queued calls into spans itself (see
        the module docstring); the worker is woken when a batch of spans is ready."""
        with self._lock:
            calls = self._calls
            if len(calls) >= self._limit:
                self._dropped += 1
            calls.append(call)
            size = len(calls)
        if size >= BUILD_CHUNK:
            self._build_spans()
            if len(self._spans) >= BATCH_SIZE:
                self._wake_worker()
        if self._sleeping:
            self._wake_worker()

    def _wake_worker(self) -> None:
        self._sleeping = False
        self._wake.set()

    def queue_span(self, encoded: bytes) -> None:
        """Queue one encoded span for export (the oldest is dropped and counted when full)."""
        if len(self._spans) >= self._limit:
            with self._lock:
                self._dropped += 1
        self._spans.append(encoded)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush what is queued (within `timeout`), then stop the worker. Safe to call twice."""
        with self._lock:
            if self._stopping:
                return
        self.flush(timeout)
        with self._lock:
            self._stopping = True
        self._wake.set()
        self._thread.join(timeout=1.0)
        self._stopped = True
        if self._sender is not None:
            self._sender.close()

    # -- public controls --------------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Build and export everything queued now. True when the queue emptied within `timeout`
        (delivered, or dropped because the server refused it: see stats())."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            if self._stopping or not self._thread.is_alive():
                return not self._calls and not self._spans
            self._flush_requests += 1
            ticket = self._flush_requests
            self._flush_deadline = max(self._flush_deadline, deadline)
            self._retry_at = 0.0
        self._wake.set()
        with self._lock:
            while self._flushes_done < ticket:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._flushed.wait(remaining)
        return not self._calls and not self._spans

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "queued": len(self._calls) + len(self._spans),
                "exported": self._exported,
                "dropped": self._dropped,
                "failed_exports": self._failed_exports,
            }

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's queue and connection, start a fresh worker."""
        self._calls.clear()
        self._spans.clear()
        if self._sender is not None:
            self._sender.forget_connection()
        self._flush_requests = self._flushes_done = 0
        if not self._stopping:
            self._start_worker()

    # -- worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        timeout = self._next_wake()
        while True:
            self._wake.wait(timeout)
            self._wake.clear()
            with self._lock:
                ticket = self._flush_requests
                flushing = ticket > self._flushes_done
                deadline = self._flush_deadline
                stopping = self._stopping
            try:
                self._build_spans()
                if self._sender is not None:
                    self._export(flushing, deadline)
            except Exception:  # the worker must survive anything
                log_once("worker", "observatory_sdk: export worker error", exc_info=True)
            if flushing:
                with self._lock:
                    self._flushes_done = ticket
                    self._flushed.notify_all()
            if stopping:
                return
            timeout = self._next_wake()

    def _next_wake(self) -> float | None:
        """Seconds until the worker has something to do (the next export or retry), or None while
        nothing is queued: it then sleeps until the next call wakes it (submit). It never wakes to
        poll: see the module docstring for what a wake costs while the app runs."""
        if not self._calls and not self._spans:
            self._sleeping = True
            if not self._calls and not self._spans:  # queued meanwhile, it may have seen _sleeping False
                return None
            self._sleeping = False
        due = max(self._last_export + EXPORT_INTERVAL, self._retry_at, self._server_retry_at)
        return max(0.0, due - time.monotonic())

    def _build_spans(self) -> None:
        """Turn every queued call into a queued span (on whichever thread calls this)."""
        with self._lock:
            calls = list(self._calls)
            self._calls.clear()
        for call in calls:
            try:
                self._emit(call)
            except Exception:  # one bad call must not stop the others
                log_once("build-span", "observatory_sdk: could not build a span", exc_info=True)

    def _emit(self, call: Call) -> None:
        attributes = span_attributes(call, self.settings)
        name = span_name(call)
        end_ns = call.start_ns + call.duration_ns
        error = call.error_type
        if self.provider_spans is not None:
            self.provider_spans.emit(name, call.context, attributes, call.start_ns, end_ns, error)
            return
        parent = None
        if call.context:  # the app's OpenTelemetry context, not empty: maybe a span to be a child of
            from .app_opentelemetry import parent_of

            parent = parent_of(call.context)
        self.queue_span(
            encode_span(
                parent[0] if parent else random.getrandbits(128) or 1,
                random.getrandbits(64) or 1,
                parent[1] if parent else None,
                parent is not None and parent[2],
                name,
                SPAN_KIND_CLIENT,
                call.start_ns,
                end_ns,
                attributes,
                STATUS_ERROR if error else 0,
                error,
            )
        )

    def _export(self, flushing: bool, deadline: float) -> None:
        """Send batches while there is something due; failed batches go back to the queue front."""
        spans = self._spans
        while spans:
            now = time.monotonic()
            due = len(spans) >= BATCH_SIZE or now - self._last_export >= EXPORT_INTERVAL
            if not (flushing or due):
                return
            wait_until = max(self._retry_at, self._server_retry_at)
            if now < wait_until:
                if not flushing or wait_until >= deadline or self._stopping:
                    return
                self._wake.wait(wait_until - now)
                self._wake.clear()
                continue
            batch = [spans.popleft() for _ in range(min(BATCH_SIZE, len(spans)))]
            result = self._sender.send(encode_request(self._resource, self._scope, batch))  # type: ignore[union-attr]
            self._last_export = time.monotonic()
            if result.delivered:
                self._backoff_attempts = 0
                self._retry_at = 0.0
                with self._lock:
                    self._exported += len(batch) - result.rejected_spans
                    self._dropped += result.rejected_spans
                continue
            with self._lock:
                self._failed_exports += 1
            if not result.retryable:
                with self._lock:
                    self._dropped += len(batch)
                continue
            self._requeue(batch)
            self._retry_at = self._last_export + self._next_backoff()
            if result.retry_after is not None:
                self._server_retry_at = self._last_export + result.retry_after

    def _requeue(self, batch: list[bytes]) -> None:
        """Put a failed batch back in front; if newer spans filled the queue, its oldest go."""
        room = self._limit - len(self._spans)
        keep = batch[len(batch) - room :] if room < len(batch) else batch
        if len(keep) < len(batch):
            with self._lock:
                self._dropped += len(batch) - len(keep)
        self._spans.extendleft(reversed(keep))

    def _next_backoff(self) -> float:
        """Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... up to 30 s, each scaled by 0.5-1.0."""
        delay = min(MAX_BACKOFF, INITIAL_BACKOFF * (2 ** min(self._backoff_attempts, 16)))
        self._backoff_attempts += 1
        return delay * random.uniform(0.5, 1.0)


def _reset_in_child() -> None:
    if current is not None:
        current.reset_after_fork()


os.register_at_fork(after_in_child=_reset_in_child)
