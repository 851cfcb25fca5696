"""The overview page (/): spend today, this month and in the range, by team and model, movers, latency."""

import csv
import io
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.utils import timezone

from ingest.models import LLMCall
from observatory.dashboard.filters import preset_period
from observatory.models import Membership, Organization, Role, Team
from tests.observatory.test_dashboard_seed import Seed, leaks_ads, money, seed, shown


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def _cost(**filters) -> Decimal:
    return LLMCall.objects.filter(**filters).aggregate(c=Sum("cost_usd"))["c"] or Decimal(0)


def test_it_requires_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_it_rejects_post(client, data):
    assert data.login(client, "admin").post("/").status_code == 405


def test_it_shows_the_whole_organizations_spend_to_an_admin(client, data):
    response = data.login(client, "admin").get("/")
    assert response.status_code == 200
    assert shown(response, "spend-range") == money(_cost())
    by_team = {row["label"]: row["cost_usd"] for row in response.context["report"].breakdowns["team"]}
    assert by_team == {"Search": _cost(team=data.search), "Ads": _cost(team=data.ads), "Unattributed": Decimal("5.00")}
    assert money(_cost(team=data.search)).encode() in response.content
    assert shown(response, "unattributed") == "$5.00"
    assert shown(response, "unpriced") == "4"


def test_a_team_member_sees_only_their_teams_numbers(client, data):
    response = data.login(client, "search_viewer").get("/")
    assert response.status_code == 200
    assert shown(response, "spend-range") == money(_cost(team=data.search))
    assert [row["label"] for row in response.context["report"].breakdowns["team"]] == ["Search"]
    assert shown(response, "unpriced") == "3"
    assert b'data-testid="unattributed"' not in response.content
    assert leaks_ads(response.content) == []


def test_today_and_this_month_are_calendar_totals(client, data):
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    response = data.login(client, "search_viewer").get("/")
    assert shown(response, "spend-today") == money(_cost(team=data.search, start_time__gte=midnight))
    assert shown(response, "spend-month") == money(_cost(team=data.search, start_time__gte=midnight.replace(day=1)))


def test_the_last_24_hours_count_only_their_calls(client, data):
    period = preset_period("24h", timezone.now())
    response = data.login(client, "search_viewer").get("/?range=24h")
    assert shown(response, "spend-range") == money(_cost(team=data.search, start_time__gte=period.start))
    assert response.context["period"].key == "24h"


def test_spend_by_model_and_cost_per_1000_calls(client, data):
    response = data.login(client, "search_viewer").get("/")
    by_model = {row["label"]: row for row in response.context["report"].breakdowns["model"]}
    assert set(by_model) == {"gpt-4o-2024-08-06", "mystery-llm"}
    gpt = by_model["gpt-4o-2024-08-06"]
    assert gpt["calls"] == 40
    assert gpt["cost_per_1k_calls"] == _cost(team=data.search) * 1000 / 40


def test_top_movers_compare_with_the_previous_period(client, data):
    response = data.login(client, "admin").get("/?range=7d")
    movers = {(m["group"], m["label"]): m for m in response.context["report"].movers}
    ads = movers[("team", "Ads")]
    assert (ads["cost_usd"], ads["previous_cost_usd"]) == (Decimal("147.63"), Decimal(0))
    assert ads["change"].up and ads["change"].pct is None


def test_htmx_gets_only_the_body(client, data):
    response = data.login(client, "admin").get("/?range=7d", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="page-body")
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'class="toolbar"' in response.content
    assert "HX-Request" in response["Vary"]
    assert b"<html" in data.login(client, "admin").get("/?range=7d").content


def test_it_downloads_spend_by_team_as_csv(client, data):
    response = data.login(client, "admin").get("/?range=7d&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = {row["team"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert set(rows) == {"Search", "Ads", "Unattributed"}
    assert Decimal(rows["Search"]["cost_usd"]) == _cost(team=data.search).quantize(Decimal("0.000001"))
    assert rows["Ads"]["calls"] == "20"


def test_a_bad_custom_range_falls_back_and_says_so(client, data):
    response = data.login(client, "admin").get("/?range=custom&start=2026-13-01&end=2026-11-01")
    assert response.status_code == 200
    assert b"Give a custom range as two dates" in response.content


def test_a_new_organization_is_told_how_to_send_its_first_call(client, db):
    org = Organization.objects.create(name="Fresh", slug="fresh")
    user = get_user_model().objects.create_user("newbie", password="pw-123456!")
    Membership.objects.create(user=user, organization=org, team=None, role=Role.ADMIN)
    client.force_login(user)
    response = client.get("/")
    assert b"No calls recorded yet" in response.content
    assert b"http://testserver/v1/traces" in response.content
    assert b"observatory_sdk.init(" in response.content


def test_a_user_without_a_team_is_told_to_ask_an_admin(client, db):
    client.force_login(get_user_model().objects.create_user("nobody", password="pw-123456!"))
    response = client.get("/")
    assert response.status_code == 200
    assert b"not a member of any team" in response.content


def test_it_picks_the_organization_from_the_querystring(client, data):
    other = Organization.objects.create(name="Globex", slug="globex")
    Team.objects.create(organization=other, name="Labs", slug="labs")
    admin = data.users["admin"]
    Membership.objects.create(user=admin, organization=other, team=None, role=Role.VIEWER)
    client.force_login(admin)
    assert client.get("/").context["viewer"].organization.slug == "acme"
    response = client.get("/?org=globex")
    assert response.context["viewer"].organization.slug == "globex"
    assert b"No calls recorded yet" in response.content
    assert b"?org=globex" in response.content  # navigation keeps the organization


def test_another_organization_is_a_404(client, data):
    Organization.objects.create(name="Globex", slug="globex")
    assert data.login(client, "admin").get("/?org=globex").status_code == 404
