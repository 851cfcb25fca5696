"""Per-call overhead of the Observatory SDK wrapper against the raw openai client, measured in one
run beside the Langfuse and OpenLLMetry wrappers, on a short prompt and on a 100k-token one;
prints tables and writes bench/results/sdk_overhead-<UTC time>.json.

The headline is CPU of all threads per call, instrumented minus raw. Each wrapper runs in its own
subprocess with its own OTLP sink process, in interleaved rounds; inside it, raw and instrumented
calls alternate call by call (raw first, then instrumented first, ...) so that the machine's drift
falls on both alike. Per call the calling thread's CPU is read (`time.thread_time_ns`); the CPU of
every other thread of the process over the run (the exporters' background threads) and the
exporter's flush at the end are added to the instrumented side, so the background export is
counted however the exporter schedules it. A "control" run measures the raw client against itself
(the benchmark's zero; each run also reports the standard error of its +cpu). Raw and instrumented
calls go through the same client object: the peers patch openai's classes and ours the client's
resource, and each side's switch puts the patched method in and out.
Both run against a loopback fake OpenAI server in its own process (TCP_NODELAY), then with the
same canned answer served in-process by an httpx mock transport (no network, no server noise).
The load average before and after the run is recorded. Import cost (RSS and modules added by
importing each wrapper after openai) is measured in fresh processes.

    .venv/bin/python bench/sdk_overhead.py [--calls 3000] [--long-calls 1000] [--long-calls-ours 3000]
                                           [--rounds 5] [--mock-rounds 5]

On the 100k-token prompt the raw call's own CPU swings by hundreds of µs from call to call (the kernel's share of
a 425 KiB send, page faults of its buffers), so a round of 1,000 calls reads the SDK's cost with a standard error
of 6-20 µs: Observatory and the control make --long-calls-ours calls there, the peers (whose cost is milliseconds)
--long-calls.
"""

from __future__ import annotations

import argparse
import collections
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
RESULTS = ROOT / "bench" / "results"
CLIENTS = ("observatory", "langfuse", "openllmetry")
KINDS = ("control", *CLIENTS)
PROMPTS = ("short", "100k")
SYSTEM = {"role": "system", "content": "You are a terse assistant."}
# ~425 KiB of English text: about 100k tokens.
DOCUMENT = "".join(f"Clause {n}: the supplier delivers the goods listed in schedule {n % 97} on time. " for n in range(5600))
PROMPT_MESSAGES = {
    "short": [SYSTEM, {"role": "user", "content": "Say hello."}],
    "100k": [SYSTEM, {"role": "user", "content": "Summarize this contract in one line:\n\n" + DOCUMENT}],
}
IMPORTS = {
    "observatory": ["observatory_sdk"],
    "langfuse": ["langfuse", "langfuse.openai"],
    "openllmetry": [
        "opentelemetry.instrumentation.openai",
        "opentelemetry.sdk.trace",
        "opentelemetry.sdk.trace.export",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    ],
}


def _fakes() -> Any:
    sys.path.insert(0, str(ROOT / "tests" / "sdk"))
    import sdk_fakes

    return sdk_fakes


def serve(kind: str) -> None:
    """Child process: a fake provider or an OTLP sink on loopback until stdin closes."""
    fakes = _fakes()
    if kind == "provider":
        server = fakes.FakeProviderServer()
        # The tests' fake keeps every request it gets; here nobody reads them, and a run of 100k-token calls kept
        # tens of GB (the kernel killed it): the machine's memory pressure fell on every client alike.
        server.requests = collections.deque(maxlen=16)
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


def _set_langfuse_env(sink_url: str) -> None:
    os.environ.update(
        {
            "LANGFUSE_PUBLIC_KEY": "pk-lf-bench",
            "LANGFUSE_SECRET_KEY": "sk-lf-bench",
            "LANGFUSE_HOST": sink_url,
            "LANGFUSE_BASE_URL": sink_url,
        }
    )


