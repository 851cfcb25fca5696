"""Per-call overhead of the Observatory SDK wrapper against the raw openai client, measured in one
run beside the Langfuse and OpenLLMetry wrappers; prints tables, writes bench/results/sdk_overhead.json.

Each wrapper runs in its own subprocess with its own OTLP sink process, in interleaved rounds.
Inside that subprocess the raw client is timed first, then the instrumented one: the overhead
is the difference within one process, which keeps process-to-process variance out of it. Both
run first against a loopback fake OpenAI server in its own process (TCP_NODELAY), then with the
same canned answer served in-process by an httpx mock transport (no network, no server noise).

    .venv/bin/python bench/sdk_overhead.py [--calls 2000] [--rounds 5] [--mock-rounds 3]
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
CLIENTS = ("observatory", "langfuse", "openllmetry")
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


def _mock_http_client() -> Any:
    """An httpx client answering every request in-process with the fake's chat completion."""
    import httpx2

    body = json.dumps(_fakes().chat_completion()).encode()
    headers = {"content-type": "application/json"}
    return httpx2.Client(transport=httpx2.MockTransport(lambda request: httpx2.Response(200, content=body, headers=headers)))


def _make_client(kind: str, provider_url: str, sink_url: str) -> tuple[Any, Any]:
    """The OpenAI client for `kind`, and a function that flushes its telemetry."""
    base_url = provider_url + "/v1"
    options: dict[str, Any] = {"base_url": base_url, "api_key": "sk-bench", "max_retries": 0}
    if provider_url == "mock":
        options.update(base_url="http://mock.invalid/v1", http_client=_mock_http_client())
    if kind == "raw":
        import openai

        return openai.OpenAI(**options), lambda: None
    if kind == "observatory":
        import openai

        sys.path.insert(0, str(ROOT / "sdk"))
        import observatory_sdk

        observatory_sdk.init(endpoint=sink_url, api_key="obs-bench", team="bench", product="overhead")
        client = observatory_sdk.wrap(openai.OpenAI(**options))
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
        client = langfuse_openai.OpenAI(**options)
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
        client = openai.OpenAI(**options)
        return client, lambda: provider.force_flush(30_000)
    raise ValueError(kind)


def _time_calls(client: Any, flush: Any, calls: int) -> dict[str, float]:
    """Warm up, then time `calls` chat calls one by one (the final flush timed separately)."""
    import gc

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
    flush()
    total_seconds = time.perf_counter() - wall_start
    cpu_seconds = time.process_time() - cpu_start
    timings.sort()
    return {
        "median_us": timings[len(timings) // 2] / 1000,
        "p99_us": timings[int(len(timings) * 0.99)] / 1000,
        "mean_us": statistics.fmean(timings) / 1000,
        "with_flush_us_per_call": total_seconds / calls * 1e6,
        "cpu_us_per_call": cpu_seconds / calls * 1e6,
        "rss_growth_kib": _rss_kib() - rss_before,
    }


def run_client(kind: str, provider_url: str, sink_url: str, calls: int) -> None:
    """Child process: the raw client, then `kind`'s instrumented one; prints both as JSON."""
    raw_client, no_flush = _make_client("raw", provider_url, sink_url)
    raw = _time_calls(raw_client, no_flush, calls)
    try:
        client, flush = _make_client(kind, provider_url, sink_url)
    except Exception as error:  # a missing peer is reported, not faked
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
        return
    print(json.dumps({"raw": raw, "instrumented": _time_calls(client, flush, calls)}), flush=True)


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
            [
                sys.executable,
                __file__,
                "--client",
                kind,
                "--provider-url",
                provider_url,
                "--sink-url",
                sink_url,
                "--calls",
                str(calls),
            ],
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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mock-rounds", type=int, default=3)
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
    try:
        loopback = _run_rounds(provider_url, args.rounds, args.calls, "loopback")
    finally:
        provider.communicate(timeout=10)
    in_process = _run_rounds("mock", args.mock_rounds, args.calls, "in-process")

    summary = {
        "calls_per_run": args.calls,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": {
            name: _version(name)
            for name in (
                "openai",
                "observatory-sdk",
                "langfuse",
                "opentelemetry-instrumentation-openai",
                "opentelemetry-sdk",
            )
        },
        "loopback_server": _summarize(loopback),
        "in_process_mock_transport": _summarize(in_process),
    }
    _print_table("loopback fake server (own process, TCP_NODELAY)", summary["loopback_server"], args.calls)
    _print_table("in-process mock transport", summary["in_process_mock_transport"], args.calls)
    print("raw: the uninstrumented client timed in the same subprocess just before; +median/+p99/+cpu/+flush:")
    print("instrumented minus raw, median over rounds; +cpu counts process CPU incl. background threads;")
    print("+flush is wall time per call including the final flush; RSS: growth over the timed calls.")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


def _run_rounds(provider_url: str, rounds: int, calls: int, label: str) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CLIENTS}
    for round_number in range(rounds):
        for kind in CLIENTS:
            result = _measure(kind, provider_url, calls)
            runs[kind].append(result)
            status = result.get("error") or (
                f"median {result['instrumented']['median_us']:.0f} µs, raw {result['raw']['median_us']:.0f} µs"
            )
            print(f"{label} round {round_number + 1} {kind:12s} {status}", file=sys.stderr, flush=True)
    return runs


_ADDED = ("median_us", "p99_us", "cpu_us_per_call", "with_flush_us_per_call")


def _summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per client: medians over rounds of the raw and instrumented figures, and of the per-round
    differences (instrumented minus raw of the same subprocess)."""
    clients: dict[str, Any] = {}
    for kind, results in runs.items():
        good = [run for run in results if "error" not in run]
        if not good:
            clients[kind] = {"error": results[0].get("error", "no result") if results else "not run"}
            continue

        def middle(side: str, key: str, good: list[dict[str, Any]] = good) -> float:
            return round(statistics.median(run[side][key] for run in good), 1)

        entry: dict[str, Any] = {
            "raw_median_us": middle("raw", "median_us"),
            "median_us": middle("instrumented", "median_us"),
            "p99_us": middle("instrumented", "p99_us"),
            "rss_growth_kib": round(middle("instrumented", "rss_growth_kib")),
            "spans_received_per_run": [run["sink"].get("spans") for run in good],
        }
        for key in _ADDED:
            entry[f"added_{key}"] = round(statistics.median(run["instrumented"][key] - run["raw"][key] for run in good), 1)
        entry["rounds"] = good
        clients[kind] = entry
    return {"rounds": len(next(iter(runs.values()))), "clients": clients}


def _print_table(title: str, summary: dict[str, Any], calls: int) -> None:
    print(f"\n{title}: chat.completions.create, {calls} calls x {summary['rounds']} rounds, µs per call")
    header = (
        f"{'client':12s} {'raw':>8s} {'median':>8s} {'p99':>8s} "
        f"{'+median':>8s} {'+p99':>8s} {'+cpu':>8s} {'+flush':>8s} {'RSS KiB':>8s}"
    )
    print(header)
    print("-" * len(header))
    for kind, entry in summary["clients"].items():
        if "error" in entry:
            print(f"{kind:12s} not measured: {entry['error']}")
            continue
        cells = " ".join(f"{entry[f'added_{key}']:8.1f}" for key in _ADDED)
        print(
            f"{kind:12s} {entry['raw_median_us']:8.1f} {entry['median_us']:8.1f} {entry['p99_us']:8.1f} "
            f"{cells} {entry['rss_growth_kib']:8d}"
        )


if __name__ == "__main__":
    main()
