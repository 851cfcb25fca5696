"""What a gateway adds to a model call, measured in one run: direct calls to a fake provider on loopback vs the same
calls through Observatory's gateway, LiteLLM's proxy and Portkey's gateway — 1 and 50 concurrent clients, streaming
and not. Prints added latency p50/p99, added time to first token, requests/s and CPU per request of each gateway's
own processes (from /proc, so other work on a loaded machine does not count), and writes
bench/results/gateway-<UTC time>.json with the machine, its load average and the command.

- The fake provider (`--serve-fake`, its own process) is a raw asyncio protocol answering every POST with a canned
  OpenAI chat completion, or a canned event stream (6 events, `--gap-ms` apart, usage last when asked for).
- The client (this process) is a raw asyncio + httptools HTTP/1.1 client on keep-alive connections, so the client's
  own cost stays small and equal for all. Each (mode, clients) cell runs in rounds; each round runs every target in a
  rotated order, so the machine's drift falls on all of them alike. Added = the target's percentile minus direct's.
- Ours is started as `observatory gateway` on its own OBSERVATORY_HOME (embedded PostgreSQL, one organization whose
  OpenAI account points at the fake provider); its calls are recorded and priced as in production, and the
  PostgreSQL CPU that recording costs is reported beside (`db_cpu_ms_per_request`).
- LiteLLM: `litellm --config` (a model `gpt-4o-mini` → openai/gpt-4o-mini at the fake's api_base; no database), from
  the venv named by --litellm (its own venv, so its pins do not touch ours). Portkey: `node build/start-server.js`
  from --portkey (an `npm install @portkey-ai/gateway` directory), routed with `x-portkey-provider: openai` and
  `x-portkey-custom-host`. A peer that cannot be found or started is reported as such, never estimated.

    .venv/bin/python bench/gateway.py [--rounds 3] [--requests 300] [--requests-50 1500] [--litellm DIR] [--portkey DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MODEL = "gpt-4o-mini"
PROMPT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in five words."}]}
PARTS = ["Hello", " there", ",", " nice", " to", " meet"]
COMPLETION = {
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1733000000, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(PARTS)}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 14, "completion_tokens": 6, "total_tokens": 20},
}


# The fake provider ----------------------------------------------------------------------------------------------

class FakeProvider(asyncio.Protocol):
    gap = 0.001

    def connection_made(self, transport: asyncio.Transport) -> None:
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            if b"transfer-encoding: chunked" in head:
                body, rest = _dechunk(self.buffer[end + 4:])
                if body is None:
                    return
            else:
                length = re.search(rb"content-length:\s*(\d+)", head)
                size = int(length.group(1)) if length else 0
                if len(self.buffer) < end + 4 + size:
                    return
                body, rest = self.buffer[end + 4:end + 4 + size], self.buffer[end + 4 + size:]
            self.buffer = rest
            self.answer(json.loads(body or b"{}"))

    def answer(self, request: dict) -> None:
        if request.get("stream") is not True:
            payload = json.dumps(COMPLETION).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_bench\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(payload), payload))
            return
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\nx-request-id: req_bench\r\n"
                             b"transfer-encoding: chunked\r\n\r\n")
        events = [_chunk({"role": "assistant", "content": ""}, None)]
        events += [_chunk({"content": part}, None) for part in PARTS[:-1]]
        events.append(_chunk({"content": PARTS[-1]}, "stop"))
        if (request.get("stream_options") or {}).get("include_usage"):
            usage = {**_base_chunk(), "choices": [], "usage": COMPLETION["usage"]}
            events.append(b"data: " + json.dumps(usage).encode() + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        frames = [b"%x\r\n%s\r\n" % (len(event), event) for event in events]
        frames[-1] += b"0\r\n\r\n"
        self.transport.write(frames[0])
        groups = [*frames[1:5], b"".join(frames[5:])]  # each later than the one before: timers of equal time may swap
        loop = asyncio.get_running_loop()
        for index, group in enumerate(groups, 1):
            loop.call_later(self.gap * index, self._write, group)

    def _write(self, frame: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(frame)


def _base_chunk() -> dict:
    return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1733000000,
            "model": "gpt-4o-mini-2024-07-18"}


def _chunk(delta: dict, finish: str | None) -> bytes:
    chunk = {**_base_chunk(), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _dechunk(data: bytes) -> tuple[bytes | None, bytes]:
    body, at = b"", 0
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None, data
        size = int(data[at:line_end].split(b";")[0], 16)
        if len(data) < line_end + 2 + size + 2:
            return None, data
        body += data[line_end + 2:line_end + 2 + size]
        at = line_end + 2 + size + 2
        if size == 0:
            return body, data[at:]


def serve_fake(port: int, gap_ms: float) -> None:
    import uvloop

    FakeProvider.gap = gap_ms / 1000

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(FakeProvider, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


# The client -----------------------------------------------------------------------------------------------------

class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `request` sends prepared bytes and times the answer."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.first_body: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        if self.first_body is None:
            self.first_body = time.perf_counter()

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def request(self, raw: bytes) -> tuple[int, float, float]:
        self.first_body, self.waiter = None, asyncio.get_running_loop().create_future()
        sent = time.perf_counter()
        self.transport.write(raw)
        status = await self.waiter
        done = time.perf_counter()
        return status, done - sent, (self.first_body or done) - sent


async def connect(port: int) -> Connection:
    _, connection = await asyncio.get_running_loop().create_connection(Connection, "127.0.0.1", port)
    return connection


def prepared(target: dict, stream: bool) -> bytes:
    body = json.dumps({**PROMPT, "stream": True} if stream else PROMPT).encode()
    headers = {"host": f"127.0.0.1:{target['port']}", "content-type": "application/json", **target["headers"]}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {target['path']} HTTP/1.1\r\n{head}content-length: {len(body)}\r\n\r\n".encode() + body


async def run_block(target: dict, stream: bool, clients: int, requests: int, warmup: int) -> dict:
    raw = prepared(target, stream)
    connections = [await connect(target["port"]) for _ in range(clients)]
    latencies: list[float] = []
    firsts: list[float] = []
    errors: list[str] = []

    async def client(index: int, count: int, keep: bool) -> None:
        for _ in range(count):
            try:
                status, latency, first = await connections[index].request(raw)
            except (ConnectionError, RuntimeError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                connections[index] = await connect(target["port"])
                continue
            if status != 200:
                errors.append(f"HTTP {status}")
            elif keep:
                latencies.append(latency)
                firsts.append(first)

    await asyncio.gather(*(client(i, max(1, warmup // clients), False) for i in range(clients)))
    cpu_before = {name: cpu_seconds(*found) for name, found in target["processes"].items()}
    started = time.perf_counter()
    per_client = requests // clients
    await asyncio.gather(*(client(i, per_client, True) for i in range(clients)))
    elapsed = time.perf_counter() - started
    cpu = {name: cpu_seconds(*found) - cpu_before[name] for name, found in target["processes"].items()}
    for connection in connections:
        connection.transport.close()
    return {"latencies": latencies, "firsts": firsts, "elapsed": elapsed, "cpu": cpu, "errors": errors[:5],
            "error_count": len(errors)}


# Processes ------------------------------------------------------------------------------------------------------

def cpu_seconds(roots: list[int], skip_postgres: bool) -> float:
    """User + system CPU seconds of these processes and their descendants, found afresh (new backends count); an
    embedded PostgreSQL below a gateway is counted apart (`skip_postgres`)."""
    total = 0
    pids = {pid for root in roots for pid in process_tree(root)}
    for pid in pids:
        if skip_postgres and command_name(pid) == "postgres":
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime (children that exited are not ours to count)
    return total / CLOCK_TICKS


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float, method: str = "GET") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"no answer at {url} within {timeout:.0f} s")


def start_fake(gap_ms: float, logs: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve-fake", str(port), "--gap-ms", str(gap_ms)],
                               stdout=open(logs / "fake.log", "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.1)
    raise RuntimeError("the fake provider did not start")


SETUP = """
from billing.models import Price
from billing.services import load_default_catalog
from gateway.services import allow_upstream_host, set_provider_account
from observatory.services import create_api_key, get_or_create_organization
if not Price.objects.exists():
    load_default_catalog()