def _make_clients(kind: str, provider_url: str, sink_url: str) -> tuple[Any, Any, Any, Any]:
    """(raw client, instrumented client, flush of the telemetry, switch(on) of the instrumentation)."""
    import openai
    from openai.resources.chat.completions import Completions

    base_url = provider_url + "/v1"
    options: dict[str, Any] = {"base_url": base_url, "api_key": "sk-bench", "max_retries": 0}
    if provider_url == "mock":
        options.update(base_url="http://mock.invalid/v1", http_client=_mock_http_client())
    raw = openai.OpenAI(**options)
    if kind == "control":
        return raw, raw, lambda: None, lambda on: None
    if kind == "observatory":
        sys.path.insert(0, str(ROOT / "sdk"))
        import observatory_sdk

        observatory_sdk.init(endpoint=sink_url, api_key="obs-bench", team="bench", product="overhead")
        # One client, as for the peers: wrap() sets the observed method on the client's resource object, and the
        # switch puts the plain one back for raw calls (two client objects differ by several µs per call either way).
        completions = raw.chat.completions
        plain = completions.create
        observatory_sdk.wrap(raw)
        observed = completions.create

        def switch_observatory(on: bool) -> None:
            completions.create = observed if on else plain

        return raw, raw, lambda: observatory_sdk.flush(60), switch_observatory
    original = Completions.__dict__["create"]
    if kind == "langfuse":
        _set_langfuse_env(sink_url)
        from langfuse import get_client
        from langfuse.openai import openai as langfuse_openai

        langfuse = get_client()
        client, flush = langfuse_openai.OpenAI(**options), langfuse.flush
    elif kind == "openllmetry":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sink_url + "/v1/traces")))
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        client, flush = openai.OpenAI(**options), lambda: provider.force_flush(60_000)
    else:
        raise ValueError(kind)
    patched = Completions.__dict__["create"]
    if patched is original:
        raise RuntimeError(f"{kind} did not patch Completions.create")

    def switch(on: bool) -> None:
        Completions.create = patched if on else original

    return client, client, flush, switch


def _pairs(
    raw: Any, client: Any, switch: Any, messages: list[dict[str, str]], pairs: int
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """`pairs` raw and instrumented calls, alternating call by call (raw first, then instrumented first, ...); per
    call the calling thread's CPU (`time.thread_time_ns`) and the wall time, in ns, by side."""
    cpu: dict[str, list[int]] = {"raw": [], "instrumented": []}
    wall: dict[str, list[int]] = {"raw": [], "instrumented": []}
    sides = {"raw": (raw, False), "instrumented": (client, True)}
    orders = (("raw", "instrumented"), ("instrumented", "raw"))
    thread_ns, clock_ns = time.thread_time_ns, time.perf_counter_ns
    for index in range(pairs):
        for side in orders[index % 2]:
            side_client, on = sides[side]
            switch(on)
            cpu_start, wall_start = thread_ns(), clock_ns()
            side_client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=100)
            wall[side].append(clock_ns() - wall_start)
            cpu[side].append(thread_ns() - cpu_start)
    return cpu, wall


