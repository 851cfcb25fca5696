"""The ingest spool: exports accepted while the database could not store them, kept on local disk until it can.

When storing an export fails because the database is away (connection refused or lost, a timeout), the receiver
appends the export — as received, after decompression — to the spool, `fsync`s it, and only then answers
success. The spool is a directory of append-only segment files under `$OBSERVATORY_HOME/spool`, shared by every
web process of the host (and the gRPC receiver): each process appends to its own segment under an exclusive
`flock`, so records are never interleaved. One process at a time (whoever takes `drain.lock`) applies the
segments, oldest first and each in order, through the same ingest path as a live export; progress is written to
a `.done` file beside each segment after every record, so a crash mid-drain repeats at most one record — which
ingest's idempotent call key turns into no double count. A fully applied segment no writer holds is deleted.

A record holds the key's prefix and SHA-256 (never the key itself), checked again when it is applied: a key
revoked meanwhile, or one that never existed, loses its records (logged). The spool is bounded
(OBSERVATORY_SPOOL_MAX_BYTES); past it the receiver answers 503 with Retry-After as it did without a spool.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from observatory.embedded_db import pid_alive

log = logging.getLogger(__name__)

MAGIC = b"OBSP"
# magic, version, signal, content type, key prefix (12 ascii), key sha256 (32), received ns, body length, crc32
_HEADER = struct.Struct("<4sBBB12s32sqII")
VERSION = 1
SIGNALS = ("traces", "metrics", "logs", "calls")  # calls: normalized calls as JSON (ingest.call_codec), from the gateway
CONTENT_TYPES = ("application/x-protobuf", "application/json")
SEGMENT_BYTES = 64 * 1024 * 1024


class SpoolFull(Exception):
    """The spool holds as much as it may; the export is refused (503) rather than kept."""


@dataclass(frozen=True)
class SpooledExport:
    signal: str
    content_type: str
    key_prefix: str
    key_sha256: bytes
    received_ns: int
    body: bytes


_spool_dirs: dict[object, Path] = {}


def spool_dir() -> Path:
    """`$OBSERVATORY_HOME/spool` (DATA_DIR/spool), built once per data directory: every export asks for it."""
    data_dir = settings.DATA_DIR
    found = _spool_dirs.get(data_dir)
    if found is None:
        found = _spool_dirs[data_dir] = Path(data_dir) / "spool"
    return found


def encode_record(export: SpooledExport) -> bytes:
    header = _HEADER.pack(MAGIC, VERSION, SIGNALS.index(export.signal), CONTENT_TYPES.index(export.content_type),
                          export.key_prefix.encode("ascii")[:12].ljust(12, b"\0"), export.key_sha256,
                          export.received_ns, len(export.body), zlib.crc32(export.body))
    return header + export.body


def read_records(path: Path, offset: int = 0) -> Iterator[tuple[int, SpooledExport]]:
    """(offset after the record, record) from `offset` on; stops at the end or at a torn last record (a writer
    that died mid-append before answering: its exporter was not told success)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        while True:
            header = handle.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            magic, version, signal, content_type, prefix, digest, received, length, crc = _HEADER.unpack(header)
            if magic != MAGIC or version != VERSION:
                log.error("spool segment %s is damaged at byte %s; the rest of it is skipped", path, offset)
                return
            body = handle.read(length)
            if len(body) < length or zlib.crc32(body) != crc:
                return
            offset += _HEADER.size + length
            yield offset, SpooledExport(SIGNALS[signal], CONTENT_TYPES[content_type],
                                        prefix.rstrip(b"\0").decode("ascii"), digest, received, body)


