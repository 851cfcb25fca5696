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
    rows = {row["pool"]: row for row in csv.DictReader(io.StringIO(response.getvalue().decode()))}
    assert (rows["ads-pool"]["cost_usd"], rows["ads-pool"]["idle_share_pct"]) == ("8.000000", "16.8")


def test_without_pools_it_explains_how_to_add_one(client, org, team):
    from tests.observatory.test_dashboard_seed import user

    client.force_login(user("solo", org, team, "viewer"))
    response = client.get("/gpu/")
    assert b"No GPU pools" in response.content
    assert b"/v1/metrics" in response.content


def test_an_admin_adds_changes_and_deletes_a_pool(client, data):
    from billing.models import GpuPool

    client = data.login(client, "admin")
    assert b'id="new-pool"' in client.get("/gpu/").content
    response = client.post("/gpu/pools/", {
        "name": "llama-70b", "gpu_model": "H100", "gpu_count": "4", "hourly_usd_per_gpu": "2.50",
        "owner_team": data.search.id, "served_models": "llama-3.1-70b, llama-3.3-70b", "gpu_memory_gb": "80",
        "model_params_billion": "70", "weight_precision": "bf16"})
    assert response.status_code == 302
    pool = GpuPool.objects.get(name="llama-70b")
    assert (pool.organization, pool.gpu_count, pool.hourly_usd_per_gpu, pool.owner_team) == (
        data.org, 4, Decimal("2.50"), data.search)
    assert pool.served_models == ["llama-3.1-70b", "llama-3.3-70b"]
    prefix = f"pool{pool.pk}-"
    changed = client.post(f"/gpu/pools/{pool.pk}/", {
        prefix + "name": "llama-70b", prefix + "gpu_count": "2", prefix + "hourly_usd_per_gpu": "2.10",
        prefix + "served_models": "llama-3.1-70b", prefix + "weight_precision": "int8"})
    assert changed.status_code == 302
    pool.refresh_from_db()
    assert (pool.gpu_count, pool.hourly_usd_per_gpu, pool.weight_precision, pool.owner_team) == (2, Decimal("2.10"), "int8", None)
    assert client.post(f"/gpu/pools/{pool.pk}/delete/").status_code == 302
    assert not GpuPool.objects.filter(name="llama-70b").exists()


def test_bad_pools_are_a_400_with_the_reason_and_nothing_saved(client, data):
    from billing.models import GpuPool

    client = data.login(client, "admin")
    before = GpuPool.objects.count()
    for bad, field in (({"gpu_count": "0"}, "gpu_count"), ({"hourly_usd_per_gpu": "-1"}, "hourly_usd_per_gpu"),
                       ({"name": "shared-pool"}, "name"), ({"name": "no spaces please"}, "name")):
        form = {"name": "new-pool", "gpu_count": "1", "hourly_usd_per_gpu": "1", **bad}
        response = client.post("/gpu/pools/", form)
        assert response.status_code == 400, bad
        assert f'data-testid="error-{field}"' in response.content.decode(), bad
    assert GpuPool.objects.count() == before
    edit = client.post(f"/gpu/pools/{data.shared_pool.pk}/", {f"pool{data.shared_pool.pk}-name": "shared-pool",
                                                                f"pool{data.shared_pool.pk}-gpu_count": "-3",
                                                                f"pool{data.shared_pool.pk}-hourly_usd_per_gpu": "3"})
    assert edit.status_code == 400
    data.shared_pool.refresh_from_db()
    assert data.shared_pool.gpu_count == 1


def test_managers_and_other_organizations_cannot_touch_pools(client, data):
    client = data.login(client, "search_manager")
    assert b'id="new-pool"' not in client.get("/gpu/").content
    assert client.post("/gpu/pools/", {"name": "x", "gpu_count": "1", "hourly_usd_per_gpu": "1"}).status_code == 403
    assert client.post(f"/gpu/pools/{data.ads_pool.pk}/delete/").status_code == 403
    assert client.post(f"/gpu/pools/{data.ads_pool.pk}/", {}).status_code == 403
