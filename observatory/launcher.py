"""`observatory up`: embedded PostgreSQL, migrations (with the price catalog and call partitions), Celery worker and beat,
web server, OTLP/gRPC receiver, gateway.

Children run in their own sessions (so one Ctrl-C is handled once, here) and die with us
(PR_SET_PDEATHSIG) if this process is killed. Their logs go to <data dir>/logs/.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from observatory.config import load_config

PR_SET_PDEATHSIG = 1


class LaunchError(Exception):
    """Startup cannot go on; the message says why in plain words."""


def say(message: str) -> None:
    print(message, flush=True)


DEFAULT_GRPC_PORT = 4317
DEFAULT_GATEWAY_PORT = 4000


def check_port_free(host: str, port: int, option: str = "--port") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LaunchError(
                    f"port {host}:{port} is already in use — is Observatory (or something else) already running? "
                    f"Stop it, or pick another port with {option}."
                ) from None
            raise LaunchError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _child_setup() -> None:
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="observatory up", description="Run Observatory: database, workers and web.")
    parser.add_argument("--host", default=os.environ.get("OBSERVATORY_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("OBSERVATORY_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("OBSERVATORY_WEB_WORKERS", "0")) or None,
                        help="web server processes (default: CPU cores + 1)")
    parser.add_argument("--grpc-host", default=os.environ.get("OBSERVATORY_GRPC_HOST"),
                        help="address of the OTLP/gRPC receiver (default: --host)")
    parser.add_argument("--grpc-port", type=int, default=int(os.environ.get("OBSERVATORY_GRPC_PORT") or 0) or None,
                        help="port of the OTLP/gRPC receiver (default 4317; when 4317 is taken, e.g. by a local "
                             "Collector, `up` goes on without gRPC and says so)")
    parser.add_argument("--no-grpc", action="store_true", help="do not start the OTLP/gRPC receiver")
    parser.add_argument("--gateway-host", default=os.environ.get("OBSERVATORY_GATEWAY_HOST"),
                        help="address of the OpenAI/Anthropic-compatible gateway (default: --host)")
    parser.add_argument("--gateway-port", type=int, default=int(os.environ.get("OBSERVATORY_GATEWAY_PORT") or 0) or None,
                        help="port of the gateway (default 4000; when 4000 is taken, `up` goes on without the gateway "
                             "and says so)")
    parser.add_argument("--no-gateway", action="store_true", help="do not start the gateway")
    parser.add_argument("--demo", action="store_true", help="fill the app with realistic demo traffic")
    parser.add_argument("--no-celery", action="store_true", help="do not start the Celery worker and beat")
    return parser.parse_args(argv)


class Stack:
    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.children: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str]) -> None:
        log_file = open(self.log_dir / f"{name}.log", "ab")
        self.children[name] = subprocess.Popen(
            command, env=self.env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_child_setup,
        )

    def exited(self) -> str | None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                return name
        return None

    def log_tail(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join((self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.children.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def wait_until(check, timeout: float, stack: Stack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = stack.exited()
        if dead:
            raise LaunchError(f"the {dead} process stopped during startup. Its last log lines:\n{stack.log_tail(dead)}")
        if check():
            return
        time.sleep(0.1)
    raise LaunchError("startup timed out; see the logs in " + str(stack.log_dir))


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (our own localhost URL)
            return response.status == 200
    except OSError:
        return False


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1" if host in ("0.0.0.0", "") else host, port), timeout=1):  # noqa: S104
            return True
    except OSError:
        return False


def up(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        return _up(args)
    except LaunchError as exc:
        print(f"observatory up: {exc}", file=sys.stderr, flush=True)
        return 2


def _optional_listener(args: argparse.Namespace, name: str, default_port: int, consequence: str) -> None:
    """Settle the host and port of the gRPC receiver or the gateway (`name`). On its default port, something already
    listening means it is left out with a note; a port the user chose must be free."""
    host = getattr(args, f"{name}_host") or args.host
    setattr(args, f"{name}_host", host)
    if getattr(args, f"no_{name}"):
        return
    if getattr(args, f"{name}_port") is None:
        setattr(args, f"{name}_port", default_port)
        try:
            check_port_free(host, default_port)
        except LaunchError:
            say(f"  note: {host}:{default_port} is in use{consequence}. Use --{name}-port to pick another port.")
            setattr(args, f"no_{name}", True)
    else:
        check_port_free(host, getattr(args, f"{name}_port"), f"--{name}-port (or --no-{name})")


def _up(args: argparse.Namespace) -> int:
    config = load_config()
    check_port_free(args.host, args.port)
    _optional_listener(args, "grpc", DEFAULT_GRPC_PORT,
                       " (a local OpenTelemetry Collector?): the OTLP/gRPC receiver is not started; OTLP/HTTP works as usual")
    _optional_listener(args, "gateway", DEFAULT_GATEWAY_PORT,
                       ": the gateway is not started; the dashboard and ingest work as usual")
    data_dir = config.data_dir
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    say(f"Observatory: starting (data directory {data_dir})")

    stop_requested = []

    def request_stop(signum, _frame):
        stop_requested.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "observatory.settings"
    env.setdefault("SITE_URL", f"http://{args.host}:{args.port}")
    if not args.no_gateway:
        env["OBSERVATORY_GATEWAY_PORT"] = str(args.gateway_port)  # the port Settings → Gateway tells clients to use
    if config.embedded_database:
        from observatory.embedded_db import database_url, ensure_postgres

        say("  starting the embedded PostgreSQL …")
        started = time.monotonic()
        server = ensure_postgres(data_dir / "pgdata", database=config.database["NAME"])
        signal.signal(signal.SIGTERM, request_stop)
        env["DATABASE_URL"] = database_url(server, config.database["NAME"])
        os.environ["DATABASE_URL"] = env["DATABASE_URL"]
        say(f"  PostgreSQL is up ({time.monotonic() - started:.1f} s)")
    else:
        say("  using the database at DATABASE_URL")
    if config.embedded_broker:
        for folder in ("queue", "processed", "control"):
            (data_dir / "broker" / folder).mkdir(parents=True, exist_ok=True)

    os.environ["DJANGO_SETTINGS_MODULE"] = "observatory.settings"
    os.environ.setdefault("SITE_URL", env["SITE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from gateway.vault import ensure_key_file
    from observatory.services import ensure_first_admin

    say("  applying database migrations (they also load the price catalog and create the call partitions) …")
    call_command("migrate", interactive=False, verbosity=0)
    say("  " + price_catalog_status())
    first = ensure_first_admin()
    ensure_key_file()  # before the web and gateway processes start, so both use the same one
    connections.close_all()

    ready_file = data_dir / "worker.ready"
    ready_file.unlink(missing_ok=True)
    env["OBSERVATORY_WORKER_READY_FILE"] = str(ready_file)
    stack = Stack(log_dir, env)
    workers = args.workers or (os.cpu_count() or 1) + 1
    try:
        say(f"  starting the web server on http://{args.host}:{args.port} ({workers} workers) …")
        stack.start("web", [sys.executable, "-m", "gunicorn", "observatory.wsgi:application",
                            "--config", "python:observatory.gunicorn_conf",
                            "--bind", f"{args.host}:{args.port}", "--workers", str(workers),
                            "--graceful-timeout", "5", "--timeout", "60", "--log-level", "warning"])
        if not args.no_grpc:
            say(f"  starting the OTLP/gRPC receiver on {args.grpc_host}:{args.grpc_port} …")
            stack.start("grpc", [sys.executable, "-m", "observatory.cli", "grpc",
                                 "--host", args.grpc_host, "--port", str(args.grpc_port)])
        if not args.no_gateway:
            say(f"  starting the gateway on http://{args.gateway_host}:{args.gateway_port} …")
            stack.start("gateway", [sys.executable, "-m", "observatory.cli", "gateway",
                                    "--host", args.gateway_host, "--port", str(args.gateway_port)])
        if not args.no_celery:
            say("  starting the Celery worker and beat …")
            stack.start("worker", [sys.executable, "-m", "celery", "-A", "observatory", "worker",
                                   "--loglevel", "warning", "--concurrency", "2", "--hostname", "observatory@%h"])
            stack.start("beat", [sys.executable, "-m", "celery", "-A", "observatory", "beat", "--loglevel", "warning",
                                 "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                                 "--pidfile", str(data_dir / "beat.pid")])
        wait_until(lambda: _http_ok(f"http://{args.host}:{args.port}/healthz"), 60, stack)
        if not args.no_grpc:
            wait_until(lambda: _tcp_open(args.grpc_host, args.grpc_port), 60, stack)
        if not args.no_gateway:
            gateway_host = "127.0.0.1" if args.gateway_host in ("0.0.0.0", "") else args.gateway_host  # noqa: S104
            wait_until(lambda: _http_ok(f"http://{gateway_host}:{args.gateway_port}/healthz"), 60, stack)
        if not args.no_celery:
            wait_until(ready_file.exists, 90, stack)
        banner(args, first, log_dir)
        if args.demo:
            from observatory.demo import run_demo

            say("  sending demo traffic through the OTLP endpoint …")
            summary = run_demo(f"http://{args.host}:{args.port}")
            say(f"  demo traffic sent: {summary}")
            if not args.no_celery:
                queue_recommendations("default")
        while not stop_requested:
            dead = stack.exited()
            if dead:
                say(f"observatory: the {dead} process stopped unexpectedly. Its last log lines:\n{stack.log_tail(dead)}")
                return 1
            time.sleep(0.2)
        say("Stopping Observatory …")
        return 0
    finally:
        stack.stop()
        say("Observatory stopped.")


def queue_recommendations(organization_slug: str) -> None:
    """Have the worker compute the organization's savings recommendations now rather than at the nightly run."""
    from billing.tasks import generate_organization_recommendations
    from observatory.celery import enqueue
    from observatory.models import Organization

    organization = Organization.objects.filter(slug=organization_slug).first()
    if organization is not None:
        logging.getLogger("kombu.connection").setLevel(logging.ERROR)  # the filesystem broker has no hostname
        enqueue(generate_organization_recommendations, organization.pk)
        say("  savings recommendations are being computed (Savings page, in a minute)")


