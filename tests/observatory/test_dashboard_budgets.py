"""The budget pages (/budgets/, /budgets/<id>/, /alerts/): spend to date from the rollups, who may create, edit,
delete and test a budget, and that another team's budget is a 404."""

import json
import re
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from billing.alerts.budgets import period_bounds
from billing.models import Alert, Budget, Delivery
from billing.rollups import rollup_pending
from ingest.models import LLMCall
from observatory.models import Role
from tests.observatory.test_dashboard_seed import leaks_ads, money, shown, user

SECRET = "a-webhook-secret-of-32-characters"


@pytest.fixture
def users(org, team, other_team) -> dict:
    return {
        "admin": user("alice", org, None, Role.ADMIN),
        "manager": user("mona", org, team, Role.MANAGER),
        "viewer": user("vera", org, team, Role.VIEWER),
        "ads_manager": user("adam", org, other_team, Role.MANAGER),
    }


def login(client, users, who: str):
    client.force_login(users[who])
    return client


def seed_calls(org, team, other_team) -> Decimal:
    """Calls this month with known costs: Search's inside the period, one Ads call, one Search call last month."""
    now = timezone.now()
    start, _ = period_bounds(Budget.Period.MONTH, "UTC", now)
    inside = [start + (now - start) / 2, now - timedelta(seconds=30), start + timedelta(seconds=1)]
    costs = [Decimal("12.345678"), Decimal("0.50"), Decimal("3.25")]

    def call(i: int, moment, cost: Decimal, owner) -> LLMCall:
        return LLMCall(organization=org, team=owner, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", operation="chat",
                       start_time=moment, environment="production", cost_status="priced", provider="openai",
                       request_model="gpt-4o", input_tokens=100, output_tokens=10, duration_ms=500.0, cost_usd=cost)

    LLMCall.objects.bulk_create([
        *(call(i, moment, cost, team) for i, (moment, cost) in enumerate(zip(inside, costs, strict=True))),
        call(10, now - timedelta(minutes=5), Decimal("7.77"), other_team),
        call(11, start - timedelta(days=3), Decimal("100.00"), team),
    ])
    rollup_pending()
    return sum(costs, Decimal(0))


def budget_data(**fields) -> dict:
    return {"name": "Search monthly", "period": "month", "time_zone": "UTC", "amount_usd": "100", "thresholds": "50, 80, 100",
            "forecast_alert": "on", "is_active": "on", **fields}


def test_the_pages_require_login(client, users):
    for url in ("/budgets/", "/budgets/1/", "/alerts/"):
        assert client.get(url).status_code == 302


def test_the_list_shows_the_spend_of_the_budgets_scope_this_period(client, org, team, other_team, users):
    spent = seed_calls(org, team, other_team)
    budget = Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=Decimal("40.00"))
    response = login(client, users, "viewer").get("/budgets/")
    assert response.status_code == 200
    [row] = response.context["rows"]
    assert row.status.spend_usd == spent
    assert shown(response, f"budget-spent-{budget.id}") == money(spent) == "$16.10"
    assert shown(response, f"budget-percent-{budget.id}") == "40%"
    assert b"New budget" not in response.content  # viewers do not see the form
    assert leaks_ads(response.content) == []


def test_team_members_see_only_their_teams_budgets_and_admins_all(client, org, team, other_team, users):
    Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=10)
    Budget.objects.create(organization=org, team=other_team, name="Ads monthly", amount_usd=10)
    Budget.objects.create(organization=org, name="Company", amount_usd=10)
    names = lambda who: {r.budget.name for r in login(client, users, who).get("/budgets/").context["rows"]}  # noqa: E731
    assert names("manager") == {"Search monthly"}
    assert names("admin") == {"Search monthly", "Ads monthly", "Company"}


def test_a_manager_creates_a_budget_for_their_team(client, org, team, users):
    client = login(client, users, "manager")
    assert b"New budget" in client.get("/budgets/").content
    response = client.post("/budgets/", budget_data(team=team.id))
    budget = Budget.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/budgets/{budget.id}/?org={org.slug}"
    assert (budget.team, budget.amount_usd, budget.thresholds, budget.owner) == (team, Decimal("100.00"), [50, 80, 100],
                                                                                 users["manager"])


