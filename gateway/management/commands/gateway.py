"""`gateway [--host H] [--port P] [--workers N]`: serve the OpenAI/Anthropic-compatible gateway until SIGTERM."""

import os

from django.core.management.base import BaseCommand, CommandError

DEFAULT_PORT = 4000


class Command(BaseCommand):
    help = "Serve the gateway (what `observatory up` starts beside the web server)."

    def add_arguments(self, parser):
        host = os.environ.get("OBSERVATORY_GATEWAY_HOST") or os.environ.get("OBSERVATORY_HOST") or "127.0.0.1"
        parser.add_argument("--host", default=host, help=f"address to listen on (default: {host})")
        parser.add_argument("--port", type=int, default=int(os.environ.get("OBSERVATORY_GATEWAY_PORT") or DEFAULT_PORT))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("OBSERVATORY_GATEWAY_WORKERS") or 1),
                            help="processes (default: 1; each is asynchronous and serves many calls at once)")

    def handle(self, *args, **options):
        import gc
        import sys

        import uvicorn
        from uvicorn.config import STARTUP_FAILURE

        from gateway.vault import ensure_key_file

        ensure_key_file()
        # The recorder thread (pricing, COPY) must not hold the event loop off for the default 5 ms GIL slice: hand
        # it back every 0.5 ms. Everything imported so far lives as long as the process: keep the collector off it.
        sys.setswitchinterval(0.0005)
        gc.collect()
        gc.freeze()
        self.stdout.write(f"serving the gateway on http://{options['host']}:{options['port']}", ending="\n")
        self.stdout.flush()
        try:
            uvicorn.run("gateway.asgi:application", host=options["host"], port=options["port"],
                        workers=options["workers"], log_level="warning", access_log=False, lifespan="on",
                        timeout_graceful_shutdown=10, server_header=False, proxy_headers=False)
        except SystemExit as exc:
            if exc.code == STARTUP_FAILURE:  # not a signal's exit after serving: the socket or the app did not start
                raise CommandError(f"the gateway could not start on {options['host']}:{options['port']} "
                                   "(is the port in use?)") from None
