"""Recording: exactly once per call, attribution from headers or the key's defaults, a client that hangs up
mid-stream recorded with the tokens seen, and calls kept in the spool while the database is away."""

import asyncio
import json
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler

import httpx
import openai
import pytest
from django.db import connection

from gateway.rules import CachedResponse, CachePolicy
from gateway.services import allow_upstream_host, set_provider_account
from ingest import spool
from ingest.models import LLMCall
from ingest.receiver import apply_spooled, store_or_spool_calls
from ingest.records import CallFields
from observatory.services import create_api_key
from tests.sdk.sdk_fakes import ANTHROPIC_MODEL, _QuietServer

HI = [{"role": "user", "content": "hi"}]


@pytest.mark.django_db(transaction=True)
def test_every_call_is_recorded_exactly_once(gw, oai):
    for _ in range(12):
        oai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    for _ in range(3):
        list(oai.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    time.sleep(0.3)

    calls = gw.calls(15)
    assert sum(call.cost_usd for call in calls) == Decimal("0.0001542") * 15
    assert len({(call.trace_id, call.span_id) for call in calls}) == 15


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_and_streams_are_each_recorded_once(gw, obs_key):
    async def many():
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0)

        async def streamed():
            return [chunk async for chunk in await client.chat.completions.create(
                model="gpt-4o-mini", messages=HI, stream=True)]

        plain = [client.chat.completions.create(model="gpt-4o-mini", messages=HI) for _ in range(20)]
        results = await asyncio.gather(*plain, *(streamed() for _ in range(20)))
        await client.close()
        return results

    results = asyncio.run(many())

    assert all(len(chunks) == 5 for chunks in results[20:])
    calls = gw.calls(40)
    assert sum(call.streaming for call in calls) == 20
    assert sum(call.cost_usd for call in calls) == Decimal("0.0001542") * 40


@pytest.mark.django_db(transaction=True)
def test_a_key_with_a_default_team_attributes_calls_that_name_none(gw, org, team, other_team):
    key = create_api_key(org, "search app", team=team).plaintext
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)

    client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    client.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers={"x-observatory-team": "ads"})

    assert [call.team.slug for call in gw.calls(2)] == ["search", "ads"]


