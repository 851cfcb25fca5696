"""REST API for budgets: CRUD by role (admins all, managers their teams, viewers and API keys read-only),
field errors for bad input, the test-alert, status and alerts actions, and the alert rules' endpoints."""

# ruff: noqa: F811 (the shared fixtures smtp and receiver are imported, then named as test parameters)

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.alerts.budgets import period_bounds
from billing.models import Alert, AnomalyRule, Budget
from observatory.models import Membership, Organization, Product, Role, Team
from observatory.services import create_api_key
from tests.billing.test_alerts import SECRET, add_spend, make_budget, receiver, signature_is_valid, smtp  # noqa: F401 (fixtures)

BUDGETS = "/api/v1/budgets"


def _user(org, role, team=None, name=None):
    user = get_user_model().objects.create_user(name or f"{role}-{team.slug if team else 'org'}", password="pw-123456!")
    Membership.objects.create(user=user, organization=org, team=team, role=role)
    return user


def _payload(**overrides):
    return {"name": "Search monthly", "team": "search", "period": "month", "time_zone": "Europe/Paris",
            "amount_usd": "500.00", "email_recipients": ["oncall@example.com"]} | overrides


def _post(client, data, url=BUDGETS, **headers):
    return client.post(url, data, content_type="application/json", **headers)


# Create, read, update, delete --------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_it_creates_a_budget_for_a_team_the_manager_manages(client, org, team):
    manager = _user(org, Role.MANAGER, team)
    client.force_login(manager)
    response = _post(client, _payload(webhook_url="https://hooks.example.com/obs", webhook_secret=SECRET))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["team"] == "search" and body["organization"] == "acme" and body["owner"] == manager.username
    assert body["amount_usd"] == "500.00" and body["thresholds"] == [50, 80, 100] and body["forecast_alert"] is True
    assert body["has_webhook_secret"] is True and "webhook_secret" not in body
    assert body["page_url"].endswith(f"/budgets/{body['id']}/")
    assert Budget.objects.get().webhook_secret == SECRET


@pytest.mark.django_db
def test_it_lists_only_the_budgets_a_member_may_see(client, org, team, other_team):
    mine = make_budget(org, team=team, name="Search")
    make_budget(org, team=other_team, name="Ads")
    make_budget(org, name="Whole org")
    cart = Product.objects.create(organization=org, name="Cart", slug="cart", team=team)
    by_product = make_budget(org, product=cart, name="Cart")
    client.force_login(_user(org, Role.VIEWER, team))
    names = [b["name"] for b in client.get(BUDGETS).json()]
    assert sorted(names) == sorted([mine.name, by_product.name])
    assert client.get(f"{BUDGETS}/{Budget.objects.get(name='Ads').pk}").status_code == 404


@pytest.mark.django_db
def test_org_wide_members_see_every_budget_of_their_organization_only(client, org, team, other_team):
    make_budget(org, team=team, name="Search")
    make_budget(org, team=other_team, name="Ads")
    elsewhere = Organization.objects.create(name="Globex", slug="globex")
    make_budget(elsewhere, name="Theirs")
    client.force_login(_user(org, Role.VIEWER))
    assert sorted(b["name"] for b in client.get(BUDGETS).json()) == ["Ads", "Search"]


@pytest.mark.django_db
def test_viewers_can_read_but_not_change(client, org, team):
    budget = make_budget(org, team=team)
    client.force_login(_user(org, Role.VIEWER, team))
    assert client.get(f"{BUDGETS}/{budget.pk}").status_code == 200
    assert _post(client, _payload()).status_code == 403
    assert client.patch(f"{BUDGETS}/{budget.pk}", {"amount_usd": "1"}, content_type="application/json").status_code == 403
    assert client.delete(f"{BUDGETS}/{budget.pk}").status_code == 403
    assert Budget.objects.get().amount_usd == Decimal(100)


@pytest.mark.django_db
def test_a_manager_cannot_change_another_teams_or_the_organizations_budgets(client, org, team, other_team):
    theirs = make_budget(org, team=other_team)
    client.force_login(_user(org, Role.MANAGER, team))
    response = _post(client, _payload(team="ads"))
    assert response.status_code == 403
    assert _post(client, _payload(team=None)).status_code == 403  # organization-wide: admins only
    assert client.delete(f"{BUDGETS}/{theirs.pk}").status_code == 404  # not even visible
    mine = make_budget(org, team=team)
    moved = client.patch(f"{BUDGETS}/{mine.pk}", {"team": "ads"}, content_type="application/json")
    assert moved.status_code == 403
    assert Budget.objects.get(pk=mine.pk).team == team


