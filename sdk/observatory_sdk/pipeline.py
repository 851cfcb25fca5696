"""The background half of the SDK: a bounded queue of calls filled by the hot path, turned into
encoded spans in chunks, and one worker thread that posts them in batches, with retry and
counters.

Which thread does what matters more than what it costs. A worker thread that needs Python's GIL
while the app's thread runs Python waits for it, and on CPython 3.11 every short release of the GIL
by the app (a file check, a small read, a random number) wakes that thread again for nothing, at
several microseconds of CPU each; the 5 ms switch interval never comes to its rescue, since each
such wake starts it again. Measured in an app that runs Python between calls: thousands of wakes
per export, more CPU than everything else the SDK does. So the worker takes the GIL only when the
app is not running Python:

- the calling thread builds the queued calls into spans itself every BUILD_CHUNK calls (about 4 ms
  of work once per 256 calls, with the code warm, instead of a cold ~35 µs on every call);
- when a batch is due (BATCH_SIZE spans, or EXPORT_INTERVAL since the last export), the calling
  thread also encodes (and if asked, compresses) it (one batch, never a backlog), then hands it over: it wakes the worker and
  blocks (at most HANDOVER_WAIT, usually well under a millisecond) while the worker reads the
  last answer and posts the request, socket calls that would each let the app take the GIL;
- the worker goes back to waiting without reading the answer to what it posted: it reads it at its
  next wake, when it has long arrived, instead of waiting for it and then for the GIL;
- its own timer only serves retries and what is left once the app stops calling; it never wakes to
  poll, and sleeps without a timeout while nothing is queued. The first call after a quiet spell wakes it (the app
  waiting meanwhile, as for a hand-over) to set that timer; that call's export waits for the interval like the
  others. A flush (the app waits) does everything on the worker at once.

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

from .calls import Call, record_attributes, span_attributes, span_name
from .exporter import OtlpHttpSender, Prepared, SendResult
from .failures import log_once
from .otlp import SPAN_KIND_CLIENT, STATUS_ERROR, encode_request, encode_resource, encode_scope, encode_span
from .settings import Settings
from .version import __version__

if TYPE_CHECKING:
    from .app_tracer_provider import ProviderSpans

SCOPE_NAME = "observatory_sdk"
BATCH_SIZE = 512
BUILD_CHUNK = 256
EXPORT_INTERVAL = 5.0
"""Seconds a queued call waits at most for its export while the app keeps calling (OpenTelemetry's batch default).
Every export has a fixed cost (about a millisecond of CPU: a request, a connection, an answer to read), shared by
the calls it carries: with slow calls (a long prompt) a short interval puts a larger share of it on each call."""
IDLE_EXPORT_AFTER = EXPORT_INTERVAL + 1.0
"""The worker's own timer: what is left once the app stops calling (a calling app hands over at EXPORT_INTERVAL)."""
HANDOVER_WAIT = 0.005
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 30.0

current: Pipeline | None = None
"""The pipeline the wrappers feed; None before init() and after shutdown()."""


class Pipeline:
    """Turns queued calls into spans and posts them to Observatory (see the module docstring for which thread does
    what)."""

    def __init__(self, settings: Settings, sender: OtlpHttpSender | None, resource: dict[str, Any]) -> None:
        self.settings = settings
        self.provider_spans: ProviderSpans | None = None
        """Set when spans go through an OpenTelemetry SDK TracerProvider."""
        self._resource = encode_resource(resource)
        self._scope = encode_scope(SCOPE_NAME, __version__)
        self._sender = sender
        self._limit = settings.max_queue_size
        self._calls: deque[Call | tuple[Any, ...]] = deque(maxlen=self._limit)
        self._spans: deque[bytes] = deque(maxlen=self._limit)
        self._ready: deque[tuple[Prepared, list[bytes]]] = deque()
        """Requests the app's thread prepared (encoded, compressed if asked) for the worker to post, with their spans."""
        self._in_flight: list[bytes] | None = None
        """The spans of the request being posted or posted and not answered yet (its answer is read at the worker's
        next wake)."""
        self._preparing = 0
        """Spans taken from the queue and being encoded into a request (counted as queued meanwhile)."""
        self._building = 0
        """Threads turning taken calls into spans right now (a flush waits for them)."""
        self._sleeping = True
        """The worker waits without a timeout: the next queued call must wake it (see _next_wake)."""
        self._waiting = False
        """The worker is waiting for work (so a hand-over can wait for it to take the GIL)."""
        self._handing = False
        """An app thread is handing a batch over, or has and the worker has not dealt with it yet (one at a time)."""
        self._handed = False
        """The batch is prepared and the worker woken to post it (set only then: woken earlier, it must not take a
        hand-over still being prepared for done)."""
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
        self._taken = threading.Event()
        self._thread = threading.Thread(target=self._run, name="observatory-sdk-export", daemon=True)
        self._thread.start()

    # -- hot path ---------------------------------------------------------------------------

    def submit(self, call: Call | tuple[Any, ...]) -> None:
        """Queue one call; when the queue is full the oldest queued call is dropped and counted.
        Every BUILD_CHUNK calls, the calling thread turns the queued calls into spans itself, and
        when a batch is due it prepares the request and hands it to the worker (see the module
        docstring). No lock: appending to the deque is atomic, and spans are built from it one
        popleft() at a time (see _build_spans)."""
        calls = self._calls
        if len(calls) >= self._limit:
            with self._lock:
                self._dropped += 1
        calls.append(call)
        if len(calls) >= BUILD_CHUNK:
            self._build_spans()
        if self._sleeping:
            # The first call after a quiet spell: its export is due an interval from now, not at once (an export per
            # burst of calls is a fixed cost for nothing). The worker wakes to set its timer for when the app stops,
            # while this thread waits for it (see _hand_over: woken while the app runs Python, it would wait for the
            # GIL and be woken again and again).
            self._last_export = time.monotonic()
            self._wake_and_wait()
            return
        if self._sender is not None and not self._handing:
            now = time.monotonic()
            if len(self._spans) >= BATCH_SIZE or now - self._last_export >= EXPORT_INTERVAL:
                if now >= self._retry_at and now >= self._server_retry_at:  # else the worker's timer retries
                    self._hand_over()

    def _wake_worker(self) -> None:
        self._sleeping = False
        self._wake.set()

    def _hand_over(self) -> None:
        """On the app's thread: build and encode one due batch into a request (CPU work, done where the GIL already
        is), then wake the worker and wait (at most HANDOVER_WAIT) while it reads the last answer and posts.
        A worker that needs the GIL while the app runs Python waits for it, and on CPython every short release
        of it by the app (a read, a lock) wakes that worker again for nothing; each socket call releases it:
        thousands of such wakes per export were measured, more CPU than the rest of the SDK. With nothing to post
        (every call sampled out by the app's TracerProvider, say) the worker is left asleep."""
        self._handing = True
        whole = len(self._spans) < BATCH_SIZE  # the interval is up: what is queued goes, not only a full batch
        if whole:
            self._build_spans()
        self._prepare(whole)
        if not self._ready and not self._in_flight:
            self._last_export = time.monotonic()  # nothing was due after all: no hand-over before the next interval
            self._handing = False
            return
        self._handed = True
        self._wake_and_wait()

    def _wake_and_wait(self) -> None:
        """Wake the worker and, if it was waiting for work, let it take the GIL now (at most HANDOVER_WAIT)."""
        if self._waiting:
            self._taken.clear()
            self._wake_worker()
            self._taken.wait(HANDOVER_WAIT)
        else:
            self._wake_worker()

    def _prepare(self, whole: bool) -> None:
        """One batch of queued spans (a full one, or with `whole` whatever is queued) into a ready request, unless
        one is ready already: so the spans held stay within max_queue_size queued, one batch ready and one in
        flight, and the app's thread never encodes a backlog. A batch that cannot be encoded is dropped, counted."""
        with self._lock:
            spans = self._spans
            if self._ready or len(spans) < (1 if whole else BATCH_SIZE):
                return
            batch = [spans.popleft() for _ in range(min(BATCH_SIZE, len(spans)))]
            self._preparing += len(batch)
        try:
            prepared = self._sender.prepare(encode_request(self._resource, self._scope, batch))  # type: ignore[union-attr]
        except Exception:
            log_once("prepare", "observatory_sdk: could not encode an export; its spans are dropped", exc_info=True)
            with self._lock:
                self._preparing -= len(batch)
                self._dropped += len(batch)
            return
        with self._lock:
            self._preparing -= len(batch)
            self._ready.append((prepared, batch))

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

    def _queued(self) -> int:
        with self._lock:
            ready = sum(len(batch) for _, batch in self._ready)
            return len(self._calls) + len(self._spans) + self._preparing + ready + len(self._in_flight or ())

    def flush(self, timeout: float) -> bool:
        """Build and export everything queued now. True when the queue emptied within `timeout`
        (delivered, or dropped because the server refused it: see stats())."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._lock:
                if self._stopping or not self._thread.is_alive():
                    return not self._queued()
                self._flush_requests += 1
                ticket = self._flush_requests
                self._flush_deadline = max(self._flush_deadline, deadline)
                self._retry_at = 0.0
                failures = self._failed_exports
            self._wake.set()
            with self._lock:
                while self._flushes_done < ticket:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._flushed.wait(remaining)
                if not self._queued():
                    return True
                # Still queued: what an app thread was building or encoding during the worker's pass, a request it
                # handed over since (posted by a pass that leaves the answer for later), calls made meanwhile: one
                # more pass for them. Not for posts the server refused in this pass: they wait for their retry.
                if self._failed_exports != failures or self._server_retry_at > time.monotonic():
                    return False
            time.sleep(0.001)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "queued": self._queued(),
                "exported": self._exported,
                "dropped": self._dropped,
                "failed_exports": self._failed_exports,
            }

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's queue and connection, start a fresh worker."""
        self._calls.clear()
        self._spans.clear()
        self._ready.clear()
        self._in_flight = None
        self._preparing = self._building = 0
        self._handing = self._handed = self._waiting = False
        if self._sender is not None:
            self._sender.forget_connection()
        self._flush_requests = self._flushes_done = 0
        if not self._stopping:
            self._start_worker()

    # -- worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        timeout = self._next_wake()
        while True:
            self._waiting = True
            self._wake.wait(timeout)
            self._waiting = False
            self._wake.clear()
            with self._lock:
                ticket = self._flush_requests
                flushing = ticket > self._flushes_done
                deadline = self._flush_deadline
                stopping = self._stopping
            handed = self._handed
            if not (flushing or stopping or handed) and self._due_in() > 0:
                # Woken by the first call after a quiet spell: only the timer to set.
                timeout = self._next_wake()
                self._taken.set()
                continue
            try:
                if flushing or not handed:  # else the app built what is due; the rest waits for a later batch
                    self._build_spans()
                if self._sender is not None:
                    self._export(flushing or stopping, deadline, handed)
            except Exception:  # the worker must survive anything
                log_once("worker", "observatory_sdk: export worker error", exc_info=True)
            if handed:
                self._handed = self._handing = False
            self._taken.set()  # the app, if it handed something over, runs again
            if flushing:
                with self._lock:
                    self._flushes_done = ticket
                    self._flushed.notify_all()
            if stopping:
                return
            timeout = self._next_wake()

    def _next_wake(self) -> float | None:
        """Seconds until the worker has something to do, or None while nothing is queued: it then sleeps until
        the next call wakes it (submit). While the app makes calls, the app hands the exports over (submit), so
        the worker's own timer is for retries and for what is left once the app stops calling. It never wakes to
        poll: see _hand_over for what a wake costs while the app runs."""
        if not self._queued():
            self._sleeping = True
            if not self._queued():  # queued meanwhile, it may have seen _sleeping False
                return None
            self._sleeping = False
        return max(0.0, self._due_in())

    def _due_in(self) -> float:
        """Seconds until the worker's timer is due: a retry, or IDLE_EXPORT_AFTER since the last export."""
        retry = max(self._retry_at, self._server_retry_at)
        due = retry if retry > self._last_export else self._last_export + IDLE_EXPORT_AFTER
        return due - time.monotonic()

    def _build_spans(self) -> None:
        """Turn every queued call into a queued span (on whichever thread calls this). Calls are taken
        one popleft() at a time: app threads append without the lock (see submit)."""
        with self._lock:
            self._building += 1
        calls = self._calls
        try:
            for _ in range(len(calls)):
                try:
                    call = calls.popleft()
                except IndexError:  # another thread took the rest
                    break
                try:
                    self._emit(call)
                except Exception:  # one bad call must not stop the others
                    log_once("build-span", "observatory_sdk: could not build a span", exc_info=True)
        finally:
            with self._lock:
                self._building -= 1

    def _emit(self, call: Call | tuple[Any, ...]) -> None:
        if type(call) is tuple:  # the usual call's record (patching.wrap_method): no error, no stream
            attributes = record_attributes(call, self.settings)
            operation, start_ns, duration_ns, _, _, context, _, _ = call
            model = attributes.get("gen_ai.request.model")
            name = f"{operation.name} {model}" if model else operation.name
            end_ns, error = start_ns + duration_ns, None
        else:
            attributes = span_attributes(call, self.settings)
            name, context, start_ns = span_name(call), call.context, call.start_ns
            end_ns, error = start_ns + call.duration_ns, call.error_type
        if self.provider_spans is not None:
            self.provider_spans.emit(name, context, attributes, start_ns, end_ns, error)
            return
        parent = None
        if context:  # the app's OpenTelemetry context, not empty: maybe a span to be a child of
            from .app_opentelemetry import parent_of

            parent = parent_of(context)
        self.queue_span(
            encode_span(
                parent[0] if parent else random.getrandbits(128) or 1,
                random.getrandbits(64) or 1,
                parent[1] if parent else None,
                parent is not None and parent[2],
                name,
                SPAN_KIND_CLIENT,
                start_ns,
                end_ns,
                attributes,
                STATUS_ERROR if error else 0,
                error,
            )
        )

    def _export(self, flushing: bool, deadline: float, handed: bool) -> None:
        """Post what is due, one request at a time, reading each answer before the next post. Woken by a hand-over
        (and not flushing), the worker leaves the answer to its last post for its next wake, when it has long
        arrived: waiting for it here would mean taking the GIL back from a busy app (see _hand_over). A failed
        request's spans go back to the queue front."""
        while True:
            if self._in_flight is not None:
                self._settle(self._sender.answer())  # type: ignore[union-attr]
                continue
            now = time.monotonic()
            wait_until = max(self._retry_at, self._server_retry_at)
            if now < wait_until:
                if not flushing or wait_until >= deadline or self._stopping:
                    return
                self._wake.wait(wait_until - now)
                self._wake.clear()
                continue
            prepared = self._next_request(flushing or not handed)
            if prepared is None:
                return
            failure = self._sender.post(prepared)  # type: ignore[union-attr]
            self._last_export = time.monotonic()
            if failure is not None:
                self._settle(failure)
            elif handed and not flushing and not self._ready:
                return

    def _next_request(self, whole: bool) -> Prepared | None:
        """The next request to post, its spans now in flight: one the app prepared, else (flushing, or what the app
        left when it stopped calling) one made here from the queued spans."""
        if whole and not self._ready:
            self._prepare(True)
        with self._lock:
            if not self._ready:
                return None
            prepared, self._in_flight = self._ready.popleft()
            return prepared

    def _settle(self, result: SendResult) -> None:
        """Count the outcome of the request in flight; a retryable failure puts its spans (and those of a request
        prepared after it) back in front of the queue, to be sent after a backoff."""
        with self._lock:
            batch, self._in_flight = self._in_flight or [], None
            if result.delivered:
                self._exported += len(batch) - result.rejected_spans
                self._dropped += result.rejected_spans
            else:
                self._failed_exports += 1
                if not result.retryable:
                    self._dropped += len(batch)
                else:
                    while self._ready:
                        _, later = self._ready.pop()
                        self._requeue(later)
                    self._requeue(batch)
        if result.delivered:
            self._backoff_attempts = 0
            self._retry_at = 0.0
        elif result.retryable:
            now = time.monotonic()
            self._retry_at = now + self._next_backoff()
            if result.retry_after is not None:
                self._server_retry_at = now + result.retry_after

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
