"""Logging of the SDK's own failures: each kind is logged once per process, never per call."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("observatory_sdk")

_seen: set[str] = set()
_lock = threading.Lock()


def log_once(kind: str, message: str, *args: object, exc_info: bool | BaseException = False) -> None:
    """Log `message` the first time `kind` happens; later occurrences stay silent."""
    with _lock:
        if kind in _seen:
            return
        _seen.add(kind)
    logger.warning(message, *args, exc_info=exc_info)
