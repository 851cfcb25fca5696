"""Ingest throughput: spans/s over HTTP (protobuf + gzip, 100 spans per request, several client processes)
against `observatory up` as users run it, and in the same run the PostgreSQL COPY ceiling for the same rows.

    .venv/bin/python bench/ingest.py [--requests 600] [--clients 2] [--workers 3] [--rounds 3]

Prints each round and writes bench/results/ingest-<spans>-<UTC time>.json; the headline is the median of the
rounds (each sends its own spans to the same server, so the table grows as a real one does). Uses a throwaway
OBSERVATORY_HOME (embedded PostgreSQL, removed at the end) unless DATABASE_URL is set. Client and server share the
machine: each round says how much CPU each side took per span (web workers, PostgreSQL by process kind, client
processes) and the load average before it. A round's clock stops when every span is stored.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import multiprocessing
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = [("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"), ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
          ("openai", "gpt-4o", "gpt-4o-2024-08-06"), ("openai", "text-embedding-3-small", "text-embedding-3-small")]


def make_body(spans_per_request: int, start_ns: int, rng: random.Random) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    def kv(key, value):
        if isinstance(value, bool):
            return KeyValue(key=key, value=AnyValue(bool_value=value))
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", "bench-app"), kv("deployment.environment.name", "production")])
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "observatory_sdk", "0.1.0"
    for i in range(spans_per_request):
        provider, model, response_model = rng.choice(MODELS)
        begin = start_ns + i * 1_000_000
        attrs = {
            "gen_ai.provider.name": provider, "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
            "gen_ai.response.model": response_model, "gen_ai.usage.input_tokens": rng.randint(100, 5000),
            "gen_ai.usage.cache_read.input_tokens": rng.choice([0, 0, 64]), "gen_ai.usage.output_tokens": rng.randint(10, 800),
            "gen_ai.request.stream": rng.random() < 0.5, "gen_ai.response.finish_reasons": "stop",
            "observatory.team": rng.choice(["search", "support", "growth"]), "observatory.product": rng.choice(["web", "bot"]),
            "observatory.feature": rng.choice(["answer", "rewrite", "triage"]), "user.id": f"user-{rng.randint(1, 500)}",
            "session.id": f"s-{rng.randint(1, 5000)}", "server.address": "api.openai.com",
        }
        ss.spans.append(Span(trace_id=secrets.token_bytes(16), span_id=secrets.token_bytes(8), name=f"chat {model}", kind=3,
                             start_time_unix_nano=begin, end_time_unix_nano=begin + rng.randint(200, 4000) * 1_000_000,
                             attributes=[kv(k, v) for k, v in attrs.items()]))
    return gzip.compress(request.SerializeToString(), compresslevel=6)


def client_worker(port: int, key: str, bodies: list[bytes], results) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "Authorization": f"Bearer {key}"}
    failures = 0
    for body in bodies:
        conn.request("POST", "/v1/traces", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            failures += 1
    results.put(failures)


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU seconds used so far by the given live processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def server_processes(server_pid: int, home: Path) -> tuple[set[int], set[int]]:
    """(web server processes: `observatory up` and its descendants, embedded PostgreSQL: the postmaster's children)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    try:
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError):
        postmaster = -1
    database = {pid for pid, parent in parents.items() if parent == postmaster}
    web = {server_pid}
    grew = True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in web} - web - database - {postmaster}
        web |= found
        grew = bool(found)
    return web, database


def database_url(env: dict) -> str:
    if "DATABASE_URL" in env:
        return env["DATABASE_URL"]
    host = (Path(env["OBSERVATORY_HOME"]) / "pgdata" / "postmaster.pid").read_text().splitlines()[4]
    return f"postgresql://postgres@/observatory?host={host}"


