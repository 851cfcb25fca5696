"""The settings page (/settings/) and its API key actions: create (POST /settings/keys/, answered with the page
that shows the plaintext once) and revoke (POST /settings/keys/<id>/revoke/). Managers for their
teams, admins for all, viewers never."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.alerts.budgets import evaluate_budgets
from billing.models import Budget
from billing.rollups import rollup_pending
from observatory.models import ApiKey
from observatory.services import authenticate_key
from tests.billing.test_alerts import add_spend
from tests.observatory.test_dashboard_seed import Seed, leaks_ads, seed


@pytest.fixture
def data(org, team, other_team) -> Seed:
    return seed(org, team, other_team)


def _revoke(key: ApiKey) -> str:
    return f"/settings/keys/{key.id}/revoke/"


def test_it_requires_login(client, data):
    assert client.get("/settings/").status_code == 302
    assert client.post("/settings/keys/", {"name": "x", "team": "search"}).status_code == 302
    assert client.post(_revoke(data.search_key)).status_code == 302
    assert ApiKey.objects.count() == 2


def test_key_actions_reject_get(client, data):
    client = data.login(client, "admin")
    assert client.get("/settings/keys/").status_code == 405
    assert client.get(_revoke(data.search_key)).status_code == 405


def test_it_shows_the_users_teams_members_keys_and_rules(client, data):
    response = data.login(client, "search_viewer").get("/settings/")
    assert response.status_code == 200
    assert [row["key"].name for row in response.context["keys"]] == ["Search key"]
    assert {m.user.username for m in response.context["members"]} == {"vera", "mona"}
    assert list(response.context["rules"]) == []
    assert leaks_ads(response.content) == []
    admin = data.login(client, "admin").get("/settings/")
    assert {row["key"].name for row in admin.context["keys"]} == {"Search key", "Ads ingest key"}
    assert [rule.pattern for rule in admin.context["rules"]] == ["ads-secret-*"]


def test_it_shows_the_background_jobs_that_fail_as_far_as_the_viewer_may_see(client, data):
    assert b'data-testid="jobs-ok"' in data.login(client, "admin").get("/settings/").content
    add_spend(data.org, "0.01", datetime(9999, 12, 31, 23, 30, tzinfo=UTC))  # stored before ingest bounded times
    rollup_pending()
    for team in (data.ads, data.search):  # time zones saved before they were checked
        Budget.objects.create(organization=data.org, team=team, name=f"{team.name} monthly", amount_usd=Decimal(10),
                              time_zone="Mars/Olympus_Mons")
    evaluate_budgets()

    admin = data.login(client, "admin").get("/settings/")
    jobs = admin.context["jobs"]
    assert [(hour.isoformat(), problem.split(":")[0]) for hour, problem in jobs.failed_hours] == [
        ("9999-12-31T23:00:00+00:00", "OverflowError")]
    assert b"9999-12-31 23:00" in admin.content
    assert [source.name for _, source in jobs.failing_evaluations] == ["Ads monthly", "Search monthly"]
    assert b"ZoneInfoNotFoundError" in admin.content
    viewer = data.login(client, "search_viewer").get("/settings/")
    assert [source.name for _, source in viewer.context["jobs"].failing_evaluations] == ["Search monthly"]
    assert b"Ads monthly" not in viewer.content and leaks_ads(viewer.content) == []


def test_a_viewer_cannot_create_or_revoke_keys(client, data):
    client = data.login(client, "search_viewer")
    page = client.get("/settings/")
    assert b"Create key" not in page.content
    assert b"Revoke" not in page.content
    assert client.post("/settings/keys/", {"name": "sneaky", "team": "search"}).status_code == 403
    assert client.post(_revoke(data.search_key)).status_code == 403
    assert ApiKey.objects.count() == 2
    assert ApiKey.objects.get(pk=data.search_key.pk).revoked_at is None


def test_a_manager_creates_a_key_for_their_team_and_sees_it_once(client, data):
    client = data.login(client, "search_manager")
    once = client.get("/settings/").context["form"].initial["once"]
    response = client.post("/settings/keys/", {"name": "search-prod", "team": "search", "product": "answers",
                                               "once": once})
    assert response.status_code == 201  # the answer to the POST shows the key: it is kept nowhere to show later
    assert response["Cache-Control"] == "no-store"
    plaintext = response.context["new_key"].plaintext
    assert plaintext.encode() in response.content
    key = authenticate_key(plaintext)
    assert (key.name, key.default_team, key.default_product, key.created_by) == (
        "search-prod", data.search, data.answers, data.users["search_manager"])
    assert ApiKey.objects.count() == 3

    again = client.get("/settings/")  # any later visit
    assert again.context["new_key"] is None
    assert plaintext.encode() not in again.content
    assert "no-store" not in again.get("Cache-Control", "")


def test_the_new_keys_plaintext_is_never_stored_server_side(client, data):
    """The plaintext is in the POST's answer only: not in the session store, not in the database."""
    from django.contrib.sessions.models import Session
    from django.db import connection

    client = data.login(client, "admin")
    response = client.post("/settings/keys/?org=acme", {"name": "everything", "team": "",
                                                        "once": client.get("/settings/").context["form"].initial["once"]})
    plaintext = response.context["new_key"].plaintext
    for session in Session.objects.all():
        assert plaintext not in str(session.get_decoded())
        assert plaintext not in session.session_data
    secret = plaintext.split("_", 2)[2]  # obs_<prefix>_<secret>
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM observatory_apikey WHERE strpos(key_hash || prefix || name, %s) > 0",
                       [secret])
        assert cursor.fetchone()[0] == 0


