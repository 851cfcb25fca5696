"""The caching page (/caching/): provider prompt-cache hit rate and dollars saved, app-cache hits and cost avoided."""

import csv
import io
from decimal import Decimal

import pytest

from tests.observatory.test_dashboard_seed import Seed, leaks_ads, money, seed, shown


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def test_it_requires_login(client, data):
    assert client.get("/caching/").status_code == 302


def test_it_rejects_post(client, data):
    assert data.login(client, "admin").post("/caching/").status_code == 405


def test_it_shows_the_prompt_cache_hit_rate_and_savings(client, data):
    calls = data.search_calls + data.unknown_calls
    cached = sum(call.cached_input_tokens for call in calls)
    rate = Decimal(cached) * 100 / sum(call.input_tokens for call in calls)
    saved = sum(call.cached_input_tokens * (data.price.input - data.price.cached_input_read) for call in data.search_calls)
    response = data.login(client, "search_viewer").get("/caching/?range=7d")
    assert response.status_code == 200
    assert shown(response, "cache-hit-rate") == f"{rate.quantize(Decimal('0.1'))}%"
    assert shown(response, "cache-savings") == money(saved)
    assert leaks_ads(response.content) == []


def test_it_shows_app_cache_hits_and_the_cost_avoided(client, data):
    hit = data.search_calls[5]
    response = data.login(client, "search_viewer").get("/caching/?range=7d")
    assert response.context["total"]["app_cache_hits"] == 1
    assert shown(response, "cost-avoided") == money(hit.cost_avoided_usd)
    [answers] = response.context["by_product"]
    assert answers["cost_avoided_usd"] == hit.cost_avoided_usd


def test_it_downloads_caching_by_model(client, data):
    response = data.login(client, "search_viewer").get("/caching/?range=7d&format=csv")
    rows = {row["model"]: row for row in csv.DictReader(io.StringIO(response.getvalue().decode()))}
    assert rows["gpt-4o-2024-08-06"]["app_cache_hits"] == "1"
    assert rows["gpt-4o-2024-08-06"]["cached_input_tokens"] == str(8_000 * 20)


def test_an_empty_range_explains_where_the_figures_come_from(client, data):
    response = data.login(client, "search_viewer").get("/caching/?range=custom&start=2020-01-01&end=2020-01-02")
    assert b"record_cache_hit" in response.content
