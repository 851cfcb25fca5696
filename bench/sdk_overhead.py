"""Per-call overhead of the Observatory SDK wrapper against the raw openai client, measured in one
run beside the Langfuse and OpenLLMetry wrappers; prints a table, writes bench/results/sdk_overhead.json.

Every client runs in its own subprocess against the same loopback fake OpenAI server (its own
process, TCP_NODELAY) and its own OTLP sink process, in interleaved rounds.

    .venv/bin/python bench/sdk_overhead.py [--calls 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "sdk_overhead.json"
CLIENTS = ("raw", "observatory", "langfuse", "openllmetry")
WARMUP_CALLS = 200
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello."},
]


def _fakes() -> Any:
    sys.path.insert(0, str(ROOT / "tests" / "sdk"))
    import sdk_fakes

    return sdk_fakes


def serve(kind: str) -> None:
    """Child process: a fake provider or an OTLP sink on loopback until stdin closes."""
    fakes = _fakes()
    if kind == "provider":
        server = fakes.FakeProviderServer()
        print(server.url, flush=True)
        sys.stdin.read()
        return
    sink = fakes.OtlpSink()
    print(sink.endpoint, flush=True)
    sys.stdin.read()
    with sink.lock:
        scopes: dict[str, int] = {}
        for span in sink.spans:
            scopes[span["scope"]] = scopes.get(span["scope"], 0) + 1
    print(json.dumps({"spans": len(sink.spans), "by_scope": scopes}), flush=True)


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _make_client(kind: str, provider_url: str, sink_url: str) -> tuple[Any, Any]:
    """The OpenAI client for `kind`, and a function that flushes its telemetry."""
    base_url = provider_url + "/v1"
    if kind == "raw":
        import openai

        return openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0), lambda: None
    if kind == "observatory":
        import openai

        sys.path.insert(0, str(ROOT / "sdk"))
        import observatory_sdk

        observatory_sdk.init(endpoint=sink_url, api_key="obs-bench", team="bench", product="overhead")
        client = observatory_sdk.wrap(openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0))
        return client, lambda: observatory_sdk.flush(30)
    if kind == "langfuse":
        os.environ.update(
            {
                "LANGFUSE_PUBLIC_KEY": "pk-lf-bench",
                "LANGFUSE_SECRET_KEY": "sk-lf-bench",
                "LANGFUSE_HOST": sink_url,
                "LANGFUSE_BASE_URL": sink_url,
            }
        )
        from langfuse import get_client
        from langfuse.openai import openai as langfuse_openai

        langfuse = get_client()
        client = langfuse_openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
        return client, langfuse.flush
    if kind == "openllmetry":
        import openai
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sink_url + "/v1/traces")))
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        client = openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
        return client, lambda: provider.force_flush(30_000)
    raise ValueError(kind)


def run_client(kind: str, provider_url: str, sink_url: str, calls: int) -> None:
    """Child process: time `calls` chat calls one by one; print the figures as JSON."""
    import gc

    try:
        client, flush = _make_client(kind, provider_url, sink_url)
    except Exception as error:  # noqa: BLE001 - a missing peer is reported, not faked
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
        return
    for _ in range(WARMUP_CALLS):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100)
    flush()
    gc.collect()
    rss_before = _rss_kib()
    timings = []
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for _ in range(calls):
        began = time.perf_counter_ns()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100)
        timings.append(time.perf_counter_ns() - began)
    loop_seconds = time.perf_counter() - wall_start
    flush()
    total_seconds = time.perf_counter() - wall_start
    cpu_seconds = time.process_time() - cpu_start
    timings.sort()
    print(
        json.dumps(
            {
                "median_us": timings[len(timings) // 2] / 1000,
                "p99_us": timings[int(len(timings) * 0.99)] / 1000,
                "mean_us": statistics.fmean(timings) / 1000,
                "loop_us_per_call": loop_seconds / calls * 1e6,
                "with_flush_us_per_call": total_seconds / calls * 1e6,
                "cpu_us_per_call": cpu_seconds / calls * 1e6,
                "rss_growth_kib": _rss_kib() - rss_before,
            }
        ),
        flush=True,
    )


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _measure(kind: str, provider_url: str, calls: int) -> dict[str, Any]:
    sink, sink_url = _start(["--serve", "sink"])
    try:
        output = subprocess.run(
            [sys.executable, __file__, "--client", kind, "--provider-url", provider_url, "--sink-url", sink_url,
             "--calls", str(calls)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = [line for line in output.stdout.splitlines() if line.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"error": output.stderr.strip()[-500:] or "no output"}
    finally:
        received, _ = sink.communicate(timeout=30)
    result["sink"] = json.loads(received.strip().splitlines()[-1]) if received.strip() else {}
    return result


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=("provider", "sink"))
    parser.add_argument("--client", choices=CLIENTS)
    parser.add_argument("--provider-url")
    parser.add_argument("--sink-url")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.client:
        run_client(args.client, args.provider_url, args.sink_url, args.calls)
        return

    provider, provider_url = _start(["--serve", "provider"])
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CLIENTS}
    try:
        for round_number in range(args.rounds):
            for kind in CLIENTS:
                result = _measure(kind, provider_url, args.calls)
                runs[kind].append(result)
                status = result.get("error") or f"median {result['median_us']:.0f} µs"
                print(f"round {round_number + 1} {kind:12s} {status}", file=sys.stderr, flush=True)
    finally:
        provider.communicate(timeout=10)

    summary = _summarize(runs, args.calls)
    _print_table(summary)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


def _summarize(runs: dict[str, list[dict[str, Any]]], calls: int) -> dict[str, Any]:
    ok = {kind: [run for run in results if "error" not in run] for kind, results in runs.items()}
    raw = ok["raw"]
    clients: dict[str, Any] = {}
    for kind, results in runs.items():
        good = ok[kind]
        if not good:
            clients[kind] = {"error": results[0].get("error", "no result") if results else "not run"}
            continue

        def middle(key: str, good: list[dict[str, Any]] = good) -> float:
            return statistics.median(run[key] for run in good)

        entry = {
            "median_us": round(middle("median_us"), 1),
            "p99_us": round(middle("p99_us"), 1),
            "cpu_us_per_call": round(middle("cpu_us_per_call"), 1),
            "with_flush_us_per_call": round(middle("with_flush_us_per_call"), 1),
            "rss_growth_kib": round(middle("rss_growth_kib")),
            "spans_received_per_run": [run["sink"].get("spans") for run in good],
            "rounds": good,
        }
        if kind != "raw" and raw:
            # Added cost per round against the raw run of the same round, then the median of those.
            pairs = list(zip(raw, good, strict=False))
            for key in ("median_us", "p99_us", "cpu_us_per_call", "with_flush_us_per_call"):
                entry[f"added_{key}"] = round(statistics.median(run[key] - base[key] for base, run in pairs), 1)
        clients[kind] = entry
    return {
        "calls_per_run": calls,
        "rounds": len(next(iter(runs.values()))),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": {
            name: _version(name)
            for name in ("openai", "observatory-sdk", "langfuse", "opentelemetry-instrumentation-openai",
                         "opentelemetry-sdk")
        },
        "clients": clients,
    }


def _print_table(summary: dict[str, Any]) -> None:
    print(f"\nchat.completions.create, {summary['calls_per_run']} calls x {summary['rounds']} rounds, µs per call")
    header = f"{'client':12s} {'median':>8s} {'p99':>8s} {'+median':>8s} {'+p99':>8s} {'+cpu':>8s} {'+flush':>8s} {'RSS KiB':>8s}"
    print(header)
    print("-" * len(header))
    for kind, entry in summary["clients"].items():
        if "error" in entry:
            print(f"{kind:12s} not measured: {entry['error']}")
            continue
        added = [entry.get(f"added_{key}") for key in ("median_us", "p99_us", "cpu_us_per_call", "with_flush_us_per_call")]
        cells = " ".join(f"{value:8.1f}" if value is not None else f"{'-':>8s}" for value in added)
        print(f"{kind:12s} {entry['median_us']:8.1f} {entry['p99_us']:8.1f} {cells} {entry['rss_growth_kib']:8d}")
    print("+median/+p99: added vs raw in the same round; +cpu: process CPU incl. background threads;")
    print("+flush: wall time per call including the final flush; RSS: growth over the timed calls.")


if __name__ == "__main__":
    main()