def test_a_manager_cannot_create_an_organization_wide_budget(client, users):
    response = login(client, users, "manager").post("/budgets/", budget_data())
    assert response.status_code == 403
    assert not Budget.objects.exists()


def test_a_viewer_cannot_create_a_budget(client, team, users):
    response = login(client, users, "viewer").post("/budgets/", budget_data(team=team.id))
    assert response.status_code == 403
    assert not Budget.objects.exists()


def test_a_negative_amount_re_renders_the_form_with_the_error(client, team, users):
    response = login(client, users, "admin").post("/budgets/", budget_data(team=team.id, amount_usd="-5"))
    assert response.status_code == 400
    assert "a budget is more than $0." in shown(response, "error-amount_usd")
    assert b'value="Search monthly"' in response.content  # what was typed is kept
    assert not Budget.objects.exists()


def test_every_wrong_field_shows_its_error_under_it_at_once(client, team, users):
    response = login(client, users, "admin").post("/budgets/", budget_data(
        name="", amount_usd="0", thresholds="50, 1500", time_zone="Mars/Base", email_recipients="oncall@, bob",
        webhook_url="https://hooks.example.com/x", webhook_secret="short"))
    assert response.status_code == 400
    assert shown(response, "error-name") == "This field is required."
    assert shown(response, "error-amount_usd") == "a budget is more than $0."
    assert shown(response, "error-thresholds") == "threshold 1500% is out of range: use 1 to 1000 percent."
    assert shown(response, "error-time_zone").startswith("&#x27;Mars/Base&#x27; is not a known time zone")
    assert shown(response, "error-email_recipients") == "&#x27;oncall@&#x27;, &#x27;bob&#x27; are not valid email addresses."
    assert shown(response, "error-webhook_secret").startswith("give a secret of at least 16 characters")
    # the browser leaves the checks to the server, which answers all of them together (not one bubble at a time)
    assert re.search(rb'<form method="post" action="/budgets/\?org=[^"]+" hx-boost="false" novalidate>', response.content)
    assert not Budget.objects.exists()


def test_the_budget_page_shows_status_chart_and_alert_history(client, org, team, other_team, users):
    spent = seed_calls(org, team, other_team)
    budget = Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=Decimal("10.00"))
    start, end = period_bounds(budget.period, budget.time_zone, timezone.now())
    alert = Alert.objects.create(organization=org, budget=budget, kind=Alert.Kind.THRESHOLD, period_start=start,
                                 period_end=end, threshold_percent=100, spend_usd=spent, title="Search monthly: 100% reached",
                                 message="…", deliver_until=end)
    Delivery.objects.create(alert=alert, channel=Delivery.Channel.WEBHOOK, target="https://example.com/hook",
                            status=Delivery.Status.FAILED, attempts=5, last_error="example.com answered 500", next_attempt_at=end)
    response = login(client, users, "viewer").get(f"/budgets/{budget.id}/")
    assert response.status_code == 200
    assert shown(response, "budget-spent") == money(spent)
    datasets = {d["label"]: d["data"] for d in response.context["chart"]["datasets"]}
    so_far = [Decimal(v) for v in datasets["Spent (cumulative)"] if v is not None]
    assert so_far == sorted(so_far) and so_far[-1] == spent.quantize(Decimal("0.01"))
    assert set(datasets["Budget"]) == {"10.00"}
    content = response.content.decode()
    assert "Search monthly: 100% reached" in content and "5 attempts" in content and "example.com answered 500" in content
    assert "Edit budget" not in content and "Send test alert" not in content  # a viewer changes nothing
    assert login(client, users, "viewer").post(f"/budgets/{budget.id}/", budget_data(team=team.id)).status_code == 403
    alerts = login(client, users, "viewer").get("/alerts/")
    assert "Search monthly: 100% reached" in alerts.content.decode()


