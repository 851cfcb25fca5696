"""OTLP/HTTP transport: posts one encoded ExportTraceServiceRequest and says whether it landed,
should be retried (and when), or was refused for good. http.client (with ssl and the email
package it loads) is imported when the first sender is made, to keep `import observatory_sdk` small."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .failures import log_once
from .otlp import read_partial_success
from .version import __version__

if TYPE_CHECKING:
    import http.client

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
REQUEST_TIMEOUT = 10.0
_GZIP_MIN_BYTES = 1024
_GZIP_WBITS = 31  # zlib writes the gzip format


@dataclass(frozen=True, slots=True)
class Prepared:
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    retryable: bool = False
    retry_after: float | None = None
    rejected_spans: int = 0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OtlpHttpSender:
    """Keeps one keep-alive connection to the traces URL; reconnects after any failure."""

    def __init__(self, url: str, api_key: str | None, timeout: float = REQUEST_TIMEOUT, compression: str = "none") -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._path = parts.path or "/v1/traces"
        if parts.query:
            self._path += "?" + parts.query
        self._timeout = timeout
        self._gzip = compression == "gzip"
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": f"observatory-sdk-python/{__version__}",
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._connection: http.client.HTTPConnection | None = None
        self._pending: Prepared | None = None
        """The request posted and not yet answered (sent again if its keep-alive connection had been closed)."""
        self._pending_reused = False
        import http.client

        self._http = http.client

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._https:
                import ssl

                self._connection = self._http.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=ssl.create_default_context()
                )
            else:
                self._connection = self._http.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def forget_connection(self) -> None:
        """After fork: the socket belongs to the parent; drop it without closing it."""
        self._connection = None

    def prepare(self, body: bytes) -> Prepared:
        """The request for an encoded export: gzip'd when asked and that pays (pure CPU: any thread may do it)."""
        headers = self._headers
        if self._gzip and len(body) >= _GZIP_MIN_BYTES:
            compressor = zlib.compressobj(1, zlib.DEFLATED, _GZIP_WBITS)
            body = compressor.compress(body) + compressor.flush()
            headers = {**headers, "Content-Encoding": "gzip"}
        return Prepared(body, headers)

    def post(self, request: Prepared) -> SendResult | None:
        """Send `request` without reading the answer (`answer()` reads it, on this thread or a later one, before the
        next post); None once it is sent, else the failure."""
        self._pending = request
        while True:
            self._pending_reused = self._connection is not None
            try:
                self._connect().request("POST", self._path, body=request.body, headers=request.headers)
                return None
            except (OSError, self._http.HTTPException) as error:
                failure = self._failed(error)
                if failure is not None:
                    return failure

    def answer(self) -> SendResult:
        """Read the answer to the request `post()` sent; a keep-alive connection that the server had closed
        meanwhile is reopened and the request sent once more."""
        while True:
            connection = self._connection
            try:
                if connection is None:
                    raise ConnectionResetError("not connected")
                response = connection.getresponse()
                payload = response.read()
                status = response.status
                retry_after = parse_retry_after(response.getheader("Retry-After"))
                if response.will_close:
                    self.close()
                break
            except (OSError, self._http.HTTPException) as error:
                failure = self._failed(error)
                if failure is not None:
                    return failure
                failure = self.post(self._pending)  # type: ignore[arg-type]
                if failure is not None:
                    return failure
        self._pending = None
        if 200 <= status < 300:
            return SendResult(delivered=True, rejected_spans=_rejected(payload))
        if status in RETRYABLE_STATUS:
            log_once(f"status-{status}", "observatory_sdk: export got HTTP %d; retrying with backoff", status)
            return SendResult(delivered=False, retryable=True, retry_after=retry_after)
        log_once(f"status-{status}", "observatory_sdk: export refused with HTTP %d; spans dropped", status)
        return SendResult(delivered=False)

    def _failed(self, error: Exception) -> SendResult | None:
        """After a failed send or read: None to try again on a new connection (the server closed an idle
        keep-alive one), else the retryable failure."""
        self.close()
        if self._pending_reused and not isinstance(error, TimeoutError):
            self._pending_reused = False
            return None
        self._pending = None
        log_once(
            f"connect-{type(error).__name__}",
            "observatory_sdk: cannot reach %s (%s); spans stay queued and are retried",
            self._host,
            type(error).__name__,
        )
        return SendResult(delivered=False, retryable=True)


def _rejected(payload: bytes) -> int:
    if not payload:
        return 0
    try:
        rejected, message = read_partial_success(payload)
    except ValueError:  # a JSON or empty-ish body from a proxy is still a success
        return 0
    if rejected:
        log_once("partial-success", "observatory_sdk: server rejected %d spans: %s", rejected, message)
    return rejected