def run_client(kind: str, provider_url: str, sink_url: str, calls: int, prompt: str) -> None:
    """Child process: raw and instrumented calls alternating call by call; prints both sides as JSON.

    Alternating each call (rather than blocks of calls) puts the machine's drift on both sides alike: on a shared
    2-core machine, blocks of 60-100 calls measured a client against itself at -9 to -52 µs per call. Per call the
    calling thread's CPU is read (`time.thread_time_ns`, the same cost on both sides); every other thread's CPU over
    the run (the exporters' background threads) and the exporter's final flush are added to the instrumented side
    (the raw client has no threads). The "control" kind measures the raw client against itself: the benchmark's
    zero and its noise."""
    import gc

    messages = PROMPT_MESSAGES[prompt]
    try:
        raw, client, flush, switch = _make_clients(kind, provider_url, sink_url)
    except Exception as error:  # a missing peer is reported, not faked
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
        return
    _pairs(raw, client, switch, messages, max(10, calls // 10))
    switch(True)
    flush()
    gc.collect()
    rss_before = _rss_kib()
    process_start, thread_start = time.process_time_ns(), time.thread_time_ns()
    cpu, wall = _pairs(raw, client, switch, messages, calls)
    flush_cpu, flush_wall = time.thread_time_ns(), time.perf_counter_ns()
    flush()
    flush_cpu, flush_wall = time.thread_time_ns() - flush_cpu, time.perf_counter_ns() - flush_wall
    background = (time.process_time_ns() - process_start) - (time.thread_time_ns() - thread_start)
    added = [instrumented - raw_cpu for instrumented, raw_cpu in zip(cpu["instrumented"], cpu["raw"], strict=True)]
    result: dict[str, Any] = {
        "calls": calls,
        "rss_growth_kib": _rss_kib() - rss_before,
        "background_cpu_us_per_call": background / calls / 1000,
        "flush_cpu_us_per_call": flush_cpu / calls / 1000,
        # the standard error of the per-pair differences' mean: how far this run's +cpu may be from its own truth
        "added_cpu_stderr_us": statistics.stdev(added) / calls**0.5 / 1000,
    }
    extra = {"raw": (0, 0), "instrumented": (flush_cpu + background, flush_wall)}
    for side in ("raw", "instrumented"):
        values = sorted(wall[side])
        extra_cpu, extra_wall = extra[side]
        result[side] = {
            "median_us": values[len(values) // 2] / 1000,
            "p99_us": values[int(len(values) * 0.99)] / 1000,
            "mean_us": statistics.fmean(values) / 1000,
            "with_flush_us_per_call": (sum(values) + extra_wall) / calls / 1000,
            "cpu_us_per_call": (sum(cpu[side]) + extra_cpu) / calls / 1000,
        }
    print(json.dumps(result), flush=True)


def import_cost(kind: str) -> None:
    """Child process: RSS and modules added by importing `kind`'s wrapper after openai."""
    import openai  # noqa: F401

    if kind == "observatory":
        sys.path.insert(0, str(ROOT / "sdk"))
    if kind == "langfuse":
        _set_langfuse_env("http://127.0.0.1:9")
    rss, modules = _rss_kib(), len(sys.modules)
    for name in IMPORTS[kind]:
        __import__(name)
    loaded = sorted(sys.modules)
    print(
        json.dumps(
            {
                "rss_kib": _rss_kib() - rss,
                "modules": len(sys.modules) - modules,
                "opentelemetry_sdk_loaded": "opentelemetry.sdk" in loaded,
                "protobuf_loaded": "google.protobuf" in loaded,
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


def _measure(kind: str, provider_url: str, calls: int, prompt: str) -> dict[str, Any]:
    sink, sink_url = _start(["--serve", "sink"])
    try:
        command = [sys.executable, __file__, "--client", kind, "--provider-url", provider_url, "--sink-url", sink_url]
        command += ["--calls", str(calls), "--prompt", prompt]
        output = subprocess.run(command, capture_output=True, text=True, timeout=900)
        lines = [line for line in output.stdout.splitlines() if line.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"error": output.stderr.strip()[-500:] or "no output"}
    finally:
        received, _ = sink.communicate(timeout=120)
    result["sink"] = json.loads(received.strip().splitlines()[-1]) if received.strip() else {}
    return result


def _import_costs() -> dict[str, Any]:
    """Per wrapper: the median of three fresh processes."""
    costs: dict[str, Any] = {}
    for kind in CLIENTS:
        runs = []
        for _ in range(3):
            output = subprocess.run(
                [sys.executable, __file__, "--import-cost", kind], capture_output=True, text=True, timeout=120
            )
            lines = [line for line in output.stdout.splitlines() if line.startswith("{")]
            if not lines:
                costs[kind] = {"error": output.stderr.strip()[-300:] or "no output"}
                break
            runs.append(json.loads(lines[-1]))
        else:
            costs[kind] = {**runs[0], "rss_kib": statistics.median(run["rss_kib"] for run in runs)}
    return costs


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _python_loop_ms() -> float:
    """bench/rollup.py's measure of how fast this machine runs plain Python right now (same-named machines differ)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rollup_bench", Path(__file__).with_name("rollup.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.python_loop_ms()


def _machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python_loop_ms_at_start": _python_loop_ms(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


VERSIONED = (
    "openai",
    "httpx",
    "observatory-sdk",
    "langfuse",
    "opentelemetry-instrumentation-openai",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "protobuf",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000, help="calls per run and side, short prompt")
    parser.add_argument("--long-calls", type=int, default=1000, help="calls per run and side, 100k-token prompt")
    parser.add_argument("--long-calls-ours", type=int, default=3000,
                        help="the same for Observatory and the control (see the module docstring)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mock-rounds", type=int, default=5)
    parser.add_argument("--serve", choices=("provider", "sink"))
    parser.add_argument("--client", choices=KINDS)
    parser.add_argument("--import-cost", choices=CLIENTS)
    parser.add_argument("--prompt", choices=PROMPTS, default="short")
    parser.add_argument("--provider-url")
    parser.add_argument("--sink-url")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.import_cost:
        import_cost(args.import_cost)
        return
    if args.client:
        run_client(args.client, args.provider_url, args.sink_url, args.calls, args.prompt)
        return

    started = time.strftime("%Y%m%dT%H%MZ", time.gmtime())
    machine = _machine()
    calls = {"short": dict.fromkeys(KINDS, args.calls),
             "100k": {kind: args.long_calls_ours if kind in ("control", "observatory") else args.long_calls for kind in KINDS}}
    imports = _import_costs()
    provider, provider_url = _start(["--serve", "provider"])
    try:
        loopback = {prompt: _run_rounds(provider_url, args.rounds, calls[prompt], prompt, "loopback") for prompt in PROMPTS}
    finally:
        provider.communicate(timeout=10)
    in_process = {prompt: _run_rounds("mock", args.mock_rounds, calls[prompt], prompt, "in-process") for prompt in PROMPTS}
    machine["load_average_at_end"] = os.getloadavg()
    machine["python_loop_ms_at_end"] = _python_loop_ms()

    summary = {
        "command": "python bench/sdk_overhead.py " + " ".join(sys.argv[1:]),
        "started_utc": started,
        "calls_per_run": calls,
        "design": "raw and instrumented calls alternate call by call; control: the raw client against itself",
        "prompts": {prompt: sum(len(m["content"]) for m in PROMPT_MESSAGES[prompt]) for prompt in PROMPTS},
        "machine": machine,
        "versions": {name: _version(name) for name in VERSIONED},
        "import_cost_after_openai": imports,
        "loopback_server": {prompt: _summarize(runs) for prompt, runs in loopback.items()},
        "in_process_mock_transport": {prompt: _summarize(runs) for prompt, runs in in_process.items()},
    }
    _print_headline(summary)
    for label, key in (
        ("loopback fake server (own process, TCP_NODELAY)", "loopback_server"),
        ("in-process mock transport", "in_process_mock_transport"),
    ):
        for prompt in PROMPTS:
            _print_table(f"{label}, {prompt} prompt", summary[key][prompt], calls[prompt])
    print("raw: the uninstrumented client, called alternately with the instrumented one in the same subprocess;")
    print("+median/+p99/+cpu/+flush: instrumented minus raw, median over rounds; +cpu: CPU of all threads of the")
    print("process per call, background threads and the exporter's final flush included; +flush: wall time per call with it.")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"sdk_overhead-{started}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten to {path.relative_to(ROOT)}")


def _run_rounds(
    provider_url: str, rounds: int, calls: dict[str, int], prompt: str, label: str
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for round_number in range(rounds):
        for kind in KINDS:
            result = _measure(kind, provider_url, calls[kind], prompt)
            runs[kind].append(result)
            status = result.get("error") or (
                f"+cpu {result['instrumented']['cpu_us_per_call'] - result['raw']['cpu_us_per_call']:.0f} µs, "
                f"± {result['added_cpu_stderr_us']:.1f}, raw cpu {result['raw']['cpu_us_per_call']:.0f} µs, "
                f"spans {result['sink'].get('spans')}"
            )
            print(f"{label} {prompt} round {round_number + 1} {kind:12s} {status}", file=sys.stderr, flush=True)
    return runs


_ADDED = ("cpu_us_per_call", "median_us", "p99_us", "with_flush_us_per_call")


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
            "raw_cpu_us_per_call": middle("raw", "cpu_us_per_call"),
            "raw_median_us": middle("raw", "median_us"),
            "median_us": middle("instrumented", "median_us"),
            "p99_us": middle("instrumented", "p99_us"),
            "rss_growth_kib": round(statistics.median(run["rss_growth_kib"] for run in good)),
            "background_cpu_us_per_call": round(statistics.median(run["background_cpu_us_per_call"] for run in good), 1),
            "added_cpu_stderr_us_by_round": [round(run["added_cpu_stderr_us"], 1) for run in good],
            "spans_received_per_run": [run["sink"].get("spans") for run in good],
        }
        for key in _ADDED:
            added = [run["instrumented"][key] - run["raw"][key] for run in good]
            entry[f"added_{key}"] = round(statistics.median(added), 1)
            if key == "cpu_us_per_call":
                entry["added_cpu_us_per_call_by_round"] = [round(value, 1) for value in added]
        entry["rounds"] = good
        clients[kind] = entry
    return {"rounds": len(next(iter(runs.values()))), "clients": clients}


def _cpu(summary: dict[str, Any], mode: str, prompt: str, kind: str) -> float | None:
    entry = summary[mode][prompt]["clients"][kind]
    return None if "error" in entry else entry["added_cpu_us_per_call"]


def _print_headline(summary: dict[str, Any]) -> None:
    print("\nCPU of all threads added per chat call (µs, median over rounds; background export included)")
    header = f"{'mode / prompt':28s} " + " ".join(f"{kind:>12s}" for kind in KINDS) + "   peers / ours"
    print(header)
    print("-" * len(header))
    for mode, label in (("loopback_server", "loopback"), ("in_process_mock_transport", "in-process")):
        for prompt in PROMPTS:
            values = [_cpu(summary, mode, prompt, kind) for kind in KINDS]
            cells = " ".join(f"{'-' if value is None else f'{value:+.1f}':>12s}" for value in values)
            ours = values[1]
            ratios = ", ".join(f"{peer / ours:.1f}x" if ours and ours > 0 and peer is not None else "-" for peer in values[2:])
            print(f"{label + ' / ' + prompt:28s} {cells}   {ratios}")
    print("\nimport after openai: RSS KiB / modules / loads opentelemetry-sdk / loads protobuf")
    for kind, cost in summary["import_cost_after_openai"].items():
        if "error" in cost:
            print(f"{kind:12s} not measured: {cost['error']}")
            continue
        print(
            f"{kind:12s} {cost['rss_kib']:8.0f} {cost['modules']:6d} "
            f"{cost['opentelemetry_sdk_loaded']!s:>6s} {cost['protobuf_loaded']!s:>6s}"
        )


def _print_table(title: str, summary: dict[str, Any], calls: dict[str, int]) -> None:
    counts = "/".join(str(count) for count in dict.fromkeys(calls.values()))
    print(f"\n{title}: chat.completions.create, {counts} calls (see calls_per_run) x {summary['rounds']} rounds, µs per call")
    header = (
        f"{'client':12s} {'raw cpu':>8s} {'raw':>8s} {'median':>8s} {'p99':>8s} "
        f"{'+cpu':>8s} {'+median':>8s} {'+p99':>8s} {'+flush':>8s} {'RSS KiB':>8s}"
    )
    print(header)
    print("-" * len(header))
    for kind, entry in summary["clients"].items():
        if "error" in entry:
            print(f"{kind:12s} not measured: {entry['error']}")
            continue
        cells = " ".join(f"{entry[f'added_{key}']:8.1f}" for key in _ADDED)
        print(
            f"{kind:12s} {entry['raw_cpu_us_per_call']:8.1f} {entry['raw_median_us']:8.1f} {entry['median_us']:8.1f} "
            f"{entry['p99_us']:8.1f} {cells} {entry['rss_growth_kib']:8d}"
        )


if __name__ == "__main__":
    main()
