"""Crash: do web workers killed mid-flight lose or double count what they answered for?

    .venv/bin/python bench/crash.py [--requests 1500] [--spans 10] [--kill-every 0.15]

Starts `observatory up --no-celery` on a throwaway OBSERVATORY_HOME and sends OTLP/HTTP trace exports one after the
other while another thread SIGKILLs a random gunicorn worker every `--kill-every` seconds (gunicorn starts a new
one). Trace exports are answered before they are stored (ingest.journal), so a worker can die between its answer
and its store. Once the kills stop it waits for the stored calls, then checks every span of every answered export
one by one: stored, lost (answered but not stored) and duplicated. Spans of exports whose request failed (the
worker died before answering) may be stored or not; an exporter sends those again. Writes
bench/results/crash-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_ingest", REPO / "bench" / "ingest.py")
bench_ingest = importlib.util.module_from_spec(_spec)  # its request generator and helpers; not the `ingest` app
_spec.loader.exec_module(bench_ingest)
free_port, make_body, printed_key = bench_ingest.free_port, bench_ingest.make_body, bench_ingest.printed_key


def span_ids(body: bytes) -> set[tuple[str, str]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest.FromString(gzip.decompress(body))
    return {(s.trace_id.hex(), s.span_id.hex()) for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}


def workers_of(master: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                    children.append(int(entry.name))
            except OSError:
                continue
    return children


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--spans", type=int, default=10)
    parser.add_argument("--kill-every", type=float, default=0.15)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="obs-crash-"))
    env = {**os.environ, "OBSERVATORY_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "observatory.cli", "up", "--no-celery", "--no-grpc", "--no-gateway",
                               "--port", str(port), "--workers", "3"], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        key = printed_key(server)
        assert key, "observatory up did not print a key"
        master = next(int(p) for p in subprocess.run(["pgrep", "-f", "gunicorn observatory.wsgi"], capture_output=True,
                                                      text=True).stdout.split()
                      if int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) == server.pid)
        rng = random.Random(3)
        start_ns = time.time_ns() - 3600 * 10**9
        bodies = [make_body(args.spans, start_ns + n * 10**9, rng) for n in range(args.requests)]
        stop = threading.Event()
        kills = []

        def killer() -> None:
            chooser = random.Random(4)
            while not stop.wait(args.kill_every):
                workers = workers_of(master)
                if workers:
                    try:
                        os.kill(chooser.choice(workers), signal.SIGKILL)
                        kills.append(time.monotonic())
                    except ProcessLookupError:
                        pass

        thread = threading.Thread(target=killer)
        thread.start()
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "Authorization": f"Bearer {key}"}
        answered: set[tuple[str, str]] = set()
        unanswered: set[tuple[str, str]] = set()
        for body in bodies:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("POST", "/v1/traces", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                (answered if response.status == 200 else unanswered).update(span_ids(body))
            except (OSError, http.client.HTTPException):
                unanswered.update(span_ids(body))
        stop.set()
        thread.join()

        import psycopg

        socket_dir = (home / "pgdata" / "postmaster.pid").read_text().splitlines()[4]
        deadline = time.monotonic() + 60
        while True:
            with psycopg.connect(f"postgresql://postgres@/observatory?host={socket_dir}") as conn:
                rows = conn.execute("SELECT trace_id, span_id FROM ingest_llmcall").fetchall()
            stored = {(t, s) for t, s in rows}
            if answered <= stored or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
        shutil.rmtree(home, ignore_errors=True)

    result = {
        "requests": args.requests, "spans_per_request": args.spans, "workers_killed": len(kills),
        "spans_answered": len(answered), "spans_answered_and_stored": len(answered & stored),
        "spans_lost": len(answered - stored), "spans_duplicated": len(rows) - len(stored),
        "spans_unanswered": len(unanswered), "spans_unanswered_but_stored": len(unanswered & stored),
        "command": "python bench/crash.py " + " ".join(sys.argv[1:]),
    }
    print(f"{len(kills)} workers killed; spans answered {len(answered):,}, of which stored {len(answered & stored):,}, "
          f"lost {result['spans_lost']}; duplicated {result['spans_duplicated']}; spans of requests that failed "
          f"{len(unanswered):,} (stored anyway: {len(unanswered & stored):,})")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"crash-{time.strftime('%Y%m%dT%H%MZ', time.gmtime())}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
