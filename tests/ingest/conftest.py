import gzip
from pathlib import Path

import pytest

from observatory.services import create_api_key

DATA = Path(__file__).resolve().parents[1] / "data" / "otlp"


@pytest.fixture
def api_key(org, team):
    return create_api_key(org, "test", team=team)


@pytest.fixture
def post_otlp(client, api_key):
    """POST an OTLP body like an exporter does; returns the response."""

    def post(path="/v1/traces", body=b"", content_type="application/x-protobuf", gzipped=False, key=None, **headers):
        if gzipped:
            body = gzip.compress(body)
            headers["HTTP_CONTENT_ENCODING"] = "gzip"
        token = api_key.plaintext if key is None else key
        if token:
            headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
        return client.post(path, data=body, content_type=content_type, **headers)

    return post


def corpus_body(relative: str) -> tuple[bytes, str, bool]:
    """(body as sent, content type, gzipped) of a saved corpus file."""
    path = DATA / relative
    gzipped = path.name.endswith(".gz")
    stem = path.name.removesuffix(".gz")
    content_type = "application/json" if stem.endswith(".json") else "application/x-protobuf"
    return path.read_bytes(), content_type, gzipped


@pytest.fixture(autouse=True)
def no_outage_seen(monkeypatch):
    """Each test starts as a process that has not seen the database fail (ingest.receiver stores before it answers
    for a while after an outage)."""
    from ingest import receiver

    monkeypatch.setattr(receiver, "_outage_seen_at", -receiver.OUTAGE_HOLD_SECONDS)