def test_a_manager_edits_and_deletes_their_teams_budget(client, org, team, users):
    budget = Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=10)
    client = login(client, users, "manager")
    response = client.post(f"/budgets/{budget.id}/", budget_data(team=team.id, amount_usd="250.50", name="Search"))
    assert response.status_code == 302
    budget.refresh_from_db()
    assert (budget.name, budget.amount_usd) == ("Search", Decimal("250.50"))
    bad = client.post(f"/budgets/{budget.id}/", budget_data(team=team.id, amount_usd="-1"))
    assert bad.status_code == 400
    budget.refresh_from_db()
    assert budget.amount_usd == Decimal("250.50")
    assert client.get(f"/budgets/{budget.id}/delete/").status_code == 405
    assert client.post(f"/budgets/{budget.id}/delete/").status_code == 302
    assert not Budget.objects.exists()


def test_another_teams_budget_is_a_404(client, org, other_team, users):
    budget = Budget.objects.create(organization=org, team=other_team, name="Ads monthly", amount_usd=10)
    client = login(client, users, "manager")
    assert client.get(f"/budgets/{budget.id}/").status_code == 404
    assert client.post(f"/budgets/{budget.id}/").status_code == 404
    assert client.post(f"/budgets/{budget.id}/delete/").status_code == 404
    assert client.post(f"/budgets/{budget.id}/test-alert/").status_code == 404
    assert Budget.objects.filter(pk=budget.pk).exists()


def test_wrong_methods_are_405(client, org, team, users):
    budget = Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=10)
    client = login(client, users, "admin")
    assert client.put("/budgets/").status_code == 405
    assert client.delete(f"/budgets/{budget.id}/").status_code == 405
    assert client.get(f"/budgets/{budget.id}/test-alert/").status_code == 405
    assert client.post("/alerts/").status_code == 405


@pytest.fixture
def receiver(settings):
    """A local HTTP server that records the bodies POSTed to it (on 127.0.0.1: private addresses are allowed)."""
    settings.WEBHOOK_ALLOW_PRIVATE = True
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_test_alert_button_delivers_one_test_payload_to_the_webhook(client, org, team, users, receiver, settings):
    settings.SLACK_WEBHOOK_URL = ""
    url, received = receiver
    budget = Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=10,
                                   webhook_url=f"{url}/hook", webhook_secret=SECRET)
    response = login(client, users, "manager").post(f"/budgets/{budget.id}/test-alert/", follow=True)
    assert response.status_code == 200
    assert len(received) == 1
    path, headers, payload = received[0]
    assert path == "/hook"
    assert "test" in json.dumps(payload).lower()
    assert any(name.lower() == "x-observatory-signature" for name in headers)
    message = " ".join(str(m) for m in response.context["messages"])
    assert "webhook: sent" in message
    assert "webhook: sent" in response.content.decode()
    assert not Alert.objects.exists()  # a test records nothing


def test_a_viewer_cannot_send_a_test_alert(client, org, team, users, receiver):
    url, received = receiver
    budget = Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=10,
                                   webhook_url=f"{url}/hook", webhook_secret=SECRET)
    assert login(client, users, "viewer").post(f"/budgets/{budget.id}/test-alert/").status_code == 403
    assert received == []


def test_an_alert_link_without_org_redirects_to_the_budgets_organization(client, org, team, users):
    budget = Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=10)
    response = login(client, users, "manager").get(f"/budgets/{budget.id}/")
    assert response.status_code == 200  # the user's only organization: no redirect needed


def test_the_budget_page_never_shows_a_webhooks_secret_path(client, org, team, users, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    budget = Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=Decimal("10.00"),
                                   slack_webhook_url="https://hooks.slack.com/services/T000/B000/s3cr3t",
                                   webhook_url="https://alerts.example.com/in/tok3n?sig=abc")
    content = login(client, users, "viewer").get(f"/budgets/{budget.id}/").content.decode()
    assert "https://hooks.slack.com/…" in content and "https://alerts.example.com/…" in content
    assert "s3cr3t" not in content and "tok3n" not in content
