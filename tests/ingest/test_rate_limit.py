"""Per-key ingest rate limits: a key over its budget gets 429 with Retry-After (which OTel exporters honour);
other keys are not slowed; the bucket is shared by every web process of the host (a file they all map)."""

from types import SimpleNamespace

import pytest
from django.utils import timezone
from google.rpc import status_pb2

from ingest import rate_limit
from ingest.models import LLMCall
from observatory.services import create_api_key
from tests.ingest.test_otlp_http import CHAT, make_request


def _spans(count: int) -> bytes:
    return make_request([CHAT] * count).SerializeToString()


@pytest.mark.django_db
def test_a_key_over_its_limit_gets_429_with_retry_after_and_others_are_not_slowed(post_otlp, org, team, settings):
    settings.INGEST_RATE_PER_KEY, settings.INGEST_BURST_PER_KEY = 1, 200
    assert post_otlp(body=_spans(150)).status_code == 200  # 200 tokens → 50
    assert post_otlp(body=_spans(150)).status_code == 200  # admitted while above zero → 100 in debt
    refused = post_otlp(body=_spans(150))
    assert refused.status_code == 429
    assert 90 <= int(refused["Retry-After"]) <= 101  # 100 records of debt at 1 a second (less what refilled meanwhile)
    status = status_pb2.Status.FromString(refused.content)
    assert status.code == 8 and "rate limit" in status.message  # RESOURCE_EXHAUSTED
    assert LLMCall.objects.count() == 300  # what was refused is not stored (the exporter sends it again)

    other = create_api_key(org, "other", team=team)
    assert post_otlp(body=_spans(150), key=other.plaintext).status_code == 200
    assert post_otlp(path="/v1/logs", body=b"{}", content_type="application/json").status_code == 429


@pytest.mark.django_db
def test_a_keys_own_limit_overrides_the_default_and_zero_turns_limits_off(post_otlp, api_key, settings):
    settings.INGEST_RATE_PER_KEY, settings.INGEST_BURST_PER_KEY = 0, 0
    for _ in range(3):
        assert post_otlp(body=_spans(100)).status_code == 200
    api_key.api_key.ingest_rate_limit = 50
    api_key.api_key.save()
    from observatory.services import forget_cached_keys

    forget_cached_keys()
    assert post_otlp(body=_spans(100)).status_code == 200  # burst = the rate (50) → 50 in debt
    assert post_otlp(body=_spans(1)).status_code == 429


@pytest.fixture
def own_table(settings, tmp_path):
    """A table in a fresh file for this test, and the process's usual one again afterwards."""
    settings.DATA_DIR = tmp_path
    rate_limit._buckets = None
    yield
    rate_limit._buckets = None


def test_the_bucket_refills_at_the_rate_and_caps_at_the_burst(settings, own_table):
    settings.INGEST_RATE_PER_KEY, settings.INGEST_BURST_PER_KEY = 100, 1000
    key = SimpleNamespace(pk=1, created_at=timezone.now(), ingest_rate_limit=None)
    assert rate_limit.admit(key, 1500, now=1000.0) is None  # full bucket: admitted, 500 in debt
    assert rate_limit.admit(key, 0, now=1001.0) == 4  # 400 in debt at 100/s
    assert rate_limit.admit(key, 10, now=1005.5) is None  # +50 → admitted
    assert rate_limit.admit(key, 0, now=3000.0) is None
    _, tokens = rate_limit._table().update(rate_limit.bucket_id(key), 100, 1000, 0, 3000.0)
    assert tokens == 1000  # never above the burst


def test_processes_share_one_bucket_through_the_file(tmp_path):
    """Two separately opened tables over the same file (as two gunicorn workers have) see each other's charges."""
    path = tmp_path / "limits.bin"
    first, second = rate_limit._Buckets(path), rate_limit._Buckets(path)
    assert first.fd is not None and second.fd is not None
    assert first.update(42, 10, 100, 90, 500.0) == (True, 10)
    assert second.update(42, 10, 100, 20, 500.0) == (True, -10)
    assert first.update(42, 10, 100, 1, 500.0) == (False, -10)
    assert first.update(7, 10, 100, 1, 500.0) == (True, 99)  # another key has its own bucket
