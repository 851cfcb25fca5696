"""`grpc [--host H] [--port P]`: serve OTLP/gRPC (traces, metrics, logs) until SIGTERM or SIGINT."""

import os
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from ingest.grpc_server import DEFAULT_PORT, build_server

GRACE_SECONDS = 10.0


class Command(BaseCommand):
    help = "Serve the OTLP/gRPC receiver (what `observatory up` starts beside the web server)."

    def add_arguments(self, parser):
        host = os.environ.get("OBSERVATORY_GRPC_HOST") or os.environ.get("OBSERVATORY_HOST") or "127.0.0.1"
        parser.add_argument("--host", default=host, help=f"address to listen on (default: {host})")
        parser.add_argument("--port", type=int, default=int(os.environ.get("OBSERVATORY_GRPC_PORT") or DEFAULT_PORT))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("OBSERVATORY_GRPC_THREADS") or 8),
                            help="calls handled at once (default: 8)")

    def handle(self, *args, **options):
        address = f"{options['host']}:{options['port']}"
        try:
            server, port = build_server(address, threads=options["threads"])
        except RuntimeError as exc:
            raise CommandError(f"{exc}: is another OTLP/gRPC receiver (or a Collector) already using this port?") from None
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        server.start()
        self.stdout.write(f"serving OTLP/gRPC on {options['host']}:{port}", ending="\n")
        self.stdout.flush()
        stop.wait()
        self.stdout.write(f"stopping: calls in progress have {GRACE_SECONDS:.0f} s to finish")
        server.stop(GRACE_SECONDS).wait()
