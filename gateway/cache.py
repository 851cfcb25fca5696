"""The response cache: identical requests of the calls a CachePolicy opts in answered from the cache for its TTL.

Key: sha256 of the organization, the route, whether the answer streams (and whether the gateway hides a usage
chunk) and the request body as canonical JSON (sorted keys) minus the fields that do not change the answer
(IGNORED_FIELDS) — after routing, so each arm of a canary has its own entries. Tenants never share an entry. Only
the hash is kept, never the request.

Stored: successful answers only (status 200, the whole body or the complete stream as the client got it) with the
usage of the original call; errors, cut streams and answers over MAX_ENTRY_BYTES are never stored. A stream is
replayed as the same events. Each hit is recorded as an app-cache hit: the call's tokens priced as cost avoided,
cost $0. A client's `Cache-Control: no-store` skips the cache both ways; `no-cache` skips the lookup only.

Where: Redis when OBSERVATORY_GATEWAY_REDIS_URL is set (entries expire by Redis TTL), else the
gateway_cachedresponse table (expired rows never served, deleted by the `purge-gateway-cache` beat task) — either
way shared by every gateway process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import close_old_connections, connection, connections
from django.utils import timezone
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from gateway.pipeline import Exchange, Pipeline
from gateway.rulebook import Policy, call_scope, rulebooks
from gateway.rules import CachedResponse
from gateway.usage import Usage

log = logging.getLogger(__name__)

IGNORED_FIELDS = frozenset({"user", "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier"})
MAX_ENTRY_BYTES = 1024 * 1024
CACHE_THREADS = 2
REDIS_PREFIX = "observatory:gateway:cache:"
HIT_HEADER = "x-observatory-cache"
CACHED_RESPONSE_ID = "observatory.cache.response_id"


def cache_key(organization_id: int, path: str, streaming: bool, hidden_usage: bool, body: dict) -> str:
    kept = {name: value for name, value in body.items() if name not in IGNORED_FIELDS}
    canonical = orjson.dumps([organization_id, path, streaming, hidden_usage, kept], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def directives(headers) -> set[str]:
    return {part.strip().lower() for part in headers.get("cache-control", "").split(",") if part.strip()}


def policy_for(policies: tuple[Policy, ...], team: str, product: str, feature: str) -> Policy | None:
    """The most specific matching policy (feature over product over team), so a feature can have its own TTL."""
    matching = [p for p in policies if p.match.takes(team, product, feature)]
    return max(matching, key=lambda p: (bool(p.match.feature), bool(p.match.product), bool(p.match.team)), default=None)


@dataclass
class Entry:
    streamed: bool
    content_type: str
    usage: Usage
    body: bytes

    def encode(self) -> bytes:
        head = orjson.dumps({"streamed": self.streamed, "content_type": self.content_type, "usage": asdict(self.usage)})
        return head + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        head, _, body = bytes(raw).partition(b"\n")
        data = orjson.loads(head)
        return cls(data["streamed"], data["content_type"], Usage(**data["usage"]), body)


class PostgresStore:
    def get(self, key: str) -> bytes | None:
        return CachedResponse.objects.filter(key=key, expires_at__gt=timezone.now()).values_list("entry", flat=True).first()

    def put(self, key: str, organization_id: int, entry: bytes, ttl_seconds: int) -> None:
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO gateway_cachedresponse (key, organization_id, entry, expires_at, created_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET entry = EXCLUDED.entry, "
                "expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at",
                [key, organization_id, entry, now + timedelta(seconds=ttl_seconds), now])


class RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def get(self, key: str) -> bytes | None:
        return self.client.get(REDIS_PREFIX + key)

    def put(self, key: str, organization_id: int, entry: bytes, ttl_seconds: int) -> None:
        self.client.set(REDIS_PREFIX + key, entry, ex=ttl_seconds)


def store_from_settings() -> PostgresStore | RedisStore:
    return RedisStore(settings.GATEWAY_REDIS_URL) if settings.GATEWAY_REDIS_URL else PostgresStore()


def purge_expired(now=None) -> int:
    """Delete the PostgreSQL store's expired entries (Redis expires its own); returns how many."""
    deleted, _ = CachedResponse.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