def stored_calls(env: dict) -> int:
    import psycopg

    with psycopg.connect(database_url(env), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM ingest_llmcall").fetchone()[0]


def pending_exports(home: Path) -> int:
    """Answered trace exports whose rows are not committed yet: each waits in a journal slot marked pending until
    its store is done (ingest.journal; the slot is marked done after the commit, so this errs late, never early)."""
    pending = 0
    for path in (home / "spool" / "inflight").glob("*.journal"):
        try:
            with open(path, "rb") as slot:
                pending += slot.read(1) == b"P"
        except OSError:  # a slot of a process that ended
            continue
    return pending


class StoreProbe:
    """Counts the calls stored since `mark()` (ids come from a sequence: every call stored before has a lower id)."""

    def __init__(self, env: dict) -> None:
        import psycopg

        self.conn = psycopg.connect(database_url(env), autocommit=True)
        self.floor = 0

    def mark(self) -> None:
        self.floor = self.conn.execute("SELECT coalesce(max(id), 0) FROM ingest_llmcall").fetchone()[0]

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM ingest_llmcall WHERE id > %s", [self.floor]).fetchone()[0]

    def close(self) -> None:
        self.conn.close()


def database_kind(pid: int) -> str:
    """A PostgreSQL process's kind from its title: client backend, walwriter, checkpointer, autovacuum worker …"""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "gone"
    title = title.removeprefix("postgres:").strip()
    return "client backends" if title.startswith("postgres observatory") else title.split(" (")[0]


def printed_key(server: subprocess.Popen) -> str | None:
    """The ingest API key `observatory up` prints, read from its output until it says it is ready (None if it
    ended first). Shared by the benches that start `observatory up`."""
    key = None
    for line in server.stdout:
        if "ingest API key:" in line:
            key = line.split("ingest API key:")[1].split()[0]
        if "press Ctrl-C" in line:
            break
    return key


def c_decoder_in_use() -> bool:
    """Whether the server decodes trace exports with the optional C decoder (built, and not turned off)."""
    import importlib.util

    off = os.environ.get("OBSERVATORY_INGEST_PURE_PYTHON", "").strip().lower() in ("1", "true", "yes")
    return not off and importlib.util.find_spec("ingest.otlp_decode._spans") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_round(args, port: int, key: str, bodies: list[bytes], server_pid: int, home: Path, env: dict, queue,
              probe: StoreProbe) -> dict:
    """Send `bodies` from args.clients processes; the clock stops when all their calls are stored."""
    spans = len(bodies) * args.spans
    probe.mark()
    shares = [bodies[i::args.clients] for i in range(args.clients)]
    procs = [multiprocessing.Process(target=client_worker, args=(port, key, share, queue)) for share in shares]
    web_pids, database_pids = server_processes(server_pid, home)
    load_before = os.getloadavg()
    web_cpu = cpu_seconds(web_pids)
    database_before = {pid: cpu_seconds({pid}) for pid in database_pids}
    client_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    answered = time.perf_counter() - began
    # Trace exports are answered before they are stored (ingest.journal): the clock stops when every span is
    # stored, not when the last answer arrives. Watched through the journal (reading a few small files every 5 ms)
    # rather than by counting rows: a count of the round's 100k rows takes 20-80 ms on this machine, and its CPU
    # would be taken from the server while it stores the last of them (this bench counted rows before 2026-12-05).
    # The rows are counted once the clock has stopped: a round whose calls are not all there says so.
    while pending_exports(home) and time.perf_counter() - began < answered + 60:
        time.sleep(0.005)
    elapsed = time.perf_counter() - began
    stored = probe.count()
    web_cpu = cpu_seconds(web_pids) - web_cpu
    # PostgreSQL processes started during the run (a web worker's first connection) count from zero.
    database_split: dict[str, float] = {}
    for pid in server_processes(server_pid, home)[1] | set(database_before):
        kind = database_kind(pid)
        database_split[kind] = database_split.get(kind, 0.0) + cpu_seconds({pid}) - database_before.get(pid, 0.0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = os.getloadavg()
    cpu = {"web": web_cpu, "postgres": sum(database_split.values()),
           "client": after.ru_utime + after.ru_stime - client_cpu.ru_utime - client_cpu.ru_stime}
    return {
        "http_spans_per_s": round(spans / elapsed), "failed_requests": sum(queue.get() for _ in procs),
        "last_answer_s": round(answered, 3), "all_stored_s": round(elapsed, 3), "spans_stored": stored,
        "cpu_us_per_span": {name: round(seconds / spans * 1e6, 1) for name, seconds in cpu.items()},
        "postgres_cpu_us_per_span_by_process": {kind: round(seconds / spans * 1e6, 1)
                                                for kind, seconds in database_split.items() if seconds},
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
    }


def round_summary(r: dict) -> str:
    cpu = r["cpu_us_per_span"]
    return (f"{r['http_spans_per_s']:,} spans/s stored ({r['failed_requests']} failed requests; last answer after "
            f"{r['last_answer_s']:.2f} s, all stored after {r['all_stored_s']:.2f} s); CPU per span: web {cpu['web']} µs, "
            f"PostgreSQL {cpu['postgres']} µs, client {cpu['client']} µs; load {r['load_average_1min']['before']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--spans", type=int, default=100)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds against the same server; the median counts")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="obs-bench-"))
    env = {**os.environ, "OBSERVATORY_HOME": str(home)}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "observatory.cli", "up", "--no-celery", "--port", str(port),
                               "--workers", str(args.workers)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        key = printed_key(server)
        assert key, "observatory up did not print a key"
        rng = random.Random(1)
        start_ns = time.time_ns() - 3600 * 10**9
        print(f"generating {args.rounds} × {args.requests} requests × {args.spans} spans …", flush=True)
        batches = [[make_body(args.spans, start_ns + (r * args.requests + n) * 10**9, rng) for n in range(args.requests)]
                   for r in range(args.rounds)]
        warmup = [make_body(args.spans, start_ns - 10**12, rng) for _ in range(20)]
        queue = multiprocessing.Queue()
        client_worker(port, key, warmup, queue)
        queue.get()
        deadline = time.monotonic() + 60
        while stored_calls(env) < len(warmup) * args.spans and time.monotonic() < deadline:
            time.sleep(0.05)
        probe = StoreProbe(env)
        rounds = []
        for number, bodies in enumerate(batches, 1):
            rounds.append(run_round(args, port, key, bodies, server.pid, home, env, queue, probe))
            print(f"round {number}: " + round_summary(rounds[-1]), flush=True)
        probe.close()
        copy = copy_ceiling(env, batches[0])
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
        shutil.rmtree(home, ignore_errors=True)

    middle = sorted(rounds, key=lambda r: r["http_spans_per_s"])[len(rounds) // 2]
    result = {
        "spans_per_request": args.spans, "requests": args.requests, "client_processes": args.clients,
        "web_workers": args.workers, "rounds": len(rounds),
        "http_spans_per_s": middle["http_spans_per_s"],  # the median round
        "http_spans_per_s_by_round": [r["http_spans_per_s"] for r in rounds],
        "failed_requests": sum(r["failed_requests"] for r in rounds),
        **copy, "http_share_of_copy_ceiling": round(middle["http_spans_per_s"] / copy["copy_binary_rows_per_s"], 3),
        "cpu_us_per_span": middle["cpu_us_per_span"],
        "median_round": middle, "by_round": rounds,
        "cpu_count": os.cpu_count(),
        "c_decoder": c_decoder_in_use(),
        "command": "python bench/ingest.py " + " ".join(sys.argv[1:]),
    }
    print(f"median of {len(rounds)} rounds: {middle['http_spans_per_s']:,} spans/s = "
          f"{result['http_share_of_copy_ceiling']:.0%} of the COPY ceiling", flush=True)
    print(json.dumps(result, indent=2))
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime())
    path, copy_number = out / f"ingest-{args.spans}-{stamp}.json", 2
    while path.exists():  # two runs ended in the same minute keep both results
        path, copy_number = out / f"ingest-{args.spans}-{stamp}-{copy_number}.json", copy_number + 1
    path.write_text(json.dumps(result, indent=2) + "\n")


def copy_ceiling(env: dict, bodies: list[bytes]) -> dict:
    """Decode+map the same bodies once, then time (a) plain binary COPY into the partitioned table (the median of
    three COPYs, each of every row in one transaction: one alone varies by a third from run to run) and
    (b) the ingest store path (COPY into staging + INSERT … ON CONFLICT), on the same database."""
    code = r'''
import gzip, json, os, sys, time
import django
django.setup()
from django.db import connection, transaction
from ingest import otlp_decode, store
from ingest.mappers import select_calls
from ingest.services import Attribution, call_row
from ingest.records import IngestCost
bodies = [gzip.decompress(b) for b in json.load(sys.stdin)]
t0 = time.perf_counter()
calls = []
for body in bodies:
    decoded = otlp_decode.decode_traces(body, "application/x-protobuf")
    calls.extend(select_calls(decoded.spans)[0])
decode_s = time.perf_counter() - t0
cost = IngestCost(None, "pending", None)
def rows(org):
    return [call_row(org, None, c, Attribution(None, None, ""), cost) for c in calls]
cols = ", ".join(store.LLMCALL.column_names)
def backend_cpu():  # this connection's server process CPU seconds (None when PostgreSQL runs on another machine)
    with connection.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        try:
            fields = open(f"/proc/{c.fetchone()[0]}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
results, ceilings, ceiling_cpu = {}, [], []
for label, org in (("copy_binary", 900001), ("copy_binary", 900003), ("copy_binary", 900005), ("store_path", 900002)):
    data = rows(org)
    with connection.cursor() as c:
        c.execute("CHECKPOINT")
    cpu0, t0 = backend_cpu(), time.perf_counter()
    if label == "copy_binary":
        with transaction.atomic(), connection.cursor() as c:
            with c.cursor.copy(f"COPY ingest_llmcall ({cols}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types([t for _, t in store.LLMCALL.columns])
                for r in data:
                    cp.write_row(r)
    else:
        for i in range(0, len(data), 100):  # one transaction per 100-row request, as ingest does
            store.write_batch(data[i:i + 100])
    results[label] = len(data) / (time.perf_counter() - t0)
    if label == "copy_binary":
        ceilings.append(round(results[label]))
        cpu1 = backend_cpu()
        ceiling_cpu.append(None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / len(data) * 1e6)
print(json.dumps({"decode_map_us_per_span": decode_s / len(calls) * 1e6,
                  "copy_binary_rows_per_s": sorted(ceilings)[1], "copy_binary_rows_per_s_by_try": ceilings,
                  "copy_binary_postgres_cpu_us_per_row": None if None in ceiling_cpu else round(sorted(ceiling_cpu)[1], 1),
                  "store_path_rows_per_s_100_per_batch": round(results["store_path"])}))
'''
    payload = json.dumps([b.decode("latin-1") for b in bodies])
    code = code.replace('json.load(sys.stdin)', '[s.encode("latin-1") for s in json.load(sys.stdin)]')
    run_env = {**env, "DJANGO_SETTINGS_MODULE": "observatory.settings"}
    run_env["DATABASE_URL"] = database_url(env)
    out = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, text=True, cwd=REPO, env=run_env)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"decode+map: {figures['decode_map_us_per_span']:.1f} µs/span; COPY binary ceiling (median of 3): "
          f"{figures['copy_binary_rows_per_s']:,} rows/s (PostgreSQL {figures['copy_binary_postgres_cpu_us_per_row']} µs/row); store path: {figures['store_path_rows_per_s_100_per_batch']:,} rows/s")
    return figures


if __name__ == "__main__":
    main()
