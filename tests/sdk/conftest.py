"""Fixtures for the SDK tests: loopback fake providers, an OTLP sink, and an initialized SDK."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "sdk", Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import anthropic  # noqa: E402
import observatory_sdk  # noqa: E402
import openai  # noqa: E402
from sdk_fakes import FakeProviderServer, OtlpSink  # noqa: E402

DJANGO_TESTS = {"test_sdk_to_ingest.py"}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The end-to-end tests through the Django app need pytest-django; the SDK's own tests run
    without it (`-p no:django`), and then those are not collected."""
    if collection_path.name in DJANGO_TESTS and not config.pluginmanager.hasplugin("django"):
        return True
    return None


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> None:
    """Overrides tests/conftest.py's Django cache reset: the SDK tests run without Django."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def provider() -> Iterator[FakeProviderServer]:
    server = FakeProviderServer()
    yield server
    server.close()


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    receiver = OtlpSink()
    yield receiver
    receiver.stop()


@pytest.fixture
def observatory(sink: OtlpSink) -> Iterator[OtlpSink]:
    """The SDK initialized against the sink (team "core", environment "test"); yields the sink."""
    observatory_sdk.init(endpoint=sink.endpoint, api_key="obs-test-key", team="core", environment="test")
    yield sink
    observatory_sdk.shutdown(timeout=2)


@pytest.fixture
def openai_client(provider: FakeProviderServer) -> openai.OpenAI:
    return observatory_sdk.wrap(openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0))


@pytest.fixture
async def async_openai_client(provider: FakeProviderServer, anyio_backend: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = observatory_sdk.wrap(openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0))
    yield client
    await client.close()


@pytest.fixture
def anthropic_client(provider: FakeProviderServer) -> anthropic.Anthropic:
    return observatory_sdk.wrap(anthropic.Anthropic(base_url=provider.url, api_key="sk-ant-test", max_retries=0))


@pytest.fixture
async def async_anthropic_client(provider: FakeProviderServer, anyio_backend: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = observatory_sdk.wrap(anthropic.AsyncAnthropic(base_url=provider.url, api_key="sk-ant-test", max_retries=0))
    yield client
    await client.close()


@pytest.fixture
def exported(observatory: OtlpSink) -> Callable[[int], list[dict[str, Any]]]:
    """Flush the SDK and return the model-call spans the sink decoded, expecting `count` of them."""

    def collect(count: int = 1) -> list[dict[str, Any]]:
        assert observatory_sdk.flush(timeout=5)
        spans = observatory.wait_for_spans(count)
        assert len(spans) == count, [span["name"] for span in spans]
        return spans

    return collect


@pytest.fixture
def only_span(exported: Callable[[int], list[dict[str, Any]]]) -> Callable[[], dict[str, Any]]:
    """The attributes-and-all of the one span exported so far."""
    return lambda: exported(1)[0]
