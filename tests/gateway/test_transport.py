"""The gateway's own HTTP/1.1 client (gateway.transport) against a loopback server that misbehaves on purpose:
connections are reused, a connection the provider closed while idle is replaced without failing the call, answers
ending with their connection or gzip-encoded are read whole, and silence past the read timeout is httpx's
ReadTimeout."""

import asyncio
import gzip

import httpx
import pytest

from gateway.transport import FastClient


class Provider:
    """Answers each request with `answer(request_number)`; closes the connection after it when `close_after`."""

    def __init__(self, answer, close_after: bool = False, delay: float = 0.0) -> None:
        self.answer, self.close_after, self.delay = answer, close_after, delay
        self.connections = 0
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                self.requests += 1
                await asyncio.sleep(self.delay)
                writer.write(self.answer(self.requests))
                await writer.drain()
                if self.close_after:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def json_answer(body: bytes = b'{"ok": true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def exchange(provider: Provider, count: int, read_timeout: float = 5.0) -> list[tuple[int, bytes]]:
    server = await asyncio.start_server(provider.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = FastClient(httpx.Timeout(connect=2.0, read=read_timeout, write=2.0, pool=2.0))
    answers = []
    try:
        for _ in range(count):
            request = client.build_request("POST", f"http://127.0.0.1:{port}/v1/chat/completions", content=b"{}",
                                           headers={"content-type": "application/json"})
            response = await client.send(request, stream=True)
            answers.append((response.status_code, await response.aread()))
            await response.aclose()
            await asyncio.sleep(0.02)  # the provider's close, when it closes, arrives while the connection is idle
    finally:
        await client.aclose()
        server.close()
    return answers


def test_it_reuses_one_connection_for_calls_one_after_another():
    provider = Provider(lambda n: json_answer(b'{"n": %d}' % n))
    answers = asyncio.run(exchange(provider, 3))
    assert answers == [(200, b'{"n": 1}'), (200, b'{"n": 2}'), (200, b'{"n": 3}')]
    assert provider.connections == 1


def test_a_connection_the_provider_closed_while_idle_is_replaced_without_failing_the_call():
    provider = Provider(lambda n: json_answer(), close_after=True)
    answers = asyncio.run(exchange(provider, 3))
    assert [status for status, _ in answers] == [200, 200, 200]
    assert provider.connections == 3 and provider.requests == 3  # no request was sent twice


def test_an_answer_that_ends_with_its_connection_is_read_whole():
    provider = Provider(lambda n: b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + b'{"whole": true}',
                        close_after=True)
    assert asyncio.run(exchange(provider, 2)) == [(200, b'{"whole": true}')] * 2


def test_a_gzip_answer_is_decoded():
    body = gzip.compress(b'{"usage": {"prompt_tokens": 12}}')
    provider = Provider(lambda n: json_answer(body, b"content-encoding: gzip\r\n"))
    assert asyncio.run(exchange(provider, 1)) == [(200, b'{"usage": {"prompt_tokens": 12}}')]


def test_a_provider_silent_past_the_read_timeout_is_a_read_timeout():
    provider = Provider(lambda n: json_answer(), delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(exchange(provider, 1, read_timeout=0.2))


def test_a_provider_that_is_not_listening_is_a_connect_error():
    async def call():
        client = FastClient(httpx.Timeout(2.0))
        request = client.build_request("POST", "http://127.0.0.1:9/v1/chat/completions", content=b"{}")
        try:
            await client.send(request)
        finally:
            await client.aclose()

    with pytest.raises(httpx.ConnectError):
        asyncio.run(call())
