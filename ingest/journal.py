"""Exports answered before they are stored: each is written to a journal file and fsync'd first, so a web process
that dies after answering (killed, out of memory, a worker timeout) loses nothing it answered for.

The OTLP/HTTP receiver answers a trace export once it is decoded, mapped (so the reply can say which spans were
rejected) and journaled, and stores it after the answer has left, with the other exports of a short batch
(ingest.receiver, ingest.write_behind); its slot is marked done once its rows are committed. The exporter's next
export no longer waits for the database, and the store of one export overlaps the decoding of the next in another
web worker.

Each process keeps a few journal slots under `$OBSERVATORY_HOME/spool/inflight`, one per export in flight, each
held with an exclusive `flock` for as long as the process lives. A slot holds one record in the spool's format
(ingest.spool) behind a state byte: `P` (pending) until the store is done, then `D`. Marking it done needs no
fsync: a record found pending after a crash is applied again, and ingest's idempotent call key makes that a no-op.
`recover` moves the pending records of slots no live process holds into the spool, which applies them.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import threading
import time
from pathlib import Path

from ingest import spool

log = logging.getLogger(__name__)

PENDING, DONE = b"P", b"D"


_journal_dirs: dict[Path, Path] = {}


def journal_dir() -> Path:
    spool_dir = spool.spool_dir()
    found = _journal_dirs.get(spool_dir)
    if found is None:
        found = _journal_dirs[spool_dir] = spool_dir / "inflight"
    return found


class Slot:
    """One journal file of this process; holds one export at a time. Its name is new (never a dead process's
    file, even when the PID is reused), and it is locked before anything is written to it."""

    __slots__ = ("fd", "path", "pid")

    def __init__(self, directory: Path, number: int) -> None:
        self.pid = os.getpid()
        while True:
            path = directory / f"{self.pid}-{time.time_ns()}-{number}.journal"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # `recover` took the new, empty file for a dead process's: make another
                os.close(fd)
                continue
            except OSError:
                os.close(fd)
                raise
            try:
                ours = os.stat(path).st_ino == os.fstat(fd).st_ino  # not removed by `recover` before our lock
            except FileNotFoundError:
                ours = False
            if ours:
                self.path, self.fd = path, fd
                return
            os.close(fd)

    def write(self, export: spool.SpooledExport) -> None:
        data = PENDING + spool.encode_record(export)
        written = os.pwrite(self.fd, data, 0)
        if written != len(data):
            raise OSError(f"short write to the ingest journal {self.path}")
        os.fdatasync(self.fd)

    def mark_done(self) -> None:
        os.pwrite(self.fd, DONE, 0)


class _Slots:
    """This process's free slots (a slot is taken for one export and given back once it is stored)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.free: list[Slot] = []
        self.held: list[Slot] = []  # every slot this process opened, free or not
        self.pid = 0
        self.numbers = itertools.count()

    def take(self) -> Slot:
        directory = journal_dir()
        with self.lock:
            pid = os.getpid()
            if self.pid != pid:  # forked without the at-fork hook (it closes the parent's slots)
                self.free, self.held, self.pid, self.numbers = [], [], pid, itertools.count()
            while self.free:
                slot = self.free.pop()
                if slot.path.parent == directory:
                    return slot
                self.forget(slot)  # the data directory moved (tests): a slot there is of no use
            number = next(self.numbers)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        slot = Slot(directory, number)
        spool.fsync_dir(directory)
        with self.lock:
            self.held.append(slot)
        return slot

    def forget(self, slot: Slot) -> None:
        os.close(slot.fd)
        if slot in self.held:
            self.held.remove(slot)

    def after_fork_in_child(self) -> None:
        """The parent's slots stay the parent's: close the child's copies of their files (the locks stay held
        by the parent's)."""
        for slot in self.held:
            try:
                os.close(slot.fd)
            except OSError:
                pass
        self.lock = threading.Lock()
        self.free, self.held, self.pid, self.numbers = [], [], os.getpid(), itertools.count()

    def give_back(self, slot: Slot) -> None:
        with self.lock:
            if slot.pid == self.pid:
                self.free.append(slot)


_slots = _Slots()
os.register_at_fork(after_in_child=_slots.after_fork_in_child)


class Entry:
    """An export kept in a journal slot until `done` (stored or moved to the spool) or `abandon`."""

    __slots__ = ("slot",)

    def __init__(self, slot: Slot) -> None:
        self.slot = slot

    def done(self) -> None:
        try:
            self.slot.mark_done()
        except OSError as exc:  # the record stays pending: applying it again after a restart changes nothing
            log.warning("ingest journal: %s could not be marked done: %s", self.slot.path, exc)
        _slots.give_back(self.slot)

    def abandon(self) -> None:
        """The export could be neither stored nor spooled: leave it pending in its slot (never reused by this
        process), for `recover` to move into the spool once this process has exited."""
        log.error("ingest journal: an export is left pending in %s; it is applied after this process restarts",
                  self.slot.path)


def keep(export: spool.SpooledExport) -> Entry:
    """Write `export` to a free slot and fsync it; raises OSError when it cannot be kept."""
    slot = _slots.take()
    try:
        slot.write(export)
    except OSError:
        _slots.give_back(slot)
        raise
    return Entry(slot)


def recover() -> int:
    """Move the pending exports of journal slots that no live process holds into the spool; delete those slots.
    Returns how many exports were moved. A slot whose record cannot be moved (the spool is full) is kept."""
    directory = journal_dir()
    try:
        paths = sorted(directory.glob("*.journal"))
    except FileNotFoundError:
        return 0
    moved = 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process holds it
            if os.fstat(fd).st_nlink == 0:
                continue  # another process recovered it meanwhile
            with open(fd, "rb", closefd=False) as handle:
                state = handle.read(1)
                if state == PENDING:
                    for _, record in spool.read_records(path, 1):
                        spool.append(record.signal, record.content_type, record.key_prefix, record.key_sha256,
                                     record.body)
                        moved += 1
                        break
                    os.pwrite(fd, DONE, 0)  # moved: whoever opens it next must not move it again
            path.unlink()
        except (spool.SpoolFull, OSError) as exc:
            log.error("ingest journal: %s could not be moved into the spool yet: %s", path, exc)
        finally:
            os.close(fd)
    return moved
