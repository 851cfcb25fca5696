"""GET /api/v1/spend: spend from the rollups, grouped and per period, scoped like the other APIs."""

from decimal import Decimal

import pytest

from observatory.models import Role
from observatory.services import create_api_key
from tests.billing import test_exports
from tests.billing.test_exports import CALLS, NEXT_MONTH_COST, _month_total, _user

seeded = test_exports.seeded  # the exports tests' fixture

SPEND = "/api/v1/spend"
NOVEMBER = {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}


@pytest.mark.django_db
def test_totals_and_groups_add_up_to_the_months_calls(client, org, seeded):
    key = create_api_key(org, "finance").plaintext
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    response = client.get(SPEND, NOVEMBER, **auth)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["total"] == {"calls": len(CALLS), "cost_usd": str(_month_total())}
    by = client.get(SPEND, {**NOVEMBER, "group_by": "team,model"}, **auth).json()
    rows = {(r["team"], r["model"]): r for r in by["rows"]}
    assert rows[("search", "gpt-4o-mini")]["calls"] == 2
    assert Decimal(rows[("search", "gpt-4o-mini")]["cost_usd"]) == Decimal("1.2512345679")
    assert rows[("", "gpt-4o-mini")]["cost_usd"] == "0.0100000000"  # unattributed
    assert sum(Decimal(r["cost_usd"]) for r in by["rows"]) == _month_total()
    daily = client.get(SPEND, {**NOVEMBER, "interval": "day"}, **auth).json()["rows"]
    assert [r["period"] for r in daily] == ["2026-11-01", "2026-11-03", "2026-11-12", "2026-11-15", "2026-11-20",
                                           "2026-11-30"]
    december = client.get(SPEND, {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}, **auth).json()
    assert december["total"]["cost_usd"] == str(NEXT_MONTH_COST.quantize(Decimal("0.0000000001")))


@pytest.mark.django_db
def test_a_team_member_gets_only_their_teams_spend(client, org, team, seeded):
    client.force_login(_user(org, Role.VIEWER, team))
    body = client.get(SPEND, {**NOVEMBER, "group_by": "team"}).json()
    assert [r["team"] for r in body["rows"]] == ["search"]
    assert body["total"]["calls"] == 3


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "field"), [
    ({"group_by": "colour"}, "group_by"),
    ({"start": "yesterday"}, "start"),
    ({"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "end"),
    ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
    ({"interval": "minute"}, "interval"),
    ({"interval": "hour", "start": "2026-09-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "interval"),
])
def test_bad_queries_are_400s_naming_the_field(client, org, team, query, field):
    client.force_login(_user(org, Role.VIEWER, team))
    response = client.get(SPEND, query)
    assert response.status_code == 400, response.content
    assert field in str(response.json())


@pytest.mark.django_db
def test_it_needs_a_key_or_a_login(client, org):
    assert client.get(SPEND).status_code in (401, 403)