class _Writer:
    """This process's current segment."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0
        self.path: Path | None = None
        self.fd: int | None = None

    def _open(self, directory: Path) -> int:
        if self.fd is not None and self.pid == os.getpid() and self.path is not None and self.path.parent == directory:
            try:  # the drainer deletes a segment only when no writer holds it; still, never write to a removed file
                if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino and os.fstat(self.fd).st_size < SEGMENT_BYTES:
                    return self.fd
            except FileNotFoundError:
                pass
            os.close(self.fd)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.pid = os.getpid()
        self.path = directory / f"seg-{time.time_ns():020d}-{self.pid}.spool"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fsync_dir(directory)
        return self.fd

    def append(self, data: bytes) -> None:
        directory = spool_dir()
        with self.lock:
            fd = self._open(directory)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


_writer = _Writer()


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _segments(directory: Path) -> list[Path]:
    try:
        return sorted(directory.glob("seg-*.spool"))
    except FileNotFoundError:
        return []


def _done_offset(segment: Path) -> int:
    try:
        return int(segment.with_suffix(".done").read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


@dataclass(frozen=True)
class SpoolState:
    pending_bytes: int
    segments: int
    oldest_ns: int | None

    def as_dict(self) -> dict:
        age = None if self.oldest_ns is None else max(0.0, (time.time_ns() - self.oldest_ns) / 1e9)
        return {"pending_bytes": self.pending_bytes, "segments": self.segments,
                "oldest_seconds": None if age is None else round(age, 1)}


def state() -> SpoolState:
    """What is waiting: bytes not yet applied, segment files, when the oldest was written."""
    pending, oldest, count = 0, None, 0
    for segment in _segments(spool_dir()):
        try:
            size = segment.stat().st_size
        except FileNotFoundError:
            continue
        left = size - _done_offset(segment)
        if left <= 0:
            continue
        count += 1
        pending += left
        written = int(segment.name.split("-")[1])
        oldest = written if oldest is None else min(oldest, written)
    return SpoolState(pending, count, oldest)


def append(signal: str, content_type: str, key_prefix: str, key_sha256: bytes, body: bytes) -> None:
    """Keep one export durably (written and fsync'd when this returns). Raises SpoolFull past the bound."""
    if state().pending_bytes + len(body) > settings.SPOOL_MAX_BYTES:
        raise SpoolFull(f"the ingest spool holds {settings.SPOOL_MAX_BYTES} bytes already")
    _writer.append(encode_record(SpooledExport(signal, content_type, key_prefix, key_sha256, time.time_ns(), body)))
    start_drainer()


def drain(apply, stop_after: float | None = None) -> int:
    """Apply spooled exports oldest first with `apply(record)` (which raises when the database is still away);
    returns how many were applied. Only one process drains at a time; others return 0 at once."""
    directory = spool_dir()
    if not directory.exists():
        return 0
    lock_fd = os.open(directory / "drain.lock", os.O_RDWR | os.O_CREAT, 0o600)
    applied = 0
    deadline = None if stop_after is None else time.monotonic() + stop_after
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        for segment in _segments(directory):
            done_path = segment.with_suffix(".done")
            offset = _done_offset(segment)
            for end, record in read_records(segment, offset):
                apply(record)
                applied += 1
                _write_done(done_path, end)
                offset = end
                if deadline is not None and time.monotonic() > deadline:
                    return applied
            _remove_if_finished(segment, done_path, offset)
        return applied
    finally:
        os.close(lock_fd)


def _write_done(done_path: Path, offset: int) -> None:
    temporary = done_path.with_suffix(".done.tmp")
    with open(temporary, "w") as handle:
        handle.write(str(offset))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, done_path)


def _remove_if_finished(segment: Path, done_path: Path, offset: int) -> None:
    """Delete an applied segment unless a writer still appends to it (it holds or will take its lock)."""
    try:
        fd = os.open(segment, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return
    try:
        if os.fstat(fd).st_size != offset:
            return  # appended to since it was read: the next drain takes the rest
        if _writer.path == segment and _writer.pid == os.getpid():
            return  # this process's own current segment: it goes on appending to it
        if _owner_alive(segment):
            return
        segment.unlink()
        done_path.unlink(missing_ok=True)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _owner_alive(segment: Path) -> bool:
    """Whether the process that writes `segment` still runs (it may append again); a finished segment of a live
    writer is removed when that writer moves on to a new one, or exits."""
    pid = int(segment.stem.split("-")[2])
    return pid != os.getpid() and pid_alive(pid)


# The drainer: a thread in each process that spooled something (or found a spool at start), which applies the
# spool once the database answers again. Several processes may run one; the drain lock lets one work at a time.

_drainer_lock = threading.Lock()
_drainer: threading.Thread | None = None
DRAIN_INTERVAL_SECONDS = 2.0


def start_drainer() -> None:
    """Make sure this process applies the spool when the database is back (off in tests that drain by hand)."""
    global _drainer
    if not settings.SPOOL_DRAIN_IN_BACKGROUND or (_drainer is not None and _drainer.is_alive()):
        return
    with _drainer_lock:
        if _drainer is not None and _drainer.is_alive():
            return
        _drainer = threading.Thread(target=_drain_loop, name="observatory-spool-drainer", daemon=True)
        _drainer.start()


_resumed_in_pid = 0


def resume_pending() -> None:
    """Once per process, on its first export: start the drainer if an earlier process (one that crashed or was
    restarted before the database came back) left exports waiting, in the spool or in its journal."""
    global _resumed_in_pid
    if _resumed_in_pid == os.getpid():
        return
    _resumed_in_pid = os.getpid()
    from ingest import journal  # journal builds on this module

    journal.recover()  # exports a dead process answered for but had not stored yet
    if state().pending_bytes:
        start_drainer()


def _drain_loop() -> None:
    from django.db import connection

    from ingest.receiver import apply_spooled  # the ingest path (imports the ORM): loaded when first needed

    idle = 0
    while settings.SPOOL_DRAIN_IN_BACKGROUND:
        time.sleep(DRAIN_INTERVAL_SECONDS)
        try:
            applied = drain(apply_spooled)
            if applied:
                log.info("ingest spool: %s export(s) applied", applied)
        except Exception as exc:  # the database is still away: try again later
            log.info("ingest spool: not applied yet (%s: %s)", type(exc).__name__, str(exc).splitlines()[0][:200])
            idle = 0
            continue
        finally:
            connection.close()
        idle = idle + 1 if state().pending_bytes == 0 else 0
        if idle >= 30:  # a minute with nothing waiting: stop; the next spooled export starts a drainer again
            return