class _EventStream(BaseHTTPRequestHandler):
    """A fake provider's event stream, written chunk by chunk as the test's handler decides."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def start_stream(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_event(self, raw: bytes) -> None:
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()


class _SlowStream(_EventStream):
    """Anthropic's stream: message_start (with the input usage), one delta, then a pause the client will not sit out."""

    def do_POST(self):
        self.start_stream()
        usage = {"input_tokens": 40, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 1}
        start = {"type": "message_start", "message": {"id": "msg_slow", "type": "message", "role": "assistant",
                                                      "model": ANTHROPIC_MODEL, "content": [], "usage": usage}}
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}
        try:
            for event in (start, delta):
                self.send_event(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            if self.server.break_off:  # the provider drops the connection mid-stream (no closing chunk)
                self.close_connection = True
                return
            self.server.release.wait(10)
        except OSError:
            pass


@pytest.fixture
def slow_provider(org):
    slow = _QuietServer(("127.0.0.1", 0), _SlowStream)
    slow.release = threading.Event()
    slow.break_off = False
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    allow_upstream_host(org, f"127.0.0.1:{slow.server_address[1]}")
    set_provider_account(org, "anthropic", base_url=f"http://127.0.0.1:{slow.server_address[1]}/v1", api_key="sk-ant")
    yield slow
    slow.release.set()
    slow.shutdown()
    slow.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_provider_breaking_off_mid_stream_is_recorded_as_failed_with_the_tokens_seen(serve_gateway, org, priced,
                                                                                       slow_provider):
    slow_provider.break_off = True
    gw = serve_gateway()
    key = create_api_key(org, "gateway").plaintext

    with httpx.stream("POST", gw.url + "/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                      json={"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": HI, "stream": True}) as answer:
        received = b"".join(answer.iter_raw())

    assert b"message_start" in received and b'"text": "Hel"' in received  # what came before the break reached the client
    (call,) = gw.calls(1)
    assert (call.status, call.error_type, call.http_status) == ("error", "connection", 200)
    assert (call.input_tokens, call.output_tokens) == (40, 1)


@pytest.mark.django_db(transaction=True)
def test_a_client_hanging_up_mid_stream_is_recorded_with_the_tokens_seen(serve_gateway, org, priced, slow_provider):
    slow = slow_provider
    gw = serve_gateway()
    key = create_api_key(org, "gateway").plaintext
    try:
        with httpx.stream("POST", gw.url + "/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                          json={"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": HI, "stream": True}) as answer:
            first = next(answer.iter_raw())
        assert b"message_start" in first  # the client saw the stream begin, then hung up

        (call,) = gw.calls(1)
    finally:
        slow.release.set()
    assert (call.status, call.error_type, call.http_status) == ("error", "cancelled", 499)
    assert (call.input_tokens, call.output_tokens, call.response_id) == (40, 1, "msg_slow")
    assert call.cost_usd == Decimal("0.000135")  # 40 × $3/M + 1 × $15/M: the provider bills what it streamed
    assert call.duration_ms < 5000  # recorded when the client left, not when the provider finished


class _StreamHeldOpen(_EventStream):
    """OpenAI's chat stream to its end ([DONE] included), then the connection held open until released, as a
    provider or a proxy in front of it may: the client has its whole answer before the stream's body ends."""

    def do_POST(self):
        self.start_stream()
        head = {"id": "chatcmpl-held", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18"}
        chunks = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"}, "finish_reason": None}]},
                  {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                  {**head, "choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050}}]
        try:
            for raw in [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks] + [b"data: [DONE]\n\n"]:
                self.send_event(raw)
            self.server.release.wait(10)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass


@pytest.mark.django_db(transaction=True)
def test_a_client_that_stops_at_done_while_the_provider_holds_the_stream_open_gets_a_complete_call(
        serve_gateway, org, team, priced):
    held = _QuietServer(("127.0.0.1", 0), _StreamHeldOpen)
    held.release = threading.Event()
    threading.Thread(target=held.serve_forever, daemon=True).start()
    allow_upstream_host(org, f"127.0.0.1:{held.server_address[1]}")
    set_provider_account(org, "openai", base_url=f"http://127.0.0.1:{held.server_address[1]}/v1", api_key="sk-held")
    CachePolicy.objects.create(organization=org, team=team, ttl_seconds=600)
    gw = serve_gateway()
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=create_api_key(org, "gateway").plaintext, max_retries=0)
    try:
        # the OpenAI SDK stops reading at [DONE] and closes the connection, the provider's body still open
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True,
                                                     extra_headers={"x-observatory-team": "search"}))
        (call,) = gw.calls(1)
        deadline = time.monotonic() + 10
        while not CachedResponse.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        held.release.set()
        held.shutdown()
        held.server_close()

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert (call.status, call.error_type, call.http_status, call.finish_reason) == ("ok", "", 200, "stop")
    assert (call.input_tokens, call.output_tokens) == (1000, 50)
    assert call.cost_usd == Decimal("0.00018")  # 1,000 × $0.15/M + 50 × $0.60/M
    assert call.duration_ms < 5000  # recorded when the client left, not when the provider let go
    assert CachedResponse.objects.count() == 1  # a complete answer: the next identical request is served from it


@contextmanager
def database_down(tmp_path):
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"] = str(tmp_path)  # no server listens here
    connection.settings_dict["PORT"] = "5999"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_calls_recorded_while_the_database_is_away_are_kept_and_stored_once_later(org, team, priced, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.SPOOL_DRAIN_IN_BACKGROUND = False
    api_key = create_api_key(org, "gateway", team=team).api_key
    call = CallFields(trace_id="ab" * 16, span_id="cd" * 8, parent_span_id=None,
                      start_time=datetime.now(UTC).replace(microsecond=0), duration_ms=420.0, ttft_ms=80.0,
                      provider="openai", operation="chat", request_model="gpt-4o-mini",
                      response_model="gpt-4o-mini-2024-07-18", input_tokens=1200, cached_input_tokens=1024,
                      output_tokens=85, reasoning_tokens=64, usage_reported=True, streaming=True, http_status=200,
                      feature="faq", source="observatory-gateway")

    with database_down(tmp_path):
        assert store_or_spool_calls(api_key, [call]) is False
        assert spool.state().segments == 1
    assert LLMCall.objects.count() == 0

    assert spool.drain(apply_spooled) == 1
    assert spool.drain(apply_spooled) == 0
    (stored,) = LLMCall.objects.select_related("team")
    assert (stored.input_tokens, stored.cached_input_tokens, stored.output_tokens, stored.ttft_ms) == (1200, 1024, 85, 80.0)
    assert stored.cost_usd == Decimal("0.0001542") and stored.team == team and stored.feature == "faq"
    assert stored.start_time == call.start_time and stored.streaming


@pytest.mark.django_db(transaction=True)
def test_while_the_database_is_away_the_gateway_keeps_answering_and_records_later(gw, oai, tmp_path):
    oai.chat.completions.create(model="gpt-4o-mini", messages=HI)  # the key and upstream are now known to the gateway
    gw.calls(1)

    with connection.cursor() as cursor:  # the database drops every other connection (the gateway's) …
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    with database_down(tmp_path):  # … and takes no new ones
        answers = [oai.chat.completions.create(model="gpt-4o-mini", messages=HI) for _ in range(3)]
        streamed = list(oai.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
        assert gw.gateway.recorder.wait_idle(10)
        deadline = time.monotonic() + 5
        while spool.state().pending_bytes == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert spool.state().pending_bytes > 0

    assert all(answer.choices[0].message.content for answer in answers) and len(streamed) == 5
    assert LLMCall.objects.count() == 1
    time.sleep(0.2)
    assert gw.gateway.recorder.wait_idle(10)
    spool.drain(apply_spooled)
    calls = gw.calls(5)
    assert sum(call.cost_usd for call in calls) == Decimal("0.0001542") * 5
    assert sum(call.streaming for call in calls) == 1


@pytest.mark.django_db(transaction=True)
def test_a_key_the_gateway_cannot_check_during_an_outage_gets_a_503_and_works_once_the_database_is_back(gw, oai, org,
                                                                                                         tmp_path):
    unseen = openai.OpenAI(base_url=gw.url + "/v1", api_key=create_api_key(org, "new").plaintext, max_retries=0)
    oai.chat.completions.create(model="gpt-4o-mini", messages=HI)  # this key is known to the gateway
    gw.calls(1)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    with database_down(tmp_path):
        with pytest.raises(openai.InternalServerError) as refused:
            unseen.chat.completions.create(model="gpt-4o-mini", messages=HI)
        assert oai.chat.completions.create(model="gpt-4o-mini", messages=HI).choices  # the known key goes on
        assert gw.gateway.recorder.wait_idle(10)

    assert refused.value.status_code == 503 and "cannot check API keys right now" in refused.value.message
    assert unseen.chat.completions.create(model="gpt-4o-mini", messages=HI).choices
    assert len(gw.calls(2)) == 2  # recorded again once the database is back (the outage's call waits in the spool)
