"""Ingest throughput over OTLP/gRPC beside OTLP/HTTP: the same bodies (bench/ingest.py's spans, gzip on the wire),
the same client processes, one `observatory up` serving both, measured in the same run: rounds alternate HTTP and
gRPC (new spans each time) and the best round of each counts, so neither gains from going second on a busy machine.

    .venv/bin/python bench/ingest_grpc.py [--requests 200] [--spans 512] [--clients 2] [--workers 3] [--grpc-threads 8] [--rounds 2]

Prints every round and writes bench/results/ingest_grpc.json. Uses a throwaway OBSERVATORY_HOME (embedded
PostgreSQL) unless DATABASE_URL is set; the per-key rate limit is off so that neither run is throttled.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import importlib.util
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _bench_ingest():
    """bench/ingest.py, whose request generator (make_body) and free_port this bench shares."""
    spec = importlib.util.spec_from_file_location("bench_ingest", REPO / "bench" / "ingest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _make_body():
    return _bench_ingest().make_body


def http_client(port: int, key: str, bodies: list[bytes], results) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "Authorization": f"Bearer {key}"}
    failures = 0
    for body in bodies:
        conn.request("POST", "/v1/traces", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        failures += response.status != 200
    results.put(failures)


def grpc_client(port: int, key: str, bodies: list[bytes], results) -> None:
    import grpc

    messages = [gzip.decompress(body) for body in bodies]  # gRPC compresses each message itself
    failures = 0
    with grpc.insecure_channel(f"127.0.0.1:{port}", compression=grpc.Compression.Gzip,
                               options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        export = channel.unary_unary(TRACES)
        for message in messages:
            try:
                export(message, metadata=[("authorization", f"Bearer {key}")], timeout=60)
            except grpc.RpcError:
                failures += 1
    results.put(failures)


def run_clients(target, port: int, key: str, bodies: list[bytes], clients: int) -> tuple[float, int]:
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=target, args=(port, key, bodies[i::clients], queue)) for i in range(clients)]
    began = time.perf_counter()
    for proc in procs:
        proc.start()
    failures = sum(queue.get() for _ in procs)
    for proc in procs:
        proc.join()
    return time.perf_counter() - began, failures


def free_port() -> int:
    return _bench_ingest().free_port()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--grpc-threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="obs-bench-grpc-"))
    env = {**os.environ, "OBSERVATORY_HOME": str(home), "OBSERVATORY_INGEST_RATE_PER_KEY": "0",
           "OBSERVATORY_GRPC_THREADS": str(args.grpc_threads)}
    port, grpc_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-m", "observatory.cli", "up", "--no-celery", "--port", str(port),
                               "--grpc-port", str(grpc_port), "--workers", str(args.workers)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    rates = {"http": [], "grpc": []}
    try:
        key = _bench_ingest().printed_key(server)
        assert key, "observatory up did not print a key"
        make_body = _make_body()
        rng = random.Random(1)
        start_ns = time.time_ns() - 3600 * 10**9
        transports = (("http", http_client, port), ("grpc", grpc_client, grpc_port))
        for _, client, target_port in transports:
            run_clients(client, target_port, key, [make_body(args.spans, start_ns - 10**12, rng) for _ in range(10)],
                        args.clients)
        print(f"{args.rounds} rounds of {args.requests} requests × {args.spans} spans per transport", flush=True)
        batch = 0
        for round_no in range(1, args.rounds + 1):
            for transport, client, target_port in transports:
                bodies = [make_body(args.spans, start_ns + (batch + n) * 10**9, rng) for n in range(args.requests)]
                batch += args.requests
                elapsed, failures = run_clients(client, target_port, key, bodies, args.clients)
                spans = args.requests * args.spans
                rates[transport].append({"spans_per_s": round(spans / elapsed), "seconds": round(elapsed, 2),
                                          "failed_requests": failures})
                print(f"round {round_no} {transport.upper():>4}: {spans:,} spans in {elapsed:.2f} s = "
                      f"{spans / elapsed:,.0f} spans/s ({failures} failed requests)", flush=True)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)

    result = {
        "spans_per_request": args.spans, "requests_per_transport": args.requests, "client_processes": args.clients,
        "web_workers": args.workers, "grpc_threads": args.grpc_threads,
        **{f"{transport}_spans_per_s": max(r["spans_per_s"] for r in runs) for transport, runs in rates.items()},
        "runs": rates, "cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
    }
    result["grpc_share_of_http"] = round(result["grpc_spans_per_s"] / result["http_spans_per_s"], 3)
    print(json.dumps(result, indent=2))
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ingest_grpc.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
