"""Per-key ingest rate limits: a token bucket per API key, shared by every web process on the host.

A key may send `rate` records (spans, log records, metric points) per second on average and up to `burst`
at once. A request is admitted while the key's bucket is above zero and then charged its record count, so a
large export is never refused for its size alone: it puts the bucket in debt and the next requests wait.
A refused request is answered 429 with `Retry-After` (the seconds until the bucket is above zero again),
which the OpenTelemetry exporters honour.

The buckets live in a small memory-mapped file under the data directory, locked with `flock` for the few
microseconds of each update, so the gunicorn workers of one host share one budget per key (several hosts
each enforce the limit on their own). When that file cannot be used (a read-only directory) each process
keeps its own buckets. Limits are generous by default (OBSERVATORY_INGEST_RATE_PER_KEY and
OBSERVATORY_INGEST_BURST_PER_KEY, 0 turns them off); a key's own `ingest_rate_limit` overrides the rate.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import mmap
import os
import struct
import threading
import time
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

SLOTS = 4096
PROBES = 16
_SLOT = struct.Struct("<qdd")  # bucket id, tokens, updated (unix seconds)
FILE_NAME = "ingest-rate-limits.bin"


class _Buckets:
    """The slot table: open addressing by bucket id, the stalest of the probed slots is reused when all are taken."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.pid = os.getpid()
        self.thread_lock = threading.Lock()
        self.fd: int | None = None
        size = SLOTS * _SLOT.size
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                if os.fstat(self.fd).st_size < size:
                    os.ftruncate(self.fd, size)
                self.memory = mmap.mmap(self.fd, size)
                return
            except OSError as exc:
                log.warning("ingest rate limits are per process: %s cannot be used (%s)", path, exc)
                if self.fd is not None:
                    os.close(self.fd)
                self.fd = None
        self.memory = mmap.mmap(-1, size)

    def update(self, bucket_id: int, rate: float, burst: float, cost: float, now: float) -> tuple[bool, float]:
        """Refill the bucket to `now`; when it is above zero, charge `cost` and admit. Returns (admitted, tokens
        left)."""
        with self.thread_lock:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                offset, tokens, updated = self._find(bucket_id, burst, now)
                tokens = min(burst, tokens + max(0.0, now - updated) * rate)
                admitted = tokens > 0
                if admitted:
                    tokens -= cost
                _SLOT.pack_into(self.memory, offset, bucket_id, tokens, now)
                return admitted, tokens
            finally:
                if self.fd is not None:
                    fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _find(self, bucket_id: int, burst: float, now: float) -> tuple[int, float, float]:
        start = bucket_id % SLOTS
        stalest_offset, stalest_time = -1, math.inf
        for probe in range(PROBES):
            offset = ((start + probe) % SLOTS) * _SLOT.size
            slot_id, tokens, updated = _SLOT.unpack_from(self.memory, offset)
            if slot_id == bucket_id:
                return offset, tokens, updated
            if slot_id == 0:
                return offset, burst, now
            if updated < stalest_time:
                stalest_offset, stalest_time = offset, updated
        return stalest_offset, burst, now  # a key unseen for longest gives its slot up (it starts full again)


_buckets: _Buckets | None = None
_buckets_lock = threading.Lock()


def _table() -> _Buckets:
    """This process's view of the shared table (opened again after a fork: flock must not be shared)."""
    global _buckets
    table = _buckets
    if table is None or table.pid != os.getpid():
        with _buckets_lock:
            if _buckets is None or _buckets.pid != os.getpid():
                _buckets = _Buckets(Path(settings.DATA_DIR) / "run" / FILE_NAME)
            table = _buckets
    return table


def bucket_id(api_key) -> int:
    """A stable, positive 63-bit id for the key: its primary key and creation time (a database created again
    reuses primary keys; the time tells the keys apart)."""
    digest = hashlib.blake2b(f"{api_key.pk}:{api_key.created_at.timestamp():.6f}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF) or 1


def limits_for(api_key) -> tuple[float, float] | None:
    """(records per second, burst) for the key, or None when it is not limited."""
    rate = getattr(api_key, "ingest_rate_limit", None) or settings.INGEST_RATE_PER_KEY
    if not rate:
        return None
    burst = max(settings.INGEST_BURST_PER_KEY, rate)
    return float(rate), float(burst)


def _retry_after(tokens: float, rate: float) -> int:
    return max(1, math.ceil(-tokens / rate))


def admit(api_key, records: int = 0, now: float | None = None) -> int | None:
    """None when the key may send now (charged `records`: 0 before a body is read, its record count after it
    is decoded), else the seconds to wait."""
    limits = limits_for(api_key)
    if limits is None:
        return None
    rate, burst = limits
    admitted, tokens = _table().update(bucket_id(api_key), rate, burst, float(records),
                                       time.time() if now is None else now)
    return None if admitted else _retry_after(tokens, rate)
