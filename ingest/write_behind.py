"""The store of answered trace exports, in batches: a writer thread per web process takes the exports its request
threads answered (ingest.receiver, each already journaled: ingest.journal) and writes those that arrived within
INGEST_BATCH_SECONDS of the first, up to BATCH_ROWS rows, with one COPY per table.

Why: at 100 spans per export, one COPY per export costs PostgreSQL and the web process about as much again as the
rows themselves (a statement, its commit and its round trips per export). Measured with `bench/ingest.py`; the
figures are in the README's performance table.

What stays as it was: an export is answered once it is journaled, and its journal slot is marked done only once
its rows are committed (or it is in the spool), so a process that dies with exports waiting here loses none of them
(`journal.recover`). When a batch cannot be written, each export of it is written on its own, so one export the
database refuses (or a database gone away: each goes to the spool) never takes the others with it. The queue is
bounded (MAX_QUEUED_ROWS, MAX_QUEUED_EXPORTS): a request thread that would go past it waits, so a slow database
slows the answers down as it did before, instead of filling the memory (or the open files: each queued export
holds its journal slot). At exit the queue is written before the process ends.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

BATCH_ROWS = 2000
MAX_QUEUED_ROWS = 20_000
MAX_QUEUED_EXPORTS = 256  # each holds a journal slot (an open, locked file) until it is written
EXIT_WAIT_SECONDS = 10.0
IDLE_SECONDS = 30.0  # a writer with nothing to write for this long closes its database connection

Item = TypeVar("Item")


class Writer(Generic[Item]):
    """Queues items (each with its row count) and hands them to `write(batch)` on one thread, in batches."""

    def __init__(
        self, write: Callable[[list[Item]], None], window: Callable[[], float], on_idle: Callable[[], None] = lambda: None
    ) -> None:
        self._write = write
        self._window = window
        self._on_idle = on_idle
        self._reset()
        atexit.register(self.flush, EXIT_WAIT_SECONDS)

    def _reset(self) -> None:
        self._ready = threading.Condition()
        self._queue: list[Item] = []
        self._rows = 0
        self._writing = False
        self._hurry = 0  # flushes waiting: a batch still gathering goes at once
        self._idle = True  # on_idle has run since the last batch
        self._idle_asked = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def submit(self, item: Item, rows: int) -> None:
        """Queue `item` for the writer thread; waits while the queue is full."""
        if self._pid != os.getpid():  # a forked child: the parent's thread and queue are not ours
            self._reset()
        with self._ready:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
                self._thread.start()
            while self._rows >= MAX_QUEUED_ROWS or len(self._queue) >= MAX_QUEUED_EXPORTS:
                self._ready.wait(1.0)
            self._queue.append(item)
            self._rows += max(1, rows)
            if len(self._queue) == 1 or self._rows >= BATCH_ROWS:  # else the writer is gathering until its window ends
                self._ready.notify_all()

    def pending(self) -> int:
        """Rows queued or being written."""
        with self._ready:
            return self._rows + (1 if self._writing else 0)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued is written; False if that took longer than `timeout`."""
        deadline = time.monotonic() + timeout
        with self._ready:
            if self._pid != os.getpid():
                return True
            self._hurry += 1
            self._ready.notify_all()
            try:
                while self._queue or self._writing:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                        return False
                    self._ready.wait(min(remaining, 0.05))
                return True
            finally:
                self._hurry -= 1

    def idle(self, timeout: float) -> bool:
        """Have the writer thread run `on_idle` (close its database connection) now if nothing is queued; True once
        it has (or there is no thread)."""
        deadline = time.monotonic() + timeout
        with self._ready:
            if self._idle:
                return True
            self._idle_asked = True
            self._ready.notify_all()
            while not self._idle and self._thread is not None and self._thread.is_alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._ready.wait(min(remaining, 0.05))
            return True

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    if self._idle:  # nothing to close: sleep until there is work
                        self._ready.wait()
                    elif self._idle_asked or not self._ready.wait(IDLE_SECONDS):
                        if not self._queue:
                            self._go_idle()
                self._idle = False
                deadline = time.monotonic() + self._window()
                while self._rows < BATCH_ROWS and not self._hurry:  # gather what arrives meanwhile, up to BATCH_ROWS rows
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._ready.wait(remaining)
                batch, self._queue, self._rows = self._queue, [], 0
                self._writing = True
                self._ready.notify_all()
            try:
                self._write(batch)
            except Exception:  # `write` deals with its failures; the thread must outlive anything it missed
                log.exception("ingest: the writer thread failed on a batch of %s export(s)", len(batch))
            finally:
                with self._ready:
                    self._writing = False
                    self._ready.notify_all()

    def _go_idle(self) -> None:
        """Run on_idle (with the lock held: it is quick) and say so."""
        try:
            self._on_idle()
        except Exception:
            log.exception("ingest: the writer thread could not close its database connection")
        self._idle, self._idle_asked = True, False
        self._ready.notify_all()