@pytest.mark.django_db
def test_an_admin_manages_every_budget_of_the_organization(client, org, team):
    client.force_login(_user(org, Role.ADMIN))
    created = _post(client, _payload(team=None, name="Acme monthly", amount_usd="10000"))
    assert created.status_code == 201, created.content
    budget_id = created.json()["id"]
    updated = client.patch(f"{BUDGETS}/{budget_id}", {"thresholds": [90, 100], "period": "week"},
                           content_type="application/json")
    assert updated.status_code == 200, updated.content
    assert (updated.json()["thresholds"], updated.json()["period"]) == ([90, 100], "week")
    assert client.delete(f"{BUDGETS}/{budget_id}").status_code == 204
    assert not Budget.objects.exists()


@pytest.mark.django_db
def test_an_api_key_reads_its_teams_budgets_and_changes_none(client, org, team, other_team):
    make_budget(org, team=team, name="Search")
    make_budget(org, team=other_team, name="Ads")
    make_budget(org, name="Whole org")
    elsewhere = Organization.objects.create(name="Globex", slug="globex")
    make_budget(elsewhere, name="Theirs")
    team_key = {"HTTP_AUTHORIZATION": f"Bearer {create_api_key(org, 'search ci', team=team).plaintext}"}
    assert [b["name"] for b in client.get(BUDGETS, **team_key).json()] == ["Search"]
    key = create_api_key(org, "ci").plaintext
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    assert sorted(b["name"] for b in client.get(BUDGETS, **auth).json()) == ["Ads", "Search", "Whole org"]
    refused = _post(client, _payload(), **auth)
    assert refused.status_code == 403 and "API keys can read" in refused.json()["detail"]


@pytest.mark.django_db
def test_it_requires_authentication(client, org, team):
    make_budget(org, team=team)
    assert client.get(BUDGETS).status_code in (401, 403)


@pytest.mark.django_db
def test_it_rejects_the_wrong_method(client, org, team):
    budget = make_budget(org, team=team)
    client.force_login(_user(org, Role.ADMIN))
    assert client.get(f"{BUDGETS}/{budget.pk}/test-alert").status_code == 405
    assert client.post(f"{BUDGETS}/{budget.pk}/status").status_code == 405


# Bad input ---------------------------------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), [
    ("amount_usd", "-20", "Ensure this value is greater than or equal to 0.01."),
    ("team", "nobody", "unknown team “nobody” in acme."),
    ("thresholds", [50, 1500], "threshold 1500% is out of range: use 1 to 1000 percent."),
    ("webhook_url", "htp:/broken", "Enter a valid URL."),
    ("time_zone", "Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not a known time zone: use an IANA name such as UTC or "
                                       "Europe/Paris."),
    ("period", "fortnight", "\"fortnight\" is not a valid choice."),
    ("email_recipients", ["oncall@"], "Enter a valid email address."),
])
def test_it_rejects_bad_input_with_a_message_on_the_field(client, org, team, field, value, message):
    client.force_login(_user(org, Role.ADMIN))
    response = _post(client, _payload(**{field: value}))
    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert not Budget.objects.exists()


@pytest.mark.django_db
def test_a_webhook_needs_a_secret_to_sign_with(client, org, team):
    client.force_login(_user(org, Role.ADMIN))
    response = _post(client, _payload(webhook_url="https://hooks.example.com/obs"))
    assert response.status_code == 400
    assert response.json() == {"webhook_secret": ["give a secret of at least 16 characters: webhook calls are signed with it."]}


@pytest.mark.django_db
def test_someone_in_several_organizations_names_one(client, org, team):
    user = _user(org, Role.ADMIN)
    elsewhere = Organization.objects.create(name="Globex", slug="globex")
    Membership.objects.create(user=user, organization=elsewhere, role=Role.ADMIN)
    Team.objects.create(organization=elsewhere, name="Search", slug="search")
    client.force_login(user)
    assert "organization" in _post(client, _payload()).json()
    created = _post(client, _payload(organization="globex"))
    assert created.status_code == 201 and Budget.objects.get().team.organization == elsewhere


