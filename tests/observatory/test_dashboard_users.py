"""The users page (/users/): end users and sessions by spend, from the daily rollups, as far as the user may see."""

import csv
import io
from collections import defaultdict
from decimal import Decimal

import pytest

from tests.observatory.test_dashboard_seed import Seed, leaks_ads, seed, shown


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def expected(calls, field):
    totals = defaultdict(lambda: {"calls": 0, "cost": Decimal(0), "errors": 0})
    for call in calls:
        key = getattr(call, field)
        if key:
            totals[key]["calls"] += 1
            totals[key]["cost"] += call.cost_usd or 0
            totals[key]["errors"] += call.status == "error"
    return totals


def test_it_requires_login(client, data):
    assert client.get("/users/").status_code == 302


def test_a_team_member_sees_their_end_users_by_spend(client, data):
    response = data.login(client, "search_viewer").get("/users/?range=7d")
    assert response.status_code == 200
    rows = response.context["rows"]
    want = expected(data.search_calls, "end_user")  # the unknown-model calls have no user
    assert {r["end_user"]: (r["calls"], r["cost_usd"], r["errors"]) for r in rows} == {
        user: (t["calls"], t["cost"], t["errors"]) for user, t in want.items()}
    assert [r["cost_usd"] for r in rows] == sorted((r["cost_usd"] for r in rows), reverse=True)
    assert shown(response, "identified-share") == "40 of 43 calls name an end user"
    assert leaks_ads(response.content) == []
    assert "user=user-" in response.content.decode()  # each row links to its calls


def test_sessions_and_the_csv(client, data):
    client = data.login(client, "admin")
    response = client.get("/users/?range=7d&by=session")
    want = expected(data.search_calls, "session")
    assert {r["session"]: r["calls"] for r in response.context["rows"]} == {s: t["calls"] for s, t in want.items()}
    download = client.get("/users/?range=7d&by=end_user&format=csv")
    rows = list(csv.DictReader(io.StringIO(download.getvalue().decode())))
    by_user = {row["end_user"]: Decimal(row["cost_usd"]) for row in rows}
    assert by_user["ads-user"] == Decimal("7.77") * 19  # 20 Ads calls, one of them unpriced
    assert set(by_user) == {*expected(data.search_calls, "end_user"), "ads-user"}
