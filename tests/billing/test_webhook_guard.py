"""The SSRF guard of alert webhooks (billing.alerts.webhook_guard): internal addresses are refused when a budget or
rule is saved (form and REST API, with a message on the field) and again at delivery, after DNS resolution —
the delivery then fails at once with the reason — unless OBSERVATORY_WEBHOOK_ALLOW_PRIVATE allows them.

DNS is the outside world here: `resolve` makes chosen names resolve to chosen addresses by replacing
socket.getaddrinfo; every other name resolves as usual.
"""

# ruff: noqa: F811 (the shared fixtures smtp and receiver are imported, then named as test parameters)

import socket
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from billing.alerts.budgets import evaluate_budget, send_budget_test_alert
from billing.alerts.delivery import deliver_due
from billing.alerts.webhook_guard import UnsafeWebhookUrl, check_url, plan
from billing.forms import AnomalyRuleForm, BudgetForm
from billing.models import AnomalyRule, Budget, Delivery
from observatory.models import Membership, Role
from tests.billing.test_alerts import NOW, SECRET, add_spend, make_budget, receiver, signature_is_valid, smtp  # noqa: F401

HINT = "OBSERVATORY_WEBHOOK_ALLOW_PRIVATE=true"

REFUSED = [
    ("http://127.0.0.1:8000/hook", "127.0.0.1 is a loopback address"),
    ("http://10.0.0.7/hook", "10.0.0.7 is a private address"),
    ("http://192.168.1.20/hook", "192.168.1.20 is a private address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata service's address"),
    ("http://[::1]:8080/hook", "::1 is a loopback address"),
    ("http://[fe80::1]/hook", "fe80::1 is a link-local address"),
    ("http://[::ffff:10.0.0.1]/hook", "::ffff:10.0.0.1 is a private address"),
    ("http://localhost:9000/hook", "“localhost” is a local host name"),
    ("http://metadata.google.internal/computeMetadata/v1/", "“metadata.google.internal” is a local host name"),
    ("ftp://hooks.example.com/hook", "use an http:// or https:// URL, not ftp://."),
    ("https://bot:hunter2@hooks.example.com/hook", "remove the user name and password from the URL"),
]


@pytest.fixture
def resolve(monkeypatch):
    """resolve({"name": ["address", …]}): those names resolve to those addresses; the others as usual."""
    real = socket.getaddrinfo
    table: dict[str, list[str]] = {}
    lookups: list[str] = []

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name in table:
            lookups.append(name)
            return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (address, port or 0, 0, 0) if ":" in address else (address, port or 0)) for address in table[name]]
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", fake)

    def add(names: dict[str, list[str]]) -> list[str]:
        table.update(names)
        return lookups

    return add


# On save: the form and the REST API ---------------------------------------------------------------------------------

def _budget_form_data(**overrides):
    return {"name": "Search monthly", "period": "month", "time_zone": "UTC", "amount_usd": "250.00",
            "thresholds": "50, 80, 100", "email_recipients": "", "slack_webhook_url": "", "webhook_url": "",
            "webhook_secret": SECRET, "is_active": "on"} | overrides


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["webhook_url", "slack_webhook_url"])
@pytest.mark.parametrize(("url", "message"), REFUSED)
def test_the_form_refuses_internal_addresses_with_the_reason_on_the_field(org, field, url, message):
    form = BudgetForm(_budget_form_data(**{field: url}), organization=org)
    assert not form.is_valid()
    (error,) = form.errors[field]
    assert message in error
    assert set(form.errors) == {field}


@pytest.mark.django_db
def test_the_rule_forms_check_their_urls_too(org):
    form = AnomalyRuleForm({"name": "Spikes", "dimension": "team", "z_threshold": "6", "min_excess_usd": "5",
                            "baseline_weeks": "4", "slack_webhook_url": "http://169.254.169.254/"}, organization=org)
    assert not form.is_valid()
    assert "cloud metadata service" in form.errors["slack_webhook_url"][0]


@pytest.mark.django_db
def test_a_malformed_url_gets_only_the_url_fields_own_message(org):
    form = BudgetForm(_budget_form_data(webhook_url="htp:/broken"), organization=org)
    assert not form.is_valid()
    assert form.errors["webhook_url"] == ["Enter a valid URL."]