# Actions -----------------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_test_alert_action_sends_a_marked_test_to_each_channel(client, org, team, receiver, smtp):
    budget = make_budget(org, receiver, team=team)
    client.force_login(_user(org, Role.MANAGER, team))
    response = client.post(f"{BUDGETS}/{budget.pk}/test-alert")
    assert response.status_code == 200, response.content
    assert response.json() == {"results": {"email": "sent", "slack": "sent", "webhook": "sent"}}
    assert len(smtp.messages) == 1 and "[TEST]" in smtp.messages[0]["Subject"]
    (hook,) = receiver.to("/hook")
    assert hook.json()["test"] is True and signature_is_valid(hook, SECRET)
    assert Alert.objects.count() == 0


@pytest.mark.django_db
def test_viewers_cannot_send_test_alerts(client, org, team, receiver):
    budget = make_budget(org, receiver, team=team)
    client.force_login(_user(org, Role.VIEWER, team))
    assert client.post(f"{BUDGETS}/{budget.pk}/test-alert").status_code == 403
    assert receiver.posts == []


@pytest.mark.django_db
def test_the_status_action_shows_spend_and_forecast(client, org, team):
    budget = make_budget(org, team=team, amount_usd=Decimal(1000))
    start, _ = period_bounds("month", "UTC", timezone.now())
    add_spend(org, "123.45", max(start, timezone.now() - timedelta(minutes=5)), team=team)
    client.force_login(_user(org, Role.VIEWER, team))
    body = client.get(f"{BUDGETS}/{budget.pk}/status").json()
    assert body["spend_usd"] == "123.450000" and body["amount_usd"] == "1000.00" and body["percent"] == "12.3"
    assert Decimal(body["forecast_usd"]) >= Decimal("123.45")


@pytest.mark.django_db
def test_the_alerts_action_shows_each_delivery_and_its_attempts(client, org, team, receiver, smtp):
    from billing.alerts.budgets import evaluate_budget

    budget = make_budget(org, receiver, team=team, forecast_alert=False, created_at=timezone.now())
    receiver.answers["/hook"] = [500]
    start, _ = period_bounds("month", "UTC", timezone.now())
    add_spend(org, 60, max(start, timezone.now() - timedelta(minutes=5)), team=team)
    evaluate_budget(budget)
    client.force_login(_user(org, Role.VIEWER, team))
    (alert,) = client.get(f"{BUDGETS}/{budget.pk}/alerts").json()
    deliveries = {d["channel"]: d for d in alert["deliveries"]}
    assert (alert["kind"], alert["threshold_percent"]) == ("threshold", 50)
    assert deliveries["email"]["status"] == "sent" and deliveries["slack"]["status"] == "sent"
    assert (deliveries["webhook"]["status"], deliveries["webhook"]["attempts"]) == ("pending", 1)
    assert "500" in deliveries["webhook"]["last_error"]
    assert [a["id"] for a in client.get("/api/v1/alerts").json()["results"]] == [alert["id"]]


# Alert rules -------------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_manager_creates_an_anomaly_rule_for_their_team(client, org, team):
    client.force_login(_user(org, Role.MANAGER, team))
    response = _post(client, {"name": "Search spikes", "dimension": "model", "team": "search",
                               "slack_webhook_url": "https://hooks.slack.com/services/T/B/X"}, url="/api/v1/anomaly-rules")
    assert response.status_code == 201, response.content
    assert response.json()["z_threshold"] == "6.00" and AnomalyRule.objects.get().team == team


@pytest.mark.django_db
def test_a_latency_slo_rejects_a_bad_limit_and_an_unknown_product(client, org):
    client.force_login(_user(org, Role.ADMIN))
    response = _post(client, {"name": "Chat p99", "product": "chat", "limit_ms": -5}, url="/api/v1/latency-slos")
    assert response.status_code == 400
    assert set(response.json()) == {"limit_ms"}  # field errors first; the product is looked up once fields are valid
    response = _post(client, {"name": "Chat p99", "product": "chat", "limit_ms": 1500}, url="/api/v1/latency-slos")
    assert response.json() == {"product": ["unknown product “chat” in acme."]}