def _in_thread(function, *args):
    close_old_connections()
    return function(*args)


class ResponseCache:
    """The before-hook answering hits, and the after-hook (`store`) keeping successful answers of misses."""

    def __init__(self, pipeline: Pipeline, store: PostgresStore | RedisStore | None = None) -> None:
        self.pipeline = pipeline
        self._store = store
        self._threads = ThreadPoolExecutor(CACHE_THREADS, thread_name_prefix="gateway-cache")

    def close(self) -> None:
        """Close each cache thread's database connection (at shutdown), then the threads."""
        barrier = threading.Barrier(CACHE_THREADS)

        def close_this_threads_connections() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(5)  # one job per thread: each waits until all threads hold one
            connections.close_all()

        for job in [self._threads.submit(close_this_threads_connections) for _ in range(CACHE_THREADS)]:
            job.result()
        self._threads.shutdown(wait=True)

    @property
    def backend(self) -> PostgresStore | RedisStore:
        if self._store is None:
            self._store = store_from_settings()
        return self._store

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._threads, _in_thread, function, *args)

    async def __call__(self, exchange: Exchange) -> Response | None:
        book = rulebooks.peek(exchange.api_key.organization_id)  # loaded by the router just before
        if book is None or not book.policies:
            return None
        policy = policy_for(book.policies, *call_scope(exchange))
        if policy is None:
            return None
        asked = directives(exchange.headers)
        if "no-store" in asked:
            return None
        key = cache_key(exchange.api_key.organization_id, exchange.route.path, exchange.streaming,
                        exchange.hidden_usage, exchange.body)
        if "no-cache" not in asked:
            try:
                raw = await self._run(self.backend.get, key)
            except Exception as exc:  # a cache that cannot answer is a miss, never an error
                log.warning("gateway cache: lookup failed (%s)", str(exc).splitlines()[0][:200] if str(exc) else exc)
                raw = None
            if raw is not None:
                return self._replay(exchange, Entry.decode(raw))
        exchange.cache_key, exchange.cache_ttl, exchange.capture = key, policy.ttl_seconds, []
        return None

    def _replay(self, exchange: Exchange, entry: Entry) -> Response:
        exchange.cache_hit = True
        # the provider's response id stays with the call that paid for it: two records with one id would be merged
        # as duplicates of one call (ingest.dedup)
        exchange.usage = dataclasses.replace(entry.usage, response_id="")
        exchange.attributes[CACHED_RESPONSE_ID] = entry.usage.response_id
        exchange.first_byte()

        async def recorded() -> None:
            exchange.finished(200)
            self.pipeline.after(exchange)

        headers = {HIT_HEADER: "hit"}
        if not entry.streamed:
            return Response(entry.body, status_code=200, media_type=entry.content_type, headers=headers,
                            background=BackgroundTask(recorded))

        async def events():
            start = 0
            body = entry.body
            while start < len(body):
                end = body.find(b"\n\n", start)
                end = len(body) if end < 0 else end + 2
                yield body[start:end]
                start = end

        return StreamingResponse(events(), status_code=200, media_type=entry.content_type, headers=headers,
                                 background=BackgroundTask(recorded))

    def keep(self, exchange: Exchange) -> None:
        """After-hook: store a miss's answer when it succeeded whole (off the event loop, never raising)."""
        if not exchange.cache_key or exchange.cache_hit or exchange.capture is None:
            return
        if exchange.http_status != 200 or exchange.error_type:
            return
        body = b"".join(exchange.capture)
        exchange.capture = None
        if not body or len(body) > MAX_ENTRY_BYTES:
            return
        content_type = "text/event-stream; charset=utf-8" if exchange.streaming else "application/json"
        entry = Entry(exchange.streaming, content_type, exchange.usage, body).encode()
        future = self._threads.submit(_in_thread, self.backend.put, exchange.cache_key,
                                      exchange.api_key.organization_id, entry, exchange.cache_ttl)
        future.add_done_callback(_log_failure)


def _log_failure(future) -> None:
    exc = future.exception()
    if exc is not None:
        log.warning("gateway cache: an answer could not be stored (%s)", exc)