org = get_or_create_organization("Bench", "bench")
allow_upstream_host(org, "127.0.0.1:{port}")
set_provider_account(org, "openai", base_url="http://127.0.0.1:{port}/v1", api_key="sk-fake")
print("KEY=" + create_api_key(org, "bench").plaintext)
"""


def start_ours(fake_port: int, home: Path, logs: Path) -> tuple[subprocess.Popen, dict]:
    observatory = str(Path(sys.executable).parent / "observatory")
    env = {**os.environ, "OBSERVATORY_HOME": str(home), "HOME": str(home),
           "OBSERVATORY_GATEWAY_PRIVATE_NETWORKS": "127.0.0.0/8"}  # the fake provider is on loopback
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
        env.pop(name, None)
    with open(logs / "ours-setup.log", "w") as log:
        subprocess.run([observatory, "migrate", "--noinput"], env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
        out = subprocess.run([observatory, "shell", "-c", SETUP.format(port=fake_port)], env=env, check=True,
                             capture_output=True, text=True).stdout
    key = re.search(r"KEY=(\S+)", out).group(1)
    port = free_port()
    process = subprocess.Popen([observatory, "gateway", "--port", str(port)], env=env,
                               stdout=open(logs / "ours.log", "w"), stderr=subprocess.STDOUT)
    wait_for(f"http://127.0.0.1:{port}/healthz", process, 60)
    return process, {"port": port, "path": "/v1/chat/completions", "headers": {"authorization": f"Bearer {key}"},
                     "processes": {"gateway": ([process.pid], True), "database": (postmaster(home / "pgdata"), False)}}


def postmaster(pgdata: Path) -> list[int]:
    """The embedded PostgreSQL serving `pgdata` (it may run as another user, so found by its command line)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if words and words[0].endswith(b"/postgres") and str(pgdata).encode() in words:
            return [int(cmdline.parent.name)]
    return []


