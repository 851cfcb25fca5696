"""The gateway's ASGI app: OpenAI's /v1/chat/completions, /v1/responses, /v1/embeddings and Anthropic's
/v1/messages, relayed to the organization's provider and recorded as call records.

A request goes: Observatory key (cached in-process, so microseconds) → body and model → upstream from the
allow-list and the credential (stored, or passed through in `x-upstream-api-key`) → the pipeline's before-hooks →
the provider → the answer, whole or streamed → the after-hooks (the recorder) once it is complete. Every refusal
of ours is in the provider's own error shape; every refusal of the provider's is passed through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connections
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from gateway import routing
from gateway.cache import ResponseCache
from gateway.forwarding import PASSTHROUGH_CREDENTIAL, RelayedStream, client_headers, upstream_headers
from gateway.front import Front
from gateway.limits import BudgetGuard
from gateway.pipeline import Exchange, Pipeline, attribution_from
from gateway.recording import ProcessRecorder, Recorder
from gateway.routes import OPENAI, ROUTES, Route, error_body, model_problem, provider_shape
from gateway.translate import TranslationError, error_message
from gateway.transport import AddressRefused, FastClient, FastTransport
from gateway.upstreams import UpstreamRefused, address_refusal, upstream_cache
from gateway.usage import StreamWatcher, error_type_of, usage_from_body
from observatory.api_auth import key_from_headers
from observatory.services import authenticate_key_cached, cached_key

log = logging.getLogger(__name__)

DB_THREADS = 2
OUTAGE = (OperationalError, InterfaceError)


class Refusal(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def refusal_response(provider: str, status: int, message: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(provider, status, message, code), status_code=status)


class Gateway:
    def __init__(self, pipeline: Pipeline | None = None, recorder: Recorder | ProcessRecorder | None = None,
                 read_timeout: float = 600.0) -> None:
        self.read_timeout = read_timeout  # seconds without a byte from the provider before the call fails with 504
        self.recorder = recorder or Recorder()
        self.pipeline = pipeline or Pipeline()
        self.pipeline.before_upstream.insert(0, BudgetGuard(self._in_db_thread))  # hard budgets first (gateway.limits)
        self.pipeline.after_upstream.append(self.recorder.submit)
        # routing rules, then the response cache (on the routed model): gateway.routing, gateway.cache
        self.cache = ResponseCache(self.pipeline)
        self.pipeline.before_upstream[:0] = [routing.Router(self._in_db_thread), self.cache]
        self.pipeline.after_upstream.insert(0, self.cache.keep)
        self.client: FastClient | None = None
        self._db = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="gateway-db")

    async def start(self) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # no log line per relayed call
        self.client = FastClient(httpx.Timeout(connect=10.0, read=self.read_timeout, write=600.0, pool=30.0),
                                 FastTransport(max_connections=1000, max_idle_per_host=200, keepalive_expiry=60.0,
                                               address_check=address_refusal))
        self.recorder.start()

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        await asyncio.get_running_loop().run_in_executor(None, self.recorder.stop)
        await asyncio.get_running_loop().run_in_executor(None, self.cache.close)
        barrier = threading.Barrier(DB_THREADS)

        def close_this_threads_connections() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(5)  # one job per thread: each waits until all threads hold one
            connections.close_all()

        jobs = [self._db.submit(close_this_threads_connections) for _ in range(DB_THREADS)]
        for job in jobs:
            await asyncio.wrap_future(job)
        self._db.shutdown(wait=False)

    async def _in_db_thread(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._db, _with_fresh_connection, function, *args)

    async def handle(self, request: Request) -> Response:
        route: Route = request.scope["route_info"]
        arrived = time.perf_counter(), time.time_ns()
        try:
            exchange = await self._prepare(request, route, arrived)
        except Refusal as refusal:
            return refusal_response(route.provider, refusal.status, refusal.message, refusal.code)
        answer = await self.pipeline.before(exchange)
        if answer is not None:
            return answer
        return await self._forward(request, exchange)

    async def _prepare(self, request: Request, route: Route, arrived: tuple[float, int]) -> Exchange:
        plaintext = key_from_headers(request.headers)
        if not plaintext:
            raise Refusal(401, "missing Observatory API key: set the client's api_key to your Observatory key (obs_…)")
        api_key = cached_key(plaintext)
        if api_key is None:
            try:
                api_key = await self._in_db_thread(authenticate_key_cached, plaintext)
            except OUTAGE as exc:
                log.warning("database unavailable while checking an API key: %s", str(exc).splitlines()[0][:200])
                raise Refusal(503, "the gateway cannot check API keys right now (its database is away); retry") from None
            if api_key is None:
                raise Refusal(401, "invalid or revoked Observatory API key")
        raw = await _read_body(request)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Refusal(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise Refusal(400, "the request body must be a JSON object")
        problem = model_problem(route, body.get("model"))
        if problem is not None:
            raise Refusal(*problem)
        upstream = upstream_cache.peek(api_key.organization_id, route.provider)
        if upstream is None:
            try:
                upstream = await self._in_db_thread(upstream_cache.load, api_key.organization_id, route.provider)
            except OUTAGE:
                raise Refusal(503, "the gateway cannot read its upstream settings right now; retry") from None
        if isinstance(upstream, UpstreamRefused):
            raise Refusal(403, str(upstream))
        streaming = route.streams and body.get("stream") is True
        exchange = Exchange(api_key=api_key, route=route, upstream=upstream, body=body, raw=raw, model=body["model"],
                            streaming=streaming, attribution=attribution_from(request.headers), headers=request.headers,
                            started=arrived[0], started_ns=arrived[1])
        if streaming and route.provider == OPENAI and route.operation == "chat":
            options = body.get("stream_options")
            if not (isinstance(options, dict) and options.get("include_usage") is True):
                exchange.rewrite(stream_options={**(options if isinstance(options, dict) else {}), "include_usage": True})
                exchange.hidden_usage = True
        return exchange

    async def _forward(self, request: Request, exchange: Exchange) -> Response:
        route = exchange.route
        credential = request.headers.get(PASSTHROUGH_CREDENTIAL, "").strip() or exchange.upstream.api_key
        if not credential:
            return refusal_response(route.provider, 401, (
                f"no {route.provider} API key: an organization admin stores one for the gateway, or the client sends "
                f"its own in the {PASSTHROUGH_CREDENTIAL} header"))
        upstream = await self._send(request, exchange, credential)
        if exchange.fallback is not None:  # a routing rule's fallback (gateway.routing)
            upstream = await routing.with_fallback(
                exchange, upstream,
                lambda: self._send(request, exchange, exchange.upstream.api_key if exchange.translation else credential),
                self.pipeline, error_type_of, self._in_db_thread)
        route, translation = exchange.route, exchange.translation  # a fallback may have gone to the other provider
        if isinstance(upstream, routing.UpstreamFailure):
            return self._failed(exchange, upstream.status, upstream.error_type, upstream.message)
        if exchange.streaming and upstream.status_code < 400 and \
                upstream.headers.get("content-type", "").startswith("text/event-stream"):
            watcher = StreamWatcher(route, hide_usage_chunk=exchange.hidden_usage)
            translator = translation.stream(int(time.time())) if translation is not None else None
            return RelayedStream(upstream, exchange, watcher, self.pipeline, translator)
        try:
            content = await upstream.aread()
        except httpx.HTTPError as exc:
            return self._failed(exchange, 502, "connection",
                                f"the {route.provider} API broke off its answer ({type(exc).__name__})")
        finally:
            await upstream.aclose()
        if upstream.status_code < 400:
            exchange.usage = usage_from_body(route, content)
            if translation is not None:
                try:
                    content = translation.answer(content, int(time.time()))
                except TranslationError as exc:
                    return self._failed(exchange, 502, "other", f"{exc}: the gateway cannot translate it")
            if exchange.capture is not None:
                exchange.capture.append(content)
            exchange.finished(upstream.status_code)
        else:
            exchange.finished(upstream.status_code, error_type_of(upstream.status_code, content))
            if translation is not None:  # the other provider's refusal, in the shape the client's library reads
                message = error_message(content) or f"the {route.provider} API answered {upstream.status_code}"
                content = orjson.dumps(error_body(translation.client, upstream.status_code,
                                                  f"{route.provider} (fallback): {message}"))
        response = Response(content, status_code=upstream.status_code, background=self._after_sending(exchange))
        response.raw_headers = [*client_headers(upstream.headers), (b"content-length", str(len(content)).encode())]
        return response

    async def _send(self, request: Request, exchange: Exchange, credential: str):
        """The provider's answer (its body not read yet), or the UpstreamFailure when there is none."""
        route = exchange.route
        outgoing = self.client.build_request(
            "POST", exchange.upstream.base_url + route.upstream_path, content=exchange.raw,
            headers=upstream_headers(request.headers, route.provider, credential, exchange.streaming,
                                     translated=exchange.translation is not None),
        )
        try:
            return await self.client.send(outgoing, stream=True)
        except AddressRefused as exc:
            return routing.UpstreamFailure(502, "connection", f"the gateway will not call this {route.provider} "
                                                              f"upstream: {exc}")
        except httpx.TimeoutException:
            return routing.UpstreamFailure(504, "timeout", f"the {route.provider} API did not answer in time")
        except httpx.HTTPError as exc:
            return routing.UpstreamFailure(502, "connection",
                                           f"the {route.provider} API could not be reached ({type(exc).__name__})")

    def _failed(self, exchange: Exchange, status: int, error_type: str, message: str) -> Response:
        exchange.finished(status, error_type)
        response = refusal_response(exchange.client_provider, status, message)
        response.background = self._after_sending(exchange)
        return response

    def _after_sending(self, exchange: Exchange) -> BackgroundTask:
        """The after-hooks, run once the answer is on its way to the client (not in a thread: they only enqueue)."""

        async def after() -> None:
            self.pipeline.after(exchange)

        return BackgroundTask(after)


