"""`observatory up` as a user runs it: a subprocess, real embedded PostgreSQL, Celery and gunicorn."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["OBSERVATORY_HOME"] = str(home)
    return env


def test_up_refuses_a_busy_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "up", "--port", str(port)], cwd=REPO, env=_env(tmp_path / "home"),
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 2
    assert f"port 127.0.0.1:{port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "pgdata").exists()  # refused before starting anything


@pytest.mark.slow
def test_up_runs_everything_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port)], cwd=REPO, env=_env(tmp_path / "home"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Observatory is ready"):
                break
        output = "".join(lines)
        assert "Observatory is ready" in output, output
        assert "starting the embedded PostgreSQL" in output
        assert "applying database migrations" in output
        assert "price catalog: 3,728 model prices in force. The bundled catalog has 4,552 entries" in output
        for _ in range(7):  # the banner lines after "ready"
            lines.append(proc.stdout.readline())
        output = "".join(lines)
        password = re.search(r"admin login:\s+admin / (\S+)", output).group(1)
        assert re.search(r"ingest API key: obs_[0-9a-f]{12}_\S+", output)
        assert "an organization key: calls that name no team (observatory.team) stay unattributed" in output

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as response:
            assert b"Log in to Observatory" in response.read()
        assert password
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "Observatory stopped." in rest
    assert not (tmp_path / "home" / "pgdata" / "postmaster.pid").exists()  # PostgreSQL stopped too
