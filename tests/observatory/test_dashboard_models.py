"""The models page (/models/): each model's spend, tokens per call, error and cache rates and latency percentiles."""

import csv
import io
from decimal import Decimal

import pytest

from tests.observatory.test_dashboard_seed import ADS_MODEL, Seed, leaks_ads, seed


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def test_it_requires_login(client, data):
    assert client.get("/models/").status_code == 302


def test_a_team_member_compares_their_models(client, data):
    response = data.login(client, "search_viewer").get("/models/?range=7d")
    assert response.status_code == 200
    rows = {r["model"]: r for r in response.context["rows"]}
    assert set(rows) == {"gpt-4o-2024-08-06", "mystery-llm"}
    gpt = rows["gpt-4o-2024-08-06"]
    calls = data.search_calls
    assert gpt["calls"] == 40 and gpt["cost_usd"] == sum(c.cost_usd for c in calls)
    assert gpt["error_pct"] == Decimal(4 * 100) / 40  # i % 10 == 3: 4 of 40
    assert gpt["input_per_call"] == sum(c.input_tokens for c in calls) / 40
    exact_p50 = sorted(c.duration_ms for c in calls)[19]  # nearest rank: the 20th of 40
    assert abs(gpt["p50"] - exact_p50) / exact_p50 <= 0.025  # a histogram bucket's middle
    assert rows["mystery-llm"]["unpriced_calls"] == 3 and rows["mystery-llm"]["cost_usd"] == 0
    assert leaks_ads(response.content) == []
    assert "model=gpt-4o-2024-08-06" in response.content.decode()  # links to the model's calls


def test_an_admin_sees_every_model_and_gets_the_csv(client, data):
    client = data.login(client, "admin")
    rows = {r["model"] for r in client.get("/models/?range=7d").context["rows"]}
    assert {"gpt-4o-2024-08-06", "mystery-llm", ADS_MODEL, "gpt-4o-mini"} == rows
    download = client.get("/models/?range=7d&format=csv")
    table = {row["model"]: row for row in csv.DictReader(io.StringIO(download.getvalue().decode()))}
    assert Decimal(table["gpt-4o-mini"]["cost_usd"]) == Decimal("5.00")  # five unattributed calls at $1.00
    assert table["gpt-4o-2024-08-06"]["p50_ms"] != ""
