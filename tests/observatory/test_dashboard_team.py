"""Team pages (/teams/<slug>/) and product pages (/products/<slug>/): spend of one team or product, its
breakdowns, latency and GPU cost — and 404 for anyone outside it."""

import csv
import io
from decimal import Decimal

import pytest
from django.db.models import Sum

from billing.rollups import rollup_hours
from ingest.models import LLMCall
from tests.observatory.test_dashboard_seed import Seed, leaks_ads, money, seed, shown


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def _cost(**filters) -> Decimal:
    return LLMCall.objects.filter(**filters).aggregate(c=Sum("cost_usd"))["c"] or Decimal(0)


def test_it_requires_login(client, data):
    assert client.get("/teams/search/").status_code == 302
    assert client.get("/products/answers/").status_code == 302


def test_it_rejects_post(client, data):
    assert data.login(client, "admin").post("/teams/search/").status_code == 405
    assert data.login(client, "admin").post("/products/answers/").status_code == 405


def test_it_shows_a_teams_spend_and_breakdowns(client, data):
    response = data.login(client, "search_viewer").get("/teams/search/?range=7d")
    assert response.status_code == 200
    assert shown(response, "spend-range") == money(_cost(team=data.search))
    breakdowns = response.context["report"].breakdowns
    assert [row["label"] for row in breakdowns["product"]] == ["Answers"]
    assert {row["label"]: row["calls"] for row in breakdowns["feature"]} == {"answer": 26, "rewrite": 14, "(none)": 3}
    assert [row["label"] for row in breakdowns["environment"]] == ["production"]
    assert leaks_ads(response.content) == []


def test_it_shows_the_teams_gpu_share_and_no_idle_of_a_pool_it_does_not_own(client, data):
    response = data.login(client, "search_viewer").get("/teams/search/?range=7d")
    assert shown(response, "gpu-cost") == "$1.50"
    [pool] = response.context["pools"]
    assert (pool.pool.name, pool.total_usd, pool.idle_usd) == ("shared-pool", Decimal("1.50"), None)


def test_the_owner_team_sees_its_pools_idle_share(client, data):
    response = data.login(client, "ads_viewer").get("/teams/ads/?range=7d")
    pools = {report.pool.name: report for report in response.context["pools"]}
    assert pools["ads-pool"].total_usd == Decimal("8.00")
    assert pools["ads-pool"].idle_share == Decimal("1.34") * 100 / Decimal("8.00")
    assert shown(response, "gpu-cost") == "$7.56"  # 6.66 in its own pool + 0.90 in the shared one


def test_another_teams_page_is_a_404(client, data):
    assert data.login(client, "search_viewer").get("/teams/ads/").status_code == 404
    assert data.login(client, "search_viewer").get("/teams/nope/").status_code == 404


def test_an_admin_opens_every_team(client, data):
    response = data.login(client, "admin").get("/teams/ads/?range=7d")
    assert response.status_code == 200
    assert shown(response, "spend-range") == "$147.63"


def test_it_downloads_a_teams_spend_by_model(client, data):
    response = data.login(client, "search_viewer").get("/teams/search/?format=csv")
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    assert [row["model"] for row in rows] == ["gpt-4o-2024-08-06", "mystery-llm"]
    assert Decimal(rows[0]["cost_usd"]) == _cost(team=data.search).quantize(Decimal("0.000001"))
    assert rows[1]["cost_usd"] == "0.000000"


def test_it_shows_a_products_spend(client, data):
    response = data.login(client, "search_viewer").get("/products/answers/?range=7d")
    assert response.status_code == 200
    assert shown(response, "spend-range") == money(_cost(product=data.answers))
    assert [row["label"] for row in response.context["report"].breakdowns["team"]] == ["Search"]
    assert leaks_ads(response.content) == []


def test_a_products_percentiles_count_only_its_calls_even_for_the_whole_organization(client, data):
    response = data.login(client, "admin").get("/products/answers/?range=7d")
    assert response.context["report"].latency["count"] == 43
    assert response.context["report"].total["calls"] == 43


def test_another_teams_product_is_a_404(client, data):
    assert data.login(client, "search_viewer").get("/products/ads-ranker/").status_code == 404
    assert data.login(client, "ads_viewer").get("/products/ads-ranker/").status_code == 200


def test_a_product_another_team_owns_opens_with_only_the_users_calls(client, data):
    assert data.login(client, "ads_viewer").get("/products/answers/").status_code == 404
    LLMCall.objects.filter(team=data.ads).update(product=data.answers)
    rollup_hours(data.org.id, [call.start_time for call in data.ads_calls])
    response = data.login(client, "ads_viewer").get("/products/answers/?range=7d")
    assert response.status_code == 200
    assert shown(response, "spend-range") == "$147.63"
    assert response.context["report"].total["calls"] == 20


def test_a_team_without_calls_in_range_gets_advice(client, data):
    response = data.login(client, "search_viewer").get("/teams/search/?range=custom&start=2020-01-01&end=2020-01-31")
    assert b"No calls for Search in this range" in response.content
    assert b"observatory.team=search" in response.content