def price_catalog_status() -> str:
    """What the price catalog holds once migrate has run (the seed itself is billing's post-migrate step)."""
    from billing.services import catalog_status

    return catalog_status()


def banner(args: argparse.Namespace, first, log_dir: Path) -> None:
    url = f"http://{args.host}:{args.port}"
    say("")
    say(f"Observatory is ready: {url}")
    if first.password:
        say(f"  admin login:   {first.username} / {first.password}   (shown once; change it in Admin)")
        say(f"  ingest API key: {first.api_key}   (shown once)")
        say("    an organization key: calls that name no team (observatory.team) stay unattributed")
    else:
        say(f"  log in as {first.username} (password set on first run; reset with: observatory changepassword {first.username})")
    say(f"  OTLP endpoint: {url}/v1/traces   (header: Authorization: Bearer <API key>)")
    if not args.no_grpc:
        say(f"  OTLP/gRPC:     http://{args.grpc_host}:{args.grpc_port}   (metadata: authorization: Bearer <API key>)")
    if not getattr(args, "no_gateway", True):
        gateway = f"http://{args.gateway_host}:{args.gateway_port}"
        say(f"  gateway:       base_url {gateway}/v1 (OpenAI) or {gateway} (Anthropic), api_key: an Observatory API key")
    say(f"  logs: {log_dir}")
    say("  press Ctrl-C to stop")
    say("")
