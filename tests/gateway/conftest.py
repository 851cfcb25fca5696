"""The gateway as a client meets it: uvicorn serving the real ASGI app on a loopback port (in a thread of the test
process, so it shares the test database), the fake OpenAI/Anthropic provider of the SDK tests as its upstream, and
the real `openai` and `anthropic` clients pointed at it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import openai
import pytest
import uvicorn

from billing.pricing.at_ingest import catalog_cache
from billing.services import load_default_catalog
from gateway.app import Gateway, build_app
from gateway.rulebook import rulebooks
from gateway.services import allow_upstream_host, set_provider_account
from gateway.upstreams import upstream_cache
from ingest.models import LLMCall
from observatory.services import create_api_key
from tests.sdk.sdk_fakes import FakeProviderServer


@dataclass
class RunningGateway:
    url: str
    gateway: Gateway

    def calls(self, count: int | None = None) -> list[LLMCall]:
        """The call records, oldest first, once `count` are stored (a stream's record is handed over just after its
        last bytes reach the client) and the recorder holds nothing more."""
        deadline = time.monotonic() + 10
        while count and LLMCall.objects.count() < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.gateway.recorder.wait_idle(10)
        calls = list(LLMCall.objects.select_related("team", "product").order_by("start_time", "id"))
        if count is not None:
            assert len(calls) == count, [(c.request_model, c.status) for c in calls]
        return calls


@pytest.fixture(scope="session")
def provider() -> Iterator[FakeProviderServer]:
    server = FakeProviderServer()
    yield server
    server.close()


@pytest.fixture
def serve_gateway(settings, tmp_path):
    """Start a gateway (optionally with your own Gateway object); stopped at the end of the test."""
    settings.DATA_DIR = tmp_path  # the vault's key file, the spool
    settings.SPOOL_DRAIN_IN_BACKGROUND = False
    settings.GATEWAY_PRIVATE_NETWORKS = ["127.0.0.0/8"]  # the fake providers listen on loopback
    upstream_cache.clear()
    rulebooks.clear()
    servers = []

    def start(gateway: Gateway | None = None) -> RunningGateway:
        gateway = gateway or Gateway()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(build_app(gateway), log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started
        servers.append((server, thread, sock))
        return RunningGateway(f"http://127.0.0.1:{sock.getsockname()[1]}", gateway)

    yield start
    for server, thread, sock in servers:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture
def priced(db):
    load_default_catalog()
    catalog_cache.refresh(force=True)


@pytest.fixture
def gw(serve_gateway, org, provider, priced) -> RunningGateway:
    """A running gateway whose organization sends OpenAI and Anthropic calls to the fake provider with stored keys."""
    allow_upstream_host(org, f"127.0.0.1:{provider.server_address[1]}")
    set_provider_account(org, "openai", base_url=provider.url + "/v1", api_key="sk-stored-openai")
    set_provider_account(org, "anthropic", base_url=provider.url + "/v1", api_key="sk-ant-stored")
    provider.requests.clear()
    return serve_gateway()


@pytest.fixture
def obs_key(org) -> str:
    return create_api_key(org, "gateway").plaintext


@pytest.fixture
def oai(gw, obs_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0)


@pytest.fixture
def claude(gw, obs_key) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=obs_key, max_retries=0)