@pytest.mark.django_db
def test_the_form_accepts_public_urls_and_internal_ones_when_allowed(org, settings):
    public = BudgetForm(_budget_form_data(webhook_url="https://hooks.example.com/obs",
                                          slack_webhook_url="https://hooks.slack.com/services/T0/B0/XYZ"), organization=org)
    assert public.is_valid(), public.errors
    settings.WEBHOOK_ALLOW_PRIVATE = True
    internal = BudgetForm(_budget_form_data(webhook_url="http://10.0.0.7:8080/hook",
                                            slack_webhook_url="http://localhost:9000/slack"), organization=org)
    assert internal.is_valid(), internal.errors
    # the setting is about addresses: other schemes and credentials in the URL stay refused
    still = BudgetForm(_budget_form_data(webhook_url="https://bot:pw@10.0.0.7/hook"), organization=org)
    assert not still.is_valid()


@pytest.fixture
def admin_client(client, org):
    user = get_user_model().objects.create_user("alice", password="pw-123456!")
    Membership.objects.create(user=user, organization=org, role=Role.ADMIN)
    client.force_login(user)
    return client


def _api_post(client, url, data):
    return client.post(url, data, content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["webhook_url", "slack_webhook_url"])
@pytest.mark.parametrize(("url", "message"), REFUSED)
def test_the_api_answers_400_naming_the_field(admin_client, team, field, url, message):
    response = _api_post(admin_client, "/api/v1/budgets", {
        "name": "Search monthly", "team": "search", "amount_usd": "500.00", "webhook_secret": SECRET, field: url})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {field}
    assert message in body[field][0]
    assert not Budget.objects.exists()


@pytest.mark.django_db
def test_the_api_checks_rules_and_updates_too(admin_client, org, team):
    response = _api_post(admin_client, "/api/v1/anomaly-rules",
                         {"name": "Spikes", "dimension": "model", "slack_webhook_url": "http://localhost:3000/slack"})
    assert response.status_code == 400
    assert response.json() == {"slack_webhook_url": [
        f"“localhost” is a local host name: alerts go only to public internet addresses (an operator can allow "
        f"internal addresses with {HINT})."]}
    assert not AnomalyRule.objects.exists()

    budget = make_budget(org, team=team)
    patched = admin_client.patch(f"/api/v1/budgets/{budget.pk}", {"webhook_url": "http://[::1]/x", "webhook_secret": SECRET},
                                 content_type="application/json")
    assert patched.status_code == 400 and "::1 is a loopback address" in patched.json()["webhook_url"][0]
    budget.refresh_from_db()
    assert budget.webhook_url == ""


