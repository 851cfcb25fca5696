"""The gateway's recording process (`gateway.recording.ProcessRecorder`): batches from the gateway, stored
LINGER_SECONDS at a time, each acknowledged once stored or spooled. It ends on the gateway's last message, or when its
pipe closes (the gateway died). This module imports nothing of Django's at import: the process sets Django up first.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def main(pipe, overrides: dict) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C and SIGTERM reach the gateway, which ends us in order
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(10)  # on a busy host the relaying process comes first: recording may wait a few milliseconds, answers not
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections

    from gateway.recording import BATCH, LINGER_SECONDS, merged, store_groups

    # what the gateway was told after Django read its settings (a test database, a data directory) holds here too
    connections["default"].settings_dict["NAME"] = overrides["database_name"]
    settings.DATA_DIR = Path(overrides["data_dir"])
    try:
        while True:
            try:
                message = pipe.recv()  # (batch number, [(api key, [CallFields, …]), …]) or None: the last one
            except (EOFError, OSError):
                return
            if message is None:
                return
            numbers, groups, last = [message[0]], list(message[1]), False
            deadline = time.monotonic() + LINGER_SECONDS
            while sum(len(calls) for _, calls in groups) < BATCH and pipe.poll(max(0.0, deadline - time.monotonic())):
                try:
                    message = pipe.recv()
                except (EOFError, OSError):
                    message = None
                if message is None:
                    last = True
                    break
                numbers.append(message[0])
                groups.extend(message[1])
            store_groups(merged(groups))
            pipe.send(numbers)
            if last:
                return
    finally:
        connections.close_all()