def _with_fresh_connection(function, *args):
    """Run a database read as a Django request would: a connection broken by an outage is dropped first, so the
    thread reconnects once the database is back."""
    close_old_connections()
    try:
        return function(*args)
    except OUTAGE:
        connections.close_all()  # a connection that failed this way stays bad: reconnect next time
        raise


async def _read_body(request: Request) -> bytes:
    limit = settings.GATEWAY_MAX_BODY_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refusal(413, f"the request body of {declared} bytes is over the gateway's {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refusal(413, f"the request body is over the gateway's {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(gateway: Gateway | None = None) -> Front:
    """The ASGI app; `gateway` lets tests and later increments bring their own pipeline or recorder."""
    gateway = gateway or Gateway()

    def endpoint(route: Route):
        async def proxied(request: Request) -> Response:
            request.scope["route_info"] = route
            return await gateway.handle(request)

        return proxied

    async def unknown_route(request: Request) -> Response:
        provider = provider_shape(request.url.path, request.headers)
        if request.url.path in ROUTES:
            return refusal_response(provider, 405, f"use POST for {request.url.path}")
        served = ", ".join(ROUTES)
        return refusal_response(provider, 404,
                                f"the gateway serves no {request.method} {request.url.path}: it serves POST {served}")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    routes = [HttpRoute(path, endpoint(route), methods=["POST"]) for path, route in ROUTES.items()]
    routes.append(HttpRoute("/healthz", healthz, methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway

    async def not_found(request: Request, exc: Exception) -> Response:
        return await unknown_route(request)

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_found)
    return Front(app, gateway)  # the relayed routes skip Starlette's router and middlewares (gateway.front)