@pytest.mark.django_db
def test_the_api_accepts_an_internal_address_when_allowed(admin_client, team, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    response = _api_post(admin_client, "/api/v1/budgets", {
        "name": "Search monthly", "team": "search", "amount_usd": "500.00", "webhook_url": "http://10.0.0.7:8080/hook",
        "webhook_secret": SECRET})
    assert response.status_code == 201, response.content
    assert Budget.objects.get().webhook_url == "http://10.0.0.7:8080/hook"


# At delivery: after DNS resolution ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_name_resolving_to_a_loopback_address_is_refused_at_delivery(org, team, receiver, smtp, settings, resolve):
    settings.WEBHOOK_ALLOW_PRIVATE = False  # the receiver fixture allows them; the point here is that they are not
    resolve({"hooks.example.test": ["127.0.0.1"]})
    port = receiver.server.server_address[1]
    budget = make_budget(org, team=team, webhook_url=f"http://hooks.example.test:{port}/hook", webhook_secret=SECRET,
                         email_recipients=["oncall@example.com"])
    add_spend(org, 120, NOW - timedelta(hours=1), team=team)

    evaluate_budget(budget, NOW)

    hook = Delivery.objects.get(channel="webhook")
    assert (hook.status, hook.attempts) == ("failed", 1)  # failed at once: retrying cannot help
    assert hook.last_error == ("refused: hooks.example.test resolves to 127.0.0.1, a loopback address; alerts go only "
                               f"to public internet addresses (an operator can allow internal addresses with {HINT}).")
    assert "Traceback" not in hook.last_error
    assert receiver.posts == []
    assert Delivery.objects.get(channel="email").status == "sent" and len(smtp.messages) == 1
    assert deliver_due(NOW + timedelta(hours=2)) == {}  # never retried


@pytest.mark.django_db
def test_one_private_address_among_public_ones_is_enough_to_refuse(org, team, receiver, settings, resolve):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    resolve({"mixed.example.test": ["93.184.216.34", "10.1.2.3"]})
    with pytest.raises(UnsafeWebhookUrl, match=r"mixed.example.test resolves to 10.1.2.3, a private address"):
        plan("https://mixed.example.test/hook")


@pytest.mark.django_db
def test_a_url_saved_before_the_guard_is_refused_at_delivery(org, team, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    budget = make_budget(org, team=team, email_recipients=[], slack_webhook_url="http://169.254.169.254/latest/",
                         webhook_url=receiver.url("/hook"), webhook_secret=SECRET)
    add_spend(org, 120, NOW - timedelta(hours=1), team=team)
    evaluate_budget(budget, NOW)
    errors = dict(Delivery.objects.values_list("channel", "last_error"))
    assert errors["slack"].startswith("169.254.169.254 is the cloud metadata service's address")
    assert errors["webhook"].startswith("127.0.0.1 is a loopback address")
    assert set(Delivery.objects.values_list("status", flat=True)) == {"failed"}
    assert receiver.posts == []


@pytest.mark.django_db
def test_a_test_alert_reports_the_refusal(org, team, receiver, smtp, settings, resolve):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    resolve({"hooks.example.test": ["10.20.30.40"]})
    budget = make_budget(org, receiver, team=team, webhook_url="https://hooks.example.test/hook")
    results = send_budget_test_alert(budget, NOW)
    assert results["email"] == "sent"
    assert results["webhook"].startswith("failed: refused: hooks.example.test resolves to 10.20.30.40, a private address")
    assert results["slack"].startswith("failed: 127.0.0.1 is a loopback address")
    assert receiver.posts == []


@pytest.mark.django_db
def test_a_name_resolving_to_a_private_address_is_delivered_when_allowed(org, team, receiver, smtp, resolve):
    resolve({"hooks.internal.test": ["127.0.0.1"]})  # the receiver fixture has set WEBHOOK_ALLOW_PRIVATE
    port = receiver.server.server_address[1]
    budget = make_budget(org, team=team, webhook_url=f"http://hooks.internal.test:{port}/hook", webhook_secret=SECRET)
    add_spend(org, 120, NOW - timedelta(hours=1), team=team)
    evaluate_budget(budget, NOW)
    assert Delivery.objects.get(channel="webhook").status == "sent"
    (post,) = receiver.to("/hook")
    assert signature_is_valid(post, SECRET)


@pytest.mark.django_db
def test_the_request_goes_to_the_address_that_was_checked(org, team, receiver, settings, resolve, monkeypatch):
    """DNS rebinding: the name is resolved once, checked, and the connection is made to that very address,
    with the host name kept in the Host header. (127.0.0.1 passes as public here so that the local receiver
    can stand in for a public host.)"""
    from billing.alerts import webhook_guard

    settings.WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(webhook_guard, "non_public_kind", lambda ip: None)
    lookups = resolve({"rebind.example.test": ["127.0.0.1"]})
    port = receiver.server.server_address[1]
    budget = make_budget(org, team=team, email_recipients=[], webhook_url=f"http://rebind.example.test:{port}/hook",
                         webhook_secret=SECRET)
    add_spend(org, 120, NOW - timedelta(hours=1), team=team)

    evaluate_budget(budget, NOW)

    assert Delivery.objects.get(channel="webhook").status == "sent"
    (post,) = receiver.to("/hook")
    assert post.headers["Host"] == f"rebind.example.test:{port}"
    assert lookups == ["rebind.example.test"]  # resolved by the guard only, not again by the HTTP client


def test_the_https_request_is_pinned_with_the_host_name_for_tls(settings, resolve):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    resolve({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]})
    first, second = plan("https://hooks.example.com/services/x?y=1")
    assert str(first.url) == "https://93.184.216.34/services/x?y=1"
    assert str(second.url) == "https://[2606:2800:220:1:248:1893:25c8:1946]/services/x?y=1"
    assert first.headers == {"Host": "hooks.example.com"} and first.extensions == {"sni_hostname": "hooks.example.com"}
    assert first.pinned


def test_check_url_reads_every_spelling_of_a_loopback_address(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://2130706433/", "http://0x7f.0.0.1/", "http://127.1/", "http://[::ffff:7f00:1]/", "http://LOCALHOST./",
                "http://api.localhost/"):
        with pytest.raises(UnsafeWebhookUrl):
            check_url(url)
    assert str(check_url("https://hooks.slack.com/services/T/B/X")) == "https://hooks.slack.com/services/T/B/X"

