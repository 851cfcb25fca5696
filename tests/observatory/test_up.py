"""`observatory up` as a user runs it: a subprocess, real embedded PostgreSQL, Celery and gunicorn."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tests.ingest.test_otlp_http import CHAT, NOW_NS, make_request

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


def test_up_refuses_a_busy_grpc_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "up", "--port", str(_free_port()), "--grpc-port", str(port)], cwd=REPO,
            env=_env(tmp_path / "home"), capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 2
    assert f"port 127.0.0.1:{port} is already in use" in result.stderr and "--no-grpc" in result.stderr
    assert not (tmp_path / "home" / "pgdata").exists()


def test_up_refuses_a_busy_gateway_port_it_was_told_to_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "up", "--port", str(_free_port()), "--no-grpc", "--gateway-port", str(port)],
            cwd=REPO, env=_env(tmp_path / "home"), capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 2
    assert f"port 127.0.0.1:{port} is already in use" in result.stderr and "--no-gateway" in result.stderr
    assert not (tmp_path / "home" / "pgdata").exists()


def _export_over_grpc(port: int, key: str) -> None:
    """One GenAI chat span through the official OTLP/gRPC exporter, as an instrumented app sends it."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{port}", insecure=True, headers=(("authorization", f"Bearer {key}"),))))
    with provider.get_tracer("opentelemetry.instrumentation.openai_v2").start_as_current_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=CHAT, start_time=NOW_NS) as span:
        span.end(NOW_NS + 850_000_000)
    provider.shutdown()


@pytest.mark.slow
def test_up_runs_everything_and_stops_cleanly_on_ctrl_c(tmp_path):
    port, grpc_port, gateway_port = _free_port(), _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port), "--grpc-port", str(grpc_port),
         "--gateway-port", str(gateway_port)], cwd=REPO,
        env=_env(tmp_path / "home"),
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
        for _ in range(8):  # the banner lines after "ready"
            lines.append(proc.stdout.readline())
        output = "".join(lines)
        password = re.search(r"admin login:\s+admin / (\S+)", output).group(1)
        key = re.search(r"ingest API key: (obs_[0-9a-f]{12}_\S+)", output).group(1)
        assert f"OTLP/gRPC:     http://127.0.0.1:{grpc_port}" in output
        assert f"gateway:       base_url http://127.0.0.1:{gateway_port}/v1 (OpenAI)" in output
        assert "an organization key: calls that name no team (observatory.team) stay unattributed" in output

        _export_over_grpc(grpc_port, key)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/traces", data=make_request([CHAT]).SerializeToString(), method="POST",
            headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        calls_url = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/calls",
                                           headers={"Authorization": f"Bearer {key}"})
        stored_by = time.monotonic() + 10  # an OTLP/HTTP trace export is stored right after its answer
        while True:
            with urllib.request.urlopen(calls_url, timeout=10) as response:
                calls = json.loads(response.read())["results"]
            if len(calls) >= 2 or time.monotonic() > stored_by:
                break
            time.sleep(0.05)
        assert len(calls) == 2  # one over gRPC, one over HTTP: the same call, the same tokens and price
        assert {(c["input_tokens"], c["output_tokens"], c["response_model"], c["cost_usd"], c["duration_ms"])
                for c in calls} == {(1200, 85, "gpt-4o-mini-2024-07-18", "0.0002310000", 850.0)}

        refused = urllib.request.Request(
            f"http://127.0.0.1:{gateway_port}/v1/chat/completions", data=b'{"model": "gpt-4o-mini"}', method="POST",
            headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as no_key:
            urllib.request.urlopen(refused, timeout=10)
        assert no_key.value.code == 401 and b"missing Observatory API key" in no_key.value.read()

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
