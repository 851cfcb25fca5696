"""The errors page (/errors/): error rate and the dollars failed calls cost, by model and by error type."""

import csv
import io

import pytest

from tests.observatory.test_dashboard_seed import Seed, leaks_ads, money, seed, shown


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def test_it_requires_login(client, data):
    assert client.get("/errors/").status_code == 302


def test_it_rejects_post(client, data):
    assert data.login(client, "admin").post("/errors/").status_code == 405


def test_it_shows_the_error_rate_and_the_cost_of_failures(client, data):
    failed = [call for call in data.search_calls if call.status == "error"]
    response = data.login(client, "search_viewer").get("/errors/?range=7d")
    assert response.status_code == 200
    assert shown(response, "error-rate") == f"{len(failed) * 100 / 43:.2f}%"
    assert shown(response, "error-cost") == money(sum(call.cost_usd for call in failed))
    assert leaks_ads(response.content) == []


def test_it_groups_failures_by_error_type(client, data):
    response = data.login(client, "search_viewer").get("/errors/?range=7d")
    [rate_limits] = response.context["by_type"]
    assert (rate_limits["error_type"], rate_limits["http_status"], rate_limits["calls"]) == ("RateLimitError", 429, 4)
    admin = data.login(client, "admin").get("/errors/?range=7d")
    assert {row["error_type"]: row["calls"] for row in admin.context["by_type"]} == {"AdsSecretError": 5, "RateLimitError": 4}


def test_it_downloads_errors_by_model(client, data):
    response = data.login(client, "search_viewer").get("/errors/?range=7d&format=csv")
    rows = {row["model"]: row for row in csv.DictReader(io.StringIO(response.getvalue().decode()))}
    assert (rows["gpt-4o-2024-08-06"]["errors"], rows["gpt-4o-2024-08-06"]["error_rate_pct"]) == ("4", "10.00")
