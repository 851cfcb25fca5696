"""The GPU pools page (/gpu/): each pool's cost, who used it, and its idle share — as far as the user may see."""

import csv
import io
from decimal import Decimal

import pytest

from tests.observatory.test_dashboard_seed import Seed, leaks_ads, seed, shown


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def test_it_requires_login(client, data):
    assert client.get("/gpu/").status_code == 302


def test_it_rejects_post(client, data):
    assert data.login(client, "admin").post("/gpu/").status_code == 405


def test_an_admin_sees_every_pool_with_its_idle_share(client, data):
    response = data.login(client, "admin").get("/gpu/?range=7d")
    pools = {r.pool.name: r for r in response.context["pools"]}
    assert (pools["ads-pool"].total_usd, pools["ads-pool"].idle_usd) == (Decimal("8.00"), Decimal("1.34"))
    assert pools["shared-pool"].team_costs == [("Search", Decimal("1.50")), ("Ads", Decimal("0.90"))]
    assert pools["shared-pool"].idle_share == Decimal(20)
    assert shown(response, "gpu-total") == "$11.00"
    assert shown(response, "gpu-idle-share") == "18%"


def test_a_team_sees_its_share_of_a_shared_pool_and_not_the_other_teams_pool(client, data):
    response = data.login(client, "search_viewer").get("/gpu/?range=7d")
    [shared] = response.context["pools"]
    assert (shared.pool.name, shared.total_usd, shared.idle_usd, shared.other_teams_usd) == (
        "shared-pool", Decimal("1.50"), None, Decimal(0))
    assert shown(response, "gpu-total") == "$1.50"
    assert leaks_ads(response.content) == []


def test_the_owner_team_sees_its_whole_pool_but_not_who_else_used_it(client, data):
    data.ads_pool.owner_team = data.search
    data.ads_pool.save()
    response = data.login(client, "search_viewer").get("/gpu/?range=7d")
    pools = {r.pool.name: r for r in response.context["pools"]}
    owned = pools["ads-pool"]
    assert (owned.total_usd, owned.idle_usd, owned.other_teams_usd, owned.team_costs) == (
        Decimal("8.00"), Decimal("1.34"), Decimal("6.66"), [])
    assert b"Other teams" in response.content
    assert b">Ads<" not in response.content


def test_it_downloads_the_pools(client, data):
    response = data.login(client, "admin").get("/gpu/?range=7d&format=csv")
    rows = {row["pool"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert (rows["ads-pool"]["cost_usd"], rows["ads-pool"]["idle_share_pct"]) == ("8.000000", "16.8")


def test_without_pools_it_explains_how_to_add_one(client, org, team):
    from tests.observatory.test_dashboard_seed import user

    client.force_login(user("solo", org, team, "viewer"))
    response = client.get("/gpu/")
    assert b"No GPU pools" in response.content
    assert b"/v1/metrics" in response.content
