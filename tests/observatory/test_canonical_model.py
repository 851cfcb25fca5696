"""One model, one line: a failed call naming only the alias it asked for and successful calls answered by a dated
snapshot are the same model on the errors and models pages, in the spend API and the exports."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.rollups import rollup_pending
from ingest.models import LLMCall
from observatory.models import Membership, Role
from observatory.services import create_api_key


def _call(minutes_ago: int, **fields) -> dict:
    start = timezone.now() - timedelta(minutes=minutes_ago)
    return {"provider": "openai", "request_model": "gpt-4o-mini", "start_time": start.isoformat(), "duration_ms": 800,
            "input_tokens": 1000, "output_tokens": 100, **fields}


@pytest.fixture
def stored(client, org, team):
    calls = [_call(10 + i, response_model="gpt-4o-mini-2024-07-18") for i in range(3)]
    calls += [_call(5, status="error", error_type="rate_limit", http_status=429, input_tokens=0, output_tokens=0)]
    calls += [_call(3, provider="anthropic", request_model="claude-sonnet-4-5", response_model="claude-sonnet-4-5-20250929")]
    key = create_api_key(org, "ingest", team=team).plaintext
    response = client.post("/api/v1/calls", {"calls": calls}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 202, response.content
    rollup_pending()
    admin = get_user_model().objects.create_user("alice", password="pw-123456!")
    Membership.objects.create(user=admin, organization=org, role=Role.ADMIN)
    client.force_login(admin)
    return client


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.getvalue().decode())))


@pytest.mark.django_db
def test_every_call_carries_its_canonical_model_and_keeps_the_snapshot(stored):
    models = sorted(LLMCall.objects.values_list("model", "response_model", "status"))
    assert models == [("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "ok"), ("gpt-4o-mini", "", "error"),
                      *[("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "ok")] * 3]


@pytest.mark.django_db
def test_the_errors_page_shows_each_model_once_with_its_real_error_rate(stored):
    rows = {row["model"]: row for row in _csv(stored.get("/errors/", {"format": "csv", "range": "24h"}))}
    assert set(rows) == {"gpt-4o-mini", "claude-sonnet-4-5"}
    assert (rows["gpt-4o-mini"]["calls"], rows["gpt-4o-mini"]["errors"]) == ("4", "1")
    assert Decimal(rows["gpt-4o-mini"]["error_rate_pct"]) == Decimal(25)


@pytest.mark.django_db
def test_the_models_page_and_the_spend_api_agree(stored):
    rows = _csv(stored.get("/models/", {"format": "csv", "range": "24h"}))
    assert sorted((row["model"], row["calls"]) for row in rows) == [("claude-sonnet-4-5", "1"), ("gpt-4o-mini", "4")]
    spend = stored.get("/api/v1/spend", {"group_by": "model"}).json()
    assert sorted((row["model"], row["calls"]) for row in spend["rows"]) == [("claude-sonnet-4-5", 1), ("gpt-4o-mini", 4)]


@pytest.mark.django_db
def test_the_calls_explorer_finds_a_model_by_its_canonical_or_snapshot_name(stored):
    for name, count in (("gpt-4o-mini", 4), ("gpt-4o-mini-2024-07-18", 3)):
        rows = _csv(stored.get("/calls/", {"format": "csv", "range": "24h", "model": name}))
        assert len(rows) == count and {row["model"] for row in rows} == {"gpt-4o-mini"}
