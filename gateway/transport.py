"""The gateway's HTTP/1.1 connection to providers: an httpx transport on asyncio protocols and httptools' C parser,
with a keep-alive pool per host, so relaying a call costs tens of microseconds instead of httpcore's pool walk
(which polls every pooled connection on each request: at 50 concurrent calls that was most of the gateway's CPU).

It speaks what the gateway needs and no more: one request per connection at a time, bodies given whole, answers
read as they arrive (`Content-Length`, chunked, or until close), TLS with the system's and certifi's roots, the
client's timeouts (connect, read — per chunk —, pool). Failures are httpx's own exceptions, so callers see the same
errors as with httpx's default transport.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httptools
import httpx

if TYPE_CHECKING:
    from observatory.addresses import IPAddress

READ_PAUSE_BYTES = 1 << 20  # a provider sending faster than our client reads is paused beyond this


class _Connection(asyncio.Protocol):
    """One connection to a provider; answers arrive through the parser's callbacks."""

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done: asyncio.Future | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.received = False  # any byte of the answer
        self.error: Exception | None = None
        self.wake: asyncio.Future | None = None
        self.paused = False
        self.until_close = False
        self.keep_alive = False

    # protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the provider switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"the provider's answer is not valid HTTP/1.1 ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.until_close and exc is None:
            self.complete = True  # an answer with neither a length nor chunks ends with its connection
            self._wake()
        elif not self.complete:
            self._fail(httpx.ReadError("the provider closed the connection before its answer was complete"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        names = {name.lower() for name, _ in self.headers}
        status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # read here: llhttp forgets it once the message is done
        self.until_close = b"content-length" not in names and b"transfer-encoding" not in names and \
            status not in (204, 304) and status >= 200
        if self.head_done is not None and not self.head_done.done():
            self.head_done.set_result(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > READ_PAUSE_BYTES and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        if self.head_done is not None and not self.head_done.done():
            self.head_done.set_exception(error)
        self._wake()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    # used by the transport
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    async def next_chunk(self, timeout: float | None) -> bytes | None:
        """The next piece of the body, or None once it is complete."""
        while not self.chunks:
            if self.error is not None:
                raise self.error
            if self.complete:
                return None
            self.wake = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancellation
                    await self.wake
            except TimeoutError:
                raise httpx.ReadTimeout("the provider sent nothing within the read timeout") from None
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered < READ_PAUSE_BYTES // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk


class _Body(httpx.AsyncByteStream):
    def __init__(self, transport: FastTransport, connection: _Connection, read_timeout: float | None) -> None:
        self._transport, self._connection, self._timeout = transport, connection, read_timeout

    async def __aiter__(self):
        connection = self._connection
        while (chunk := await connection.next_chunk(self._timeout)) is not None:
            yield chunk

    async def aclose(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._connection = None
        self._transport._release(connection)


class AddressRefused(httpx.ConnectError):
    """The host resolved to an address the transport's `address_check` refuses; nothing was sent."""


class FastTransport(httpx.AsyncBaseTransport):
    """Keep-alive connections per (scheme, host, port), at most `max_connections` open in all.

    `address_check(host, port, ip)` (optional) returns why the transport may not connect to `ip` for `host`, or
    None: a new connection resolves the host once, refuses it if any address is refused, and connects to an
    address it checked (the TLS server name stays the host's), so a DNS answer that changes between the check and
    the connection cannot send the request elsewhere."""

    def __init__(self, max_connections: int = 1000, max_idle_per_host: int = 200, keepalive_expiry: float = 60.0,
                 ssl_context: ssl.SSLContext | None = None,
                 address_check: Callable[[str, int, IPAddress], str | None] | None = None) -> None:
        self._address_check = address_check
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._max_idle = max_idle_per_host
        self._expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._ssl = ssl_context
        self._open: set[_Connection] = set()

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        return await self.exchange(key, request.method, url.raw_path, request.headers.raw, await request.aread(),
                                   request.extensions.get("timeout", {}), request)

    async def exchange(self, key: tuple[str, str, int], method: str, target: bytes,
                       headers: list[tuple[bytes, bytes]], body: bytes, timeouts: dict,
                       request: httpx.Request | None = None) -> httpx.Response:
        """Send one request on a pooled connection; the answer's body is read as the caller iterates it."""
        head = [method.encode() + b" " + target + b" HTTP/1.1\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        message = b"".join(head) + b"\r\n" + body
        for attempt in (0, 1):
            connection, reused = await self._checkout(key, timeouts)
            connection._reset()
            connection.head_done = asyncio.get_running_loop().create_future()
            connection.transport.write(message)
            try:
                async with asyncio.timeout(timeouts.get("read")):
                    status = await connection.head_done
            except TimeoutError:
                self._discard(connection)
                raise httpx.ReadTimeout("the provider did not answer within the read timeout") from None
            except httpx.TransportError:
                self._discard(connection)
                if reused and not connection.received and attempt == 0:
                    continue  # the provider had closed this idle connection: once more on a new one
                raise
            except BaseException:  # cancelled (the client hung up): the connection is in an unknown state
                self._discard(connection)
                raise
            return httpx.Response(status, headers=connection.headers,
                                  stream=_Body(self, connection, timeouts.get("read")),
                                  extensions={"http_version": b"HTTP/1.1"}, request=request)
        raise AssertionError("unreachable")

    async def _checkout(self, key: tuple[str, str, int], timeouts: dict) -> tuple[_Connection, bool]:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.usable() and now - connection.idle_since < self._expiry:
                return connection, True
            self._discard(connection)
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("too many connections to providers are open") from None
        scheme, host, port = key
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                address = host if self._address_check is None else await self._checked_address(host, port)
            async with asyncio.timeout(timeouts.get("connect")):
                _, connection = await asyncio.get_running_loop().create_connection(
                    lambda: _Connection(key), address, port,
                    ssl=self._ssl_context() if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None)
        except AddressRefused:
            self._slots.release()
            raise
        except TimeoutError:
            self._slots.release()
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} within the connect timeout") from None
        except OSError as exc:
            self._slots.release()
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from None
        self._open.add(connection)
        return connection, False

    async def _checked_address(self, host: str, port: int) -> str:
        infos = await asyncio.get_running_loop().getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        for ip in addresses:
            refusal = self._address_check(host, port, ip)
            if refusal is not None:
                raise AddressRefused(refusal)
        if not addresses:
            raise httpx.ConnectError(f"{host} has no address")
        return str(addresses[0])

    def _release(self, connection: _Connection) -> None:
        """Back to the pool when its answer was read to the end and both sides keep the connection; else closed."""
        if connection.complete and connection.error is None and connection.keep_alive and connection.usable():
            idle = self._idle.setdefault(connection.key, [])
            if len(idle) < self._max_idle:
                connection.idle_since = time.monotonic()
                connection.head_done = None
                idle.append(connection)
                return
        self._discard(connection)

    def _discard(self, connection: _Connection) -> None:
        if connection in self._open:
            self._open.discard(connection)
            self._slots.release()
        connection.closed = True
        if connection.head_done is not None and not connection.head_done.done():
            connection.head_done.cancel()
        if connection.transport is not None:
            connection.transport.close()

    async def aclose(self) -> None:
        for connection in list(self._open):
            self._discard(connection)
        self._idle.clear()


@dataclass(frozen=True)
class UpstreamRequest:
    method: str
    key: tuple[str, str, int]  # scheme, host, port
    target: bytes  # path and query
    headers: list[tuple[bytes, bytes]]
    content: bytes


@functools.lru_cache(maxsize=1024)
def _split(url: str) -> tuple[tuple[str, str, int], bytes, bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise httpx.UnsupportedProtocol(f"cannot send to {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = port == (443 if parts.scheme == "https" else 80)
    host_header = parts.hostname if default_port else f"{parts.hostname}:{port}"
    return (parts.scheme, parts.hostname, port), target.encode("ascii"), host_header.encode("idna")


class FastClient:
    """The two calls of httpx.AsyncClient the gateway makes (`build_request`, `send`), straight onto a
    FastTransport: no URL model, cookies, auth or redirect machinery per call (redirects are never followed: one
    could lead off the allow-list). Answers are httpx.Response objects and failures httpx's exceptions."""

    def __init__(self, timeout: httpx.Timeout, transport: FastTransport | None = None,
                 user_agent: str = "observatory-gateway") -> None:
        self.timeouts = timeout.as_dict()
        self.transport = transport or FastTransport()
        self.user_agent = user_agent.encode()

    def build_request(self, method: str, url: str, *, content: bytes = b"",
                      headers: dict[str, str] | None = None) -> UpstreamRequest:
        key, target, host = _split(url)
        sent = [(b"host", host)]
        names = set()
        for name, value in (headers or {}).items():
            lower = name.lower()
            names.add(lower)
            sent.append((lower.encode("latin-1"), value.encode("latin-1")))
        if "user-agent" not in names:
            sent.append((b"user-agent", self.user_agent))
        if "accept-encoding" not in names:
            sent.append((b"accept-encoding", b"gzip, deflate"))
        sent.append((b"content-length", str(len(content)).encode()))
        return UpstreamRequest(method, key, target, sent, content)

    async def send(self, request: UpstreamRequest, stream: bool = False) -> httpx.Response:
        response = await self.transport.exchange(request.key, request.method, request.target, request.headers,
                                                 request.content, self.timeouts)
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()