def test_sending_the_key_form_again_creates_no_second_key(client, data):
    client = data.login(client, "search_manager")
    form = {"name": "search-prod", "team": "search", "once": client.get("/settings/").context["form"].initial["once"]}
    assert client.post("/settings/keys/", form).status_code == 201
    resent = client.post("/settings/keys/", form)  # the browser's reload of the page that showed the key
    assert resent.status_code == 302
    assert ApiKey.objects.filter(name="search-prod").count() == 1
    page = client.get(resent["Location"])
    assert page.context["new_key"] is None
    assert b"already created" in page.content


def test_a_manager_cannot_create_a_key_for_another_team_or_the_whole_organization(client, data):
    client = data.login(client, "search_manager")
    assert client.post("/settings/keys/", {"name": "x", "team": "ads"}).status_code == 400
    assert client.post("/settings/keys/", {"name": "x", "team": ""}).status_code == 400
    assert ApiKey.objects.count() == 2


def test_an_admin_creates_an_organization_wide_key(client, data):
    response = data.login(client, "admin").post("/settings/keys/", {"name": "everything", "team": ""})
    assert response.status_code == 201
    assert authenticate_key(response.context["new_key"].plaintext).default_team is None


def test_a_form_error_is_shown_on_the_settings_page_with_400(client, data):
    response = data.login(client, "search_manager").post("/settings/keys/", {"name": "", "team": "search"})
    assert response.status_code == 400
    assert response.context["new_key"] is None and response.context["form"].errors["name"]
    assert b"This field is required." in response.content


def test_a_manager_revokes_their_teams_key(client, data):
    response = data.login(client, "search_manager").post(_revoke(data.search_key))
    assert response.status_code == 302
    assert response["Location"] == "/settings/?org=acme"
    data.search_key.refresh_from_db()
    assert data.search_key.revoked_at is not None
    page = data.login(client, "search_manager").get("/settings/")
    assert "is revoked: requests with it now get 401" in page.content.decode()


def test_another_teams_key_is_a_404(client, data):
    assert data.login(client, "search_manager").post(_revoke(data.ads_key)).status_code == 404
    data.ads_key.refresh_from_db()
    assert data.ads_key.revoked_at is None


def test_it_downloads_the_keys_without_secrets(client, data):
    body = data.login(client, "search_viewer").get("/settings/?format=csv").getvalue().decode()
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert (row["name"], row["prefix"], row["team"], row["revoked_at"]) == ("Search key", data.search_key.prefix, "search", "")
    assert data.search_key.key_hash not in body


def test_spend_per_api_key_loads_after_the_page_and_keeps_to_the_viewers_keys(client, data):
    from ingest.models import LLMCall
    from tests.observatory.test_dashboard_seed import money, shown

    LLMCall.objects.filter(team=data.search).update(api_key=data.search_key)
    LLMCall.objects.filter(team=data.ads).update(api_key=data.ads_key)
    priced = data.search_calls
    page = data.login(client, "search_viewer").get("/settings/")
    assert 'hx-get="/settings/keys/spend/' in page.content.decode()
    response = client.get("/settings/keys/spend/")
    assert response.status_code == 200
    [row] = response.context["rows"]
    assert row["key"] == data.search_key and row["calls"] == len(priced) + len(data.unknown_calls)
    assert row["cost_usd"] == sum(c.cost_usd for c in priced)
    assert shown(response, f"key-spend-{data.search_key.id}") == money(row["cost_usd"])
    assert leaks_ads(response.content) == []
    admin = data.login(client, "admin").get("/settings/keys/spend/")
    assert [r["key"] for r in admin.context["rows"]] == [data.ads_key, data.search_key]  # Ads: 19 × $7.77 first
