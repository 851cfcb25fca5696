"""Every call through the gateway becomes a call record, through ingest's own path (attribution, pricing, the COPY
store, and the spool while the database is away) — off the response path, so recording never delays an answer.

`call_fields` is pure: an Exchange → the CallFields a mapper would have built for the same call. Two recorders take
finished exchanges from a queue (a few microseconds on the response path) and store them in batches:

- `Recorder`, a thread of the gateway's process (tests, and anything embedding the app in its own process);
- `ProcessRecorder`, what `observatory gateway` runs: the batches are priced and stored in a process of their own, so
  the event loop never waits for the GIL while a batch is being priced and copied (with the thread, the requests
  that arrived during a batch's few milliseconds of Python waited for it: that was the gateway's p99). A thread of
  the gateway turns exchanges into call records and pipes them over; the recording process acknowledges each batch
  once stored (or spooled); batches not yet acknowledged are sent again to a new recording process if it dies —
  storing is idempotent (INSERT … ON CONFLICT DO NOTHING), so a batch stored twice counts once.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import queue
import secrets
import threading
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from django.db import close_old_connections, connections

from gateway import recorder_process
from gateway.pipeline import Exchange
from ingest import spool
from ingest.receiver import store_or_spool_calls
from ingest.records import CallFields

log = logging.getLogger(__name__)

SOURCE = "observatory-gateway"
BATCH = 500
LINGER_SECONDS = 0.05  # how long a record waits for others to share its write: one COPY for many calls under load
SEND_LINGER_SECONDS = 0.01  # how long the gateway's sending thread gathers exchanges before it takes the interpreter
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


class _Queued:
    """What both recorders share: the queue `submit` fills (never blocking, never raising) and the count of exchanges
    handed over but not yet stored, which `wait_idle` waits on."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Exchange | None] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self.pending = 0

    def submit(self, exchange: Exchange) -> None:
        with self._lock:
            self.pending += 1
            self._idle.clear()
        self._queue.put(exchange)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted exchange is stored (or spooled); for tests and shutdown."""
        return self._idle.wait(timeout)

    def _done(self, count: int) -> None:
        """`count` exchanges are stored (or spooled). Call with the lock held."""
        self.pending -= count
        if self.pending <= 0:
            self._idle.set()


class Recorder(_Queued):
    """A daemon thread storing finished exchanges in batches."""

    def __init__(self) -> None:
        super().__init__()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="gateway-recorder", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Store what is queued, then end the thread (at shutdown)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

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
        store_groups(group_by_key(batch))
        with self._lock:
            self._done(len(batch))


def group_by_key(batch: list[Exchange]) -> list[tuple]:
    """[(api_key, [CallFields, …]), …]: one store per key, as an export is stored."""
    by_key: dict[int, tuple] = {}
    for exchange in batch:
        try:
            fields = call_fields(exchange)
        except Exception:  # one odd exchange must not cost the others their records
            log.exception("gateway: a call record could not be built (model %r)", exchange.model)
            continue
        by_key.setdefault(exchange.api_key.pk, (exchange.api_key, []))[1].append(fields)
    return list(by_key.values())


def store_groups(groups: list[tuple]) -> None:
    close_old_connections()
    for api_key, calls in groups:
        try:
            if not store_or_spool_calls(api_key, calls):
                connections.close_all()  # spooled: the database is away; reconnect for the next batch
        except (spool.SpoolFull, OSError) as exc:
            log.error("gateway: %s call record(s) lost: the database is away and the spool cannot take them (%s)",
                      len(calls), exc)
        except Exception:  # one bad batch must not stop the recorder
            log.exception("gateway: %s call record(s) could not be stored", len(calls))


class ProcessRecorder(_Queued):
    """The recorder with its pricing and COPY in a process of its own (see the module's docstring); an exchange
    counts as stored once the recording process confirms its batch."""

    def __init__(self) -> None:
        super().__init__()  # its lock also guards _unacked
        self._pipe_lock = threading.Lock()  # the pipe and the process, replaced together when the process dies
        self._unacked: dict[int, tuple[bytes, int]] = {}  # batch number → (what was sent, exchanges in it)
        self._sequence = 0
        self._stopping = False
        self._pipe = None
        self.process: multiprocessing.Process | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.process is not None:
            return
        self._spawn()
        self._threads = [threading.Thread(target=self._send_batches, name="gateway-recorder-send", daemon=True),
                         threading.Thread(target=self._read_acknowledgements, name="gateway-recorder-ack", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Send what is queued, let the recording process store it and end (at shutdown)."""
        if self.process is None:
            return
        self._stopping = True
        self._queue.put(None)
        self._threads[0].join(timeout)
        self.process.join(timeout)
        if self.process.is_alive():
            log.error("gateway: the recording process did not end within %.0f s; %s call record(s) unconfirmed",
                      timeout, self.pending)
            self.process.terminate()
        self._threads[1].join(timeout)

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process that runs threads and an event loop
        ours, theirs = context.Pipe(duplex=True)
        from django.conf import settings

        # What this process was told after Django read its settings (a test database, a data directory) holds there
        overrides = {"database_name": connections["default"].settings_dict["NAME"], "data_dir": str(settings.DATA_DIR)}
        process = context.Process(target=recorder_process.main, args=(theirs, overrides), daemon=True,
                                  name="observatory-gateway-recorder")
        process.start()
        theirs.close()
        self._pipe, self.process = ours, process

    def _send_batches(self) -> None:
        done = False
        while not done:
            first = self._queue.get()
            batch = [] if first is None else [first]
            done = first is None
            if not done:
                time.sleep(SEND_LINGER_SECONDS)  # the interpreter is the event loop's meanwhile: one hand-over per batch
            while not done and len(batch) < BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                else:
                    batch.append(item)
            if batch:
                self._send(batch)
        with self._pipe_lock, _quietly():
            self._pipe.send_bytes(pickle.dumps(None))

    def _send(self, batch: list[Exchange]) -> None:
        groups = group_by_key(batch)
        self._sequence += 1
        data = pickle.dumps((self._sequence, groups), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            self._unacked[self._sequence] = (data, len(batch))
        with self._pipe_lock, _quietly():  # a dead process: the acknowledgement reader starts another and resends
            self._pipe.send_bytes(data)

    def _read_acknowledgements(self) -> None:
        while True:
            try:
                numbers = self._pipe.recv()
            except (EOFError, OSError):
                if self._stopping:
                    return
                self._restart()
                continue
            with self._lock:
                self._done(sum(self._unacked.pop(number, (b"", 0))[1] for number in numbers))

    def _restart(self) -> None:
        with self._pipe_lock:
            log.error("gateway: the recording process ended (exit code %s); starting another, %s batch(es) resent",
                      self.process.exitcode if self.process else None, len(self._unacked))
            time.sleep(0.5)  # a process that dies at once must not spin
            self._spawn()
            with self._lock:
                waiting = [self._unacked[number][0] for number in sorted(self._unacked)]
            with _quietly():
                for data in waiting:
                    self._pipe.send_bytes(data)


def merged(groups: list[tuple]) -> list[tuple]:
    by_key: dict[int, tuple] = {}
    for api_key, calls in groups:
        by_key.setdefault(api_key.pk, (api_key, []))[1].extend(calls)
    return list(by_key.values())


class _quietly:
    """Swallow a broken pipe: the process at the other end died, and its batches are resent to the next."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, traceback) -> bool:
        return kind is not None and issubclass(kind, OSError)
