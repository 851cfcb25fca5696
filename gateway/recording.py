"""Every call through the gateway becomes a call record, through ingest's own path (attribution, pricing, the COPY
store, and the spool while the database is away) — in a background thread, so recording never delays an answer.

`call_fields` is pure: an Exchange → the CallFields a mapper would have built for the same call. The `Recorder`
takes finished exchanges from a queue (a few microseconds on the response path) and stores them in batches.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from django.db import close_old_connections, connections

from gateway.pipeline import Exchange
from ingest import spool
from ingest.receiver import store_or_spool_calls
from ingest.records import CallFields

log = logging.getLogger(__name__)

SOURCE = "observatory-gateway"
BATCH = 500
LINGER_SECONDS = 0.05  # how long a record waits for others to share its write: one COPY for many calls under load
try:
    SOURCE_VERSION = version("observatory")
except PackageNotFoundError:  # running from a source tree that was not installed
    SOURCE_VERSION = ""


def call_fields(exchange: Exchange) -> CallFields:
    usage = exchange.usage
    failed = exchange.http_status is None or exchange.http_status >= 400 or bool(exchange.error_type)
    attribution = exchange.attribution
    return CallFields(
        trace_id=secrets.token_hex(16), span_id=secrets.token_hex(8), parent_span_id=None,
        start_time=datetime.fromtimestamp(exchange.started_ns / 1e9, UTC), duration_ms=round(exchange.duration_ms, 3),
        ttft_ms=None if exchange.ttft_ms is None else round(exchange.ttft_ms, 3),
        provider=exchange.route.provider, operation=exchange.route.operation,
        request_model=exchange.model[:512], response_model=usage.response_model,
        input_tokens=usage.input_tokens, cached_input_tokens=usage.cached_input_tokens,
        cache_write_tokens=usage.cache_write_tokens, output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens, usage_reported=usage.reported, streaming=exchange.streaming,
        status="error" if failed else "ok", error_type=(exchange.error_type or "other") if failed else "",
        http_status=exchange.http_status, finish_reason=usage.finish_reason, response_id=usage.response_id,
        team=attribution.get("team", ""), product=attribution.get("product", ""),
        feature=attribution.get("feature", ""), environment=attribution.get("environment", ""),
        end_user=attribution.get("end_user", ""), session=attribution.get("session", ""),
        source=SOURCE, source_version=SOURCE_VERSION, app_cache_hit=exchange.cache_hit,
        attributes={"server.address": exchange.upstream.host, **exchange.attributes},
    )


class Recorder:
    """A daemon thread storing finished exchanges in batches; `submit` never blocks and never raises."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Exchange | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self.pending = 0

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="gateway-recorder", daemon=True)
            self._thread.start()

    def submit(self, exchange: Exchange) -> None:
        with self._lock:
            self.pending += 1
            self._idle.clear()
        self._queue.put(exchange)

    def stop(self, timeout: float = 10.0) -> None:
        """Store what is queued, then end the thread (at shutdown)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted exchange is stored (or spooled); for tests and shutdown."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                deadline = time.monotonic() + LINGER_SECONDS
                while len(batch) < BATCH:
                    try:
                        item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    if item is None:
                        self._store(batch)
                        return
                    batch.append(item)
                self._store(batch)
        finally:
            connections.close_all()

    def _store(self, batch: list[Exchange]) -> None:
        close_old_connections()
        by_key: dict[int, tuple] = {}
        for exchange in batch:
            _, calls = by_key.setdefault(exchange.api_key.pk, (exchange.api_key, []))
            calls.append(call_fields(exchange))
        for api_key, calls in by_key.values():
            try:
                if not store_or_spool_calls(api_key, calls):
                    connections.close_all()  # spooled: the database is away; reconnect for the next batch
            except (spool.SpoolFull, OSError) as exc:
                log.error("gateway: %s call record(s) lost: the database is away and the spool cannot take them (%s)",
                          len(calls), exc)
            except Exception:  # one bad batch must not stop the recorder
                log.exception("gateway: %s call record(s) could not be stored", len(calls))
        with self._lock:
            self.pending -= len(batch)
            if self.pending <= 0:
                self._idle.set()