def start_litellm(venv: Path, fake_port: int, logs: Path) -> tuple[subprocess.Popen, dict]:
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        raise RuntimeError(f"LiteLLM is not installed at {binary} (pip install 'litellm[proxy]' into {venv})")
    config = logs / "litellm.yaml"
    master_key = "sk-bench-" + secrets.token_hex(16)  # LiteLLM refuses to start without one; no database needed
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: http://127.0.0.1:{fake_port}/v1\n"
        "      api_key: sk-fake\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  set_verbose: false\n"
        "general_settings:\n"
        f"  master_key: {master_key}\n"
    )
    port = free_port()
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "true",
           "HOME": str(logs)}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen([str(binary), "--config", str(config), "--port", str(port), "--host", "127.0.0.1",
                                "--num_workers", "1"], env=env, stdout=open(logs / "litellm.log", "w"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(f"http://127.0.0.1:{port}/health/liveliness", process, 180)
    return process, {"port": port, "path": "/v1/chat/completions", "headers": {"authorization": f"Bearer {master_key}"},
                     "processes": {"gateway": ([process.pid], False)}}


def start_portkey(directory: Path, fake_port: int, logs: Path) -> tuple[subprocess.Popen, dict]:
    script = directory / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    node = shutil.which("node")
    if not script.exists() or node is None:
        raise RuntimeError(f"Portkey's gateway is not installed at {script} (npm install @portkey-ai/gateway)")
    port = free_port()
    process = subprocess.Popen([node, str(script), f"--port={port}", "--headless"], cwd=directory,
                               env={**os.environ, "NODE_ENV": "production"}, stdout=open(logs / "portkey.log", "w"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(f"http://127.0.0.1:{port}/", process, 60)
    headers = {"authorization": "Bearer sk-fake", "x-portkey-provider": "openai",
               "x-portkey-custom-host": f"http://127.0.0.1:{fake_port}/v1"}
    return process, {"port": port, "path": "/v1/chat/completions", "headers": headers,
                     "processes": {"gateway": ([process.pid], False)}}


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


# Figures --------------------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def summarize(blocks: list[dict]) -> dict:
    latencies = [x for block in blocks for x in block["latencies"]]
    firsts = [x for block in blocks for x in block["firsts"]]
    done = len(latencies)
    cpu = {name: sum(block["cpu"][name] for block in blocks) for name in blocks[0]["cpu"]}
    errors = sum(block["error_count"] for block in blocks)
    if not done:
        return {"requests": 0, "errors": errors, "cpu_ms_per_request": None,
                "error_samples": [e for block in blocks for e in block["errors"]][:5]}
    return {
        "requests": done, "errors": sum(block["error_count"] for block in blocks),
        "error_samples": [e for block in blocks for e in block["errors"]][:5],
        "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
        "ttft_p50_ms": percentile(firsts, 0.5) * 1000, "ttft_p99_ms": percentile(firsts, 0.99) * 1000,
        "requests_per_s": done / sum(block["elapsed"] for block in blocks) if done else 0.0,
        "cpu_ms_per_request": cpu.get("gateway", 0.0) * 1000 / done if done else None,
        "db_cpu_ms_per_request": cpu["database"] * 1000 / done if "database" in cpu and done else None,
        "block_p50_ms": [round(statistics.median(block["latencies"]) * 1000, 3) for block in blocks if block["latencies"]],
    }


def added(result: dict, direct: dict) -> None:
    if not result["requests"]:
        return
    for name in ("p50_ms", "p99_ms", "ttft_p50_ms", "ttft_p99_ms"):
        result["added_" + name] = result[name] - direct[name]


def table(cells: dict) -> str:
    lines = [f"{'target':10} {'mode':7} {'clients':>7} {'p50':>8} {'p99':>8} {'+p50':>8} {'+p99':>8} {'+ttft50':>8} "
             f"{'req/s':>8} {'cpu/req':>8} {'db/req':>7}  (ms)"]
    for (mode, clients), targets in cells.items():
        for name, r in targets.items():
            if "skipped" in r:
                lines.append(f"{name:10} {mode:7} {clients:>7}  not measured: {r['skipped']}")
                continue
            if not r["requests"]:
                lines.append(f"{name:10} {mode:7} {clients:>7}  failed: all {r['errors']} requests errored "
                             f"({', '.join(sorted(set(r['error_samples'])))}; see its log)")
                continue
            plus = (f"{r['added_p50_ms']:8.2f} {r['added_p99_ms']:8.2f} {r['added_ttft_p50_ms']:8.2f}"
                    if name != "direct" else f"{'':8} {'':8} {'':8}")
            cpu = f"{r['cpu_ms_per_request']:8.3f}" if r["cpu_ms_per_request"] is not None else f"{'-':>8}"
            db = f"{r['db_cpu_ms_per_request']:7.3f}" if r["db_cpu_ms_per_request"] is not None else f"{'':7}"
            errors = f"  {r['errors']} errors" if r["errors"] else ""
            lines.append(f"{name:10} {mode:7} {clients:>7} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {plus} "
                         f"{r['requests_per_s']:8.0f} {cpu} {db}{errors}")
    return "\n".join(lines)


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def versions(args: argparse.Namespace) -> dict:
    found = {}
    try:
        out = subprocess.run([str(Path(args.litellm) / "bin" / "python"), "-c",
                              "import importlib.metadata as m; print(m.version('litellm'))"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
        found["litellm"] = out or None
    except (OSError, subprocess.TimeoutExpired):
        found["litellm"] = None
    package = Path(args.portkey) / "node_modules" / "@portkey-ai" / "gateway" / "package.json"
    found["portkey"] = json.loads(package.read_text())["version"] if package.exists() else None
    found["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("node") else None
    return found


async def measure(targets: dict, args: argparse.Namespace) -> dict:
    cells: dict = {}
    for stream in (False, True):
        for clients in (1, 50):
            requests = args.requests if clients == 1 else args.requests_50
            blocks: dict[str, list[dict]] = {name: [] for name in targets}
            names = list(targets)
            for round_number in range(args.rounds):
                shift = round_number % len(names)
                for name in names[shift:] + names[:shift]:
                    blocks[name].append(await run_block(targets[name], stream, clients, requests, args.warmup))
            cell = {name: summarize(found) for name, found in blocks.items()}
            for name, result in cell.items():
                if name != "direct":
                    added(result, cell["direct"])
            cells[("stream" if stream else "plain", clients)] = cell
            print(f"  measured {'streaming' if stream else 'plain'} × {clients} client(s)", flush=True)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--gap-ms", type=float, default=1.0, help="time between the fake stream's events (default 1)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per block with 1 client")
    parser.add_argument("--requests-50", type=int, default=1500, help="timed requests per block with 50 clients")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--litellm", default="/tmp/gwfast-peers/litellm-venv", help="venv with litellm[proxy]")
    parser.add_argument("--portkey", default="/tmp/gwfast-peers/portkey", help="dir with @portkey-ai/gateway installed")
    parser.add_argument("--home", default=str(Path(tempfile.gettempdir()) / "obs-bench-gateway"),
                        help="OBSERVATORY_HOME of the gateway under test (kept between runs)")
    parser.add_argument("--only", default="", help="comma-separated subset of ours,litellm,portkey")
    parser.add_argument("--tag", default="", help="suffix of the result file name")
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.serve_fake, args.gap_ms)
        return
    import uvloop

    logs = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    load_before = os.getloadavg()
    processes: list[subprocess.Popen] = []
    fake, fake_port = start_fake(args.gap_ms, logs)
    processes.append(fake)
    targets = {"direct": {"port": fake_port, "path": "/v1/chat/completions", "headers": {"authorization": "Bearer sk-fake"},
                          "processes": {"gateway": ([], False)}}}
    skipped: dict[str, str] = {}
    wanted = [name for name in ("ours", "litellm", "portkey") if not args.only or name in args.only.split(",")]
    starters = {"ours": lambda: start_ours(fake_port, Path(args.home), logs),
                "litellm": lambda: start_litellm(Path(args.litellm), fake_port, logs),
                "portkey": lambda: start_portkey(Path(args.portkey), fake_port, logs)}
    try:
        for name in wanted:
            print(f"starting {name} …", flush=True)
            try:
                process, target = starters[name]()
            except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                skipped[name] = f"could not be started: {exc} (logs in {logs})"
                print(f"  {name}: {skipped[name]}", flush=True)
                continue
            processes.append(process)
            targets[name] = target
        cells = uvloop.run(measure(targets, args))
    finally:
        for process in reversed(processes):
            stop(process)
    for cell in cells.values():
        for name, reason in skipped.items():
            cell[name] = {"skipped": reason}
    print()
    print(table(cells))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%MZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"gateway-{stamp}{'-' + args.tag if args.tag else ''}.json"
    report = {
        "benchmark": "gateway", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(), "versions": versions(args),
        "fake_provider": {"stream_events": len(PARTS) + 2, "gap_ms": args.gap_ms},
        "settings": {"rounds": args.rounds, "requests": args.requests, "requests_50": args.requests_50,
                     "warmup": args.warmup},
        "skipped": skipped,
        "cells": [{"mode": mode, "clients": clients, "targets": targets_}
                  for (mode, clients), targets_ in cells.items()],
        "notes": "added_* = the target's percentile minus direct's in the same cell; cpu_ms_per_request = user+system "
                 "CPU of the gateway's own processes / requests; db_cpu_ms_per_request = the embedded PostgreSQL's, "
                 "which only ours uses (it records every call).",
    }
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {path.relative_to(ROOT)} (logs in {logs})")


if __name__ == "__main__":
    main()
