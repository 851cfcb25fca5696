"""The upstream leg: headers sent to the provider and passed back, and the answer relayed — whole, or as a stream
event by event the moment each arrives (time to first token is the provider's), while the client is watched for
hanging up so a cut stream is recorded with the tokens seen."""

from __future__ import annotations

import asyncio

import httpx
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.pipeline import Exchange, Pipeline
from gateway.routes import ANTHROPIC
from gateway.translate import AnthropicEvents, OpenAIChunks
from gateway.usage import StreamWatcher

PASSTHROUGH_CREDENTIAL = "x-upstream-api-key"
# Request headers a provider reads besides the body; everything else (the Observatory key above all) stays here.
FORWARDED_REQUEST_HEADERS = ("accept", "user-agent", "openai-organization", "openai-project", "openai-beta",
                             "anthropic-version", "anthropic-beta", "idempotency-key")
# A request translated for the other provider (gateway.translate) carries none of the client's provider headers.
TRANSLATED_REQUEST_HEADERS = ("accept", "user-agent", "idempotency-key")
ANTHROPIC_VERSION = "2023-06-01"  # the Messages API version translated requests are written for
DROPPED_RESPONSE_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection",
                                      "keep-alive", "set-cookie", "date", "server", "alt-svc"})
CLIENT_CLOSED = 499  # the status a call gets when its client hung up mid-stream (error type "cancelled")


def upstream_headers(headers, provider: str, credential: str, streaming: bool,
                     translated: bool = False) -> dict[str, str]:
    names = TRANSLATED_REQUEST_HEADERS if translated else FORWARDED_REQUEST_HEADERS
    sent = {name: headers[name] for name in names if name in headers}
    sent["content-type"] = "application/json"
    if translated and provider == ANTHROPIC:
        sent["anthropic-version"] = ANTHROPIC_VERSION
    if streaming:
        sent["accept-encoding"] = "identity"  # events reach the client as the provider flushes them
    if provider == ANTHROPIC:
        sent["x-api-key"] = credential
    else:
        sent["authorization"] = f"Bearer {credential}"
    return sent


def client_headers(upstream: httpx.Headers) -> list[tuple[bytes, bytes]]:
    """The provider's answer headers (request ids, rate limits, Retry-After) minus those of its own connection."""
    return [(name.lower(), value) for name, value in upstream.raw if name.lower().decode() not in DROPPED_RESPONSE_HEADERS]


class RelayedStream(Response):
    """An event stream relayed from the provider. The exchange is handed to the pipeline's after-hooks once the
    stream ends, however it ends: completely, by the provider failing, or by the client hanging up. A stream of
    the other provider (a fallback) passes its `translator` (gateway.translate) on the way, after the watcher."""

    def __init__(self, upstream: httpx.Response, exchange: Exchange, watcher: StreamWatcher, pipeline: Pipeline,
                 translator: OpenAIChunks | AnthropicEvents | None = None) -> None:
        self.upstream = upstream
        self.exchange = exchange
        self.watcher = watcher
        self.translator = translator
        self.pipeline = pipeline
        self.status_code = upstream.status_code
        self.background = None
        self.raw_headers = client_headers(upstream.headers)
        self._rest_taken = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange, watcher = self.exchange, self.watcher
        outcome: tuple[int, str] = (CLIENT_CLOSED, "cancelled")
        relay = asyncio.current_task()
        state = {"relaying": True, "hung_up": False}

        async def client_hangs_up() -> None:  # a plain task: an anyio task group costs ~7x more per stream
            while (await receive())["type"] != "http.disconnect":
                pass
            if state["relaying"]:
                state["hung_up"] = True
                relay.cancel()

        watch = asyncio.get_running_loop().create_task(client_hangs_up())
        try:
            outcome = await self._relay(send)
        except asyncio.CancelledError:
            if not state["hung_up"]:
                raise  # the server is stopping: not ours to swallow
            relay.uncancel()
            if watcher.complete:  # it had the whole answer (clients stop at [DONE]) before the provider's stream ended
                rest = self._rest()
                if exchange.capture is not None:
                    exchange.capture.append(rest)
                outcome = (self.status_code, "")
        finally:
            state["relaying"] = False
            watch.cancel()
            await self.upstream.aclose()
            exchange.usage = watcher.usage
            exchange.finished(*outcome)
            self.pipeline.after(exchange)

    async def _relay(self, send: Send) -> tuple[int, str]:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.upstream.aiter_bytes():
                self.exchange.first_byte()
                out = self.watcher.feed(chunk)
                if self.translator is not None:
                    out = self.translator.feed(out)
                if self.exchange.capture is not None:  # the response cache keeps the stream as the client got it
                    self.exchange.capture.append(out)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        except httpx.HTTPError:  # the provider broke off mid-stream: the client sees the stream end early
            await send({"type": "http.response.body", "body": self._rest(), "more_body": False})
            return self.status_code, "connection"
        rest = self._rest()
        if self.exchange.capture is not None:
            self.exchange.capture.append(rest)
        await send({"type": "http.response.body", "body": rest, "more_body": False})
        return self.status_code, ""

    def _rest(self) -> bytes:
        """The stream's last bytes (the watcher's remainder, the translator's closing events); once only."""
        if self._rest_taken:
            return b""
        self._rest_taken = True
        rest = self.watcher.finish()
        if self.translator is not None:
            rest = self.translator.feed(rest) + self.translator.finish()
        return rest
