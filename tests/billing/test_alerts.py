"""Alert channels and delivery: Slack Block Kit, signed webhooks, email over SMTP, retries with backoff,
stale alerts skipped, test alerts; plus spend-anomaly and latency-SLO rules.

The outside world is faked here and shared with the other budget test modules: a local aiosmtpd SMTP
server (`smtp`) and a threaded HTTP server standing in for Slack and webhook receivers (`receiver`). The
receiver listens on 127.0.0.1, so the tests that use it allow private webhook addresses, as an on-premises
installation would (settings.WEBHOOK_ALLOW_PRIVATE; the guard itself is tested in test_webhook_guard.py).
"""

import email
import email.policy
import hashlib
import hmac
import itertools
import json
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from billing.alerts.anomalies import evaluate_anomaly_rule, evaluate_latency_slo, robust_z
from billing.alerts.budgets import evaluate_budget, send_budget_test_alert
from billing.alerts.delivery import MAX_ATTEMPTS, deliver_due
from billing.models import Alert, AnomalyRule, Budget, Delivery, LatencySlo
from billing.rollups import rollup_pending
from ingest.models import LLMCall
from observatory.models import Product

SECRET = "whsec-0123456789abcdef"
NOW = datetime(2026, 11, 18, 15, 20, tzinfo=UTC)  # a Wednesday


# Fakes of the outside world ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    """aiosmtpd handler keeping every message it is given."""

    def __init__(self):
        self.messages = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(settings):
    """A real SMTP server on localhost; Django sends to it with its SMTP backend."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.port = controller.port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield mailbox
    controller.stop()


@dataclass
class Post:
    path: str
    headers: object
    body: bytes

    def json(self):
        return json.loads(self.body)


class Receiver:
    """Stands in for Slack and webhook endpoints: records POSTs; answers 200 unless `answers[path]` lists
    the statuses to give first."""

    def __init__(self):
        self.posts: list[Post] = []
        self.answers: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.posts.append(Post(self.path, self.headers, body))
                    queued = receiver.answers.get(self.path)
                    status = queued.pop(0) if queued else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path: str) -> list[Post]:
        with self.lock:
            return [post for post in self.posts if post.path == path]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # it listens on 127.0.0.1: opt in, as an on-premises install would
    fake = Receiver()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def signature_is_valid(post: Post, secret: str) -> bool:
    """Check X-Observatory-Signature the way a receiver would: HMAC-SHA256 of "<timestamp>.<body>"."""
    timestamp = post.headers["X-Observatory-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + post.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(post.headers["X-Observatory-Signature"], f"sha256={expected}")


# Test data ---------------------------------------------------------------------------------------------------------

_ids = itertools.count(1)


def add_spend(org, dollars, at, team=None, product=None, model="gpt-4o-mini", calls=1, duration_ms=800.0):
    """`calls` calls at `at` costing `dollars` in all."""
    each = Decimal(str(dollars)) / calls
    rows = []
    for _ in range(calls):
        n = next(_ids)
        rows.append(LLMCall(
            organization=org, trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time=at, duration_ms=duration_ms,
            provider="openai", operation="chat", request_model=model, response_model=model, team=team, product=product,
            input_tokens=1000, output_tokens=100, cost_usd=each, cost_status="priced",
        ))
    LLMCall.objects.bulk_create(rows)


def make_budget(org, receiver=None, **fields):
    values = {"name": "Search monthly", "amount_usd": Decimal(100), "period": "month", "time_zone": "UTC",
              "email_recipients": ["oncall@example.com"], "created_at": datetime(2026, 11, 1, tzinfo=UTC)}
    if receiver is not None:
        values |= {"slack_webhook_url": receiver.url("/slack"), "webhook_url": receiver.url("/hook"),
                   "webhook_secret": SECRET}
    return Budget.objects.create(organization=org, **(values | fields))


# Channels ----------------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_slack_gets_block_kit_with_team_amount_percent_forecast_and_link(org, team, receiver, smtp, settings):
    settings.SITE_URL = "https://observatory.example.com"
    budget = make_budget(org, receiver, team=team, forecast_alert=False)
    add_spend(org, "85.50", NOW - timedelta(hours=2), team=team)
    evaluate_budget(budget, NOW)
    (post,) = receiver.to("/slack")
    message = post.json()
    assert message["text"] == "Search monthly: 80% of the budget reached ($85.50 of $100.00)"
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for b in message["blocks"] if "fields" in b
              for f in b["fields"]}
    assert fields["*Team*"] == "Search"
    assert fields["*Spend*"] == "$85.50 of $100.00"
    assert fields["*% of budget*"] == "86%"
    assert fields["*Forecast*"].startswith("$") and fields["*Forecast*"].endswith("by the period end")
    (button,) = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["url"] == f"https://observatory.example.com/budgets/{budget.pk}/"


@pytest.mark.django_db
def test_the_webhook_body_is_json_signed_with_the_budgets_secret(org, team, receiver, smtp):
    budget = make_budget(org, receiver, team=team)
    add_spend(org, 101, NOW - timedelta(hours=1), team=team)
    evaluate_budget(budget, NOW)
    (post,) = receiver.to("/hook")
    assert post.headers["Content-Type"] == "application/json"
    assert signature_is_valid(post, SECRET)
    assert not signature_is_valid(post, "some-other-secret-value")
    assert abs(int(post.headers["X-Observatory-Timestamp"]) - NOW.timestamp()) < 1
    body = post.json()
    assert body["event"] == "budget.threshold_crossed" and body["test"] is False
    assert body["alert"]["budget_id"] == budget.pk
    assert body["alert"]["threshold_percent"] == 100
    assert body["alert"]["spend_usd"] == "101.000000" and body["alert"]["budget_usd"] == "100.00"


@pytest.mark.django_db
def test_a_delivery_repeated_after_a_crash_carries_the_same_delivery_id(org, team, receiver, smtp, monkeypatch):
    """At-least-once: a worker that dies after the receiver got the webhook, before recording it, sends it again
    on the next attempt. Both carry one delivery id (header and body) so the receiver can drop the repeat."""
    budget = make_budget(org, receiver, team=team, forecast_alert=False, email_recipients=[],
                         slack_webhook_url="")
    add_spend(org, 101, NOW - timedelta(hours=1), team=team)
    real_save = Delivery.save

    def killed_before_commit(self, *args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(Delivery, "save", killed_before_commit)
    with pytest.raises(RuntimeError):
        evaluate_budget(budget, NOW)
    monkeypatch.setattr(Delivery, "save", real_save)
    (pending,) = Delivery.objects.filter(status=Delivery.Status.PENDING)  # the 100% webhook: not recorded as sent
    deliver_due(NOW + timedelta(minutes=1))

    first, repeat = receiver.to("/hook")
    assert first.headers["X-Observatory-Delivery"] == repeat.headers["X-Observatory-Delivery"] == str(uuid.UUID(
        first.json()["delivery_id"]))
    assert first.body == repeat.body and signature_is_valid(repeat, SECRET)
    pending.refresh_from_db()
    assert (pending.status, pending.attempts) == (Delivery.Status.SENT, 1)

    other = make_budget(org, receiver, team=team, name="Other", forecast_alert=False, email_recipients=[],
                        slack_webhook_url="")
    evaluate_budget(other, NOW)
    assert receiver.to("/hook")[-1].headers["X-Observatory-Delivery"] != first.headers["X-Observatory-Delivery"]


@pytest.mark.django_db
def test_the_email_names_the_budget_and_its_figures(org, team, receiver, smtp):
    budget = make_budget(org, receiver, team=team, forecast_alert=False,
                         email_recipients=["oncall@example.com", "finops@example.com"])
    add_spend(org, 55, NOW - timedelta(hours=1), team=team)
    evaluate_budget(budget, NOW)
    (message,) = smtp.messages
    assert message["Subject"] == "[Observatory] Search monthly: 50% of the budget reached ($55.00 of $100.00)"
    assert message["To"] == "oncall@example.com, finops@example.com"
    body = message.get_content()
    assert "Spend: $55.00 of $100.00" in body and f"/budgets/{budget.pk}/" in body


# Delivery: retries, staleness, tests -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_failed_delivery_is_retried_with_backoff_and_the_attempts_are_visible(org, team, receiver, smtp):
    budget = make_budget(org, receiver, team=team)
    add_spend(org, 120, NOW - timedelta(hours=1), team=team)
    receiver.answers["/hook"] = [500, 503]
    evaluate_budget(budget, NOW)
    hook = Delivery.objects.get(channel="webhook")
    assert (hook.status, hook.attempts) == ("pending", 1)
    assert "500" in hook.last_error
    assert hook.next_attempt_at == NOW + timedelta(seconds=30)
    assert Delivery.objects.get(channel="slack").status == "sent"

    assert deliver_due(NOW + timedelta(seconds=20)) == {}  # not due yet
    assert deliver_due(NOW + timedelta(seconds=30)) == {"pending": 1}  # the 503
    hook.refresh_from_db()
    assert (hook.attempts, hook.next_attempt_at) == (2, NOW + timedelta(seconds=90))
    assert deliver_due(NOW + timedelta(seconds=90)) == {"sent": 1}
    hook.refresh_from_db()
    assert (hook.status, hook.attempts, hook.last_error) == ("sent", 3, "")
    assert len(receiver.to("/hook")) == 3
    assert len(receiver.to("/slack")) == 1
    assert deliver_due(NOW + timedelta(hours=1)) == {}


@pytest.mark.django_db
def test_a_delivery_that_keeps_failing_is_given_up_after_the_last_attempt(org, team, receiver, smtp):
    budget = make_budget(org, receiver, team=team, email_recipients=[])
    add_spend(org, 120, NOW - timedelta(hours=1), team=team)
    receiver.answers["/hook"] = [500] * 50
    evaluate_budget(budget, NOW)
    moment = NOW
    for _ in range(MAX_ATTEMPTS):
        moment += timedelta(hours=1)
        deliver_due(moment)
    hook = Delivery.objects.get(channel="webhook")
    assert (hook.status, hook.attempts) == ("failed", MAX_ATTEMPTS)
    assert len(receiver.to("/hook")) == MAX_ATTEMPTS


@pytest.mark.django_db
def test_nothing_is_sent_for_a_period_already_past(org, team, receiver, smtp):
    budget = make_budget(org, receiver, team=team, period="day")
    add_spend(org, 120, NOW - timedelta(hours=1), team=team)
    receiver.answers = {"/slack": [500], "/hook": [500]}  # both fail on the first try
    evaluate_budget(budget, NOW)
    assert len(smtp.messages) == 1
    deliver_due(datetime(2026, 11, 19, 0, 1, tzinfo=UTC))  # the next day: the daily budget's alert is stale
    assert sorted(Delivery.objects.values_list("channel", "status")) == [
        ("email", "sent"), ("slack", "skipped"), ("webhook", "skipped")]
    assert len(receiver.posts) == 2
    assert "period is over" in Delivery.objects.get(channel="slack").last_error


@pytest.mark.django_db
def test_evaluating_the_same_crossing_again_sends_nothing_more(org, team, receiver, smtp):
    budget = make_budget(org, receiver, team=team)
    add_spend(org, 120, NOW - timedelta(hours=1), team=team)
    assert len(evaluate_budget(budget, NOW)) == 3
    for minute in range(1, 6):
        assert evaluate_budget(budget, NOW + timedelta(minutes=minute)) == []
    assert len(smtp.messages) == 1 and len(receiver.to("/slack")) == 1 and len(receiver.to("/hook")) == 1


@pytest.mark.django_db
def test_a_test_alert_reaches_every_channel_clearly_marked_and_records_nothing(org, team, receiver, smtp):
    budget = make_budget(org, receiver, team=team)
    add_spend(org, 12, NOW - timedelta(hours=1), team=team)
    assert send_budget_test_alert(budget, NOW) == {"email": "sent", "slack": "sent", "webhook": "sent"}
    (message,) = smtp.messages
    assert message["Subject"].strip() == "[Observatory] [TEST] Test alert for budget “Search monthly”"
    assert "This is a test alert" in message.get_content()
    slack = receiver.to("/slack")[0].json()
    assert slack["text"].startswith("[TEST]") and "test alert" in json.dumps(slack["blocks"])
    (hook,) = receiver.to("/hook")
    assert hook.json()["test"] is True and hook.json()["event"] == "test" and signature_is_valid(hook, SECRET)
    assert Alert.objects.count() == 0 and Delivery.objects.count() == 0


@pytest.mark.django_db
def test_a_test_alert_reports_a_channel_that_fails(org, team, receiver, smtp):
    budget = make_budget(org, receiver, team=team, webhook_url="http://127.0.0.1:9/unreachable")
    results = send_budget_test_alert(budget, NOW)
    assert results["email"] == "sent" and results["slack"] == "sent"
    assert results["webhook"].startswith("failed: ConnectError")


# Spend anomalies ---------------------------------------------------------------------------------------------------

def test_robust_z_scores_against_median_and_mad():
    z, median = robust_z(Decimal(100), [Decimal(10), Decimal(11), Decimal(9), Decimal(10)])
    assert median == Decimal(10)
    assert z == pytest.approx(0.6745 * 90 / 0.5)
    z, median = robust_z(Decimal(10), [Decimal(10), Decimal(11), Decimal(9), Decimal(10)])
    assert z == 0
    z, _ = robust_z(Decimal(5), [Decimal(0)] * 4)
    assert z == float("inf")


def _baseline(org, team, hour, dollars_per_week):
    for week, dollars in enumerate(dollars_per_week, start=1):
        add_spend(org, dollars, hour - timedelta(weeks=week) + timedelta(minutes=10), team=team)


@pytest.mark.django_db
def test_an_hour_far_above_its_own_baseline_alerts_once(org, team, other_team, receiver, smtp):
    rule = AnomalyRule.objects.create(organization=org, name="Spend spikes", dimension="team",
                                      slack_webhook_url=receiver.url("/slack"))
    hour = NOW.replace(minute=0)
    _baseline(org, team, hour, [10, 11, 9, 10])
    _baseline(org, other_team, hour, [10, 11, 9, 10])
    rollup_pending()
    add_spend(org, 100, hour + timedelta(minutes=5), team=team)  # not rolled up yet: the tail
    add_spend(org, 11, hour + timedelta(minutes=5), team=other_team)

    (alert,) = evaluate_anomaly_rule(rule, NOW)
    assert alert.subject == f"team:{team.pk}" and alert.spend_usd == Decimal(100)
    assert alert.details["baseline_median_usd"] == "10.0000000000"
    (post,) = receiver.to("/slack")
    assert post.json()["text"] == "Spend spikes: Search spent $100.00 in the hour from 15:00 UTC (usually $10.00)"
    assert evaluate_anomaly_rule(rule, NOW + timedelta(minutes=1)) == []

    add_spend(org, 100, hour + timedelta(hours=1, minutes=5), team=team)  # the next hour is just as bad
    (continued,) = evaluate_anomaly_rule(rule, NOW + timedelta(hours=1))
    assert continued.suppressed == "continues the alert of the previous hour"
    assert len(receiver.to("/slack")) == 1


@pytest.mark.django_db
def test_an_excess_below_the_dollar_floor_does_not_alert(org, team, receiver):
    rule = AnomalyRule.objects.create(organization=org, name="Spend spikes", dimension="team", min_excess_usd=Decimal(5),
                                      slack_webhook_url=receiver.url("/slack"))
    hour = NOW.replace(minute=0)
    _baseline(org, team, hour, ["0.01", "0.02", "0.01", "0.01"])
    add_spend(org, 3, hour + timedelta(minutes=5), team=team)  # z is huge, but it is $3
    assert evaluate_anomaly_rule(rule, NOW) == []


@pytest.mark.django_db
def test_no_verdict_without_three_weeks_of_history(org, team):
    rule = AnomalyRule.objects.create(organization=org, name="Spend spikes", dimension="model")
    hour = NOW.replace(minute=0)
    _baseline(org, team, hour, [1, 1])
    add_spend(org, 500, hour + timedelta(minutes=5), team=team)
    assert evaluate_anomaly_rule(rule, NOW) == []


# Latency SLOs ------------------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_p99_above_the_limit_alerts_once_and_a_fast_product_does_not(org, team, receiver):
    slow = Product.objects.create(organization=org, name="Chat", slug="chat")
    fast = Product.objects.create(organization=org, name="Search box", slug="search-box")
    hook = {"webhook_url": receiver.url("/hook"), "webhook_secret": SECRET}
    slow_slo = LatencySlo.objects.create(organization=org, name="Chat p99", product=slow, limit_ms=1500, min_calls=50, **hook)
    fast_slo = LatencySlo.objects.create(organization=org, name="Search p99", product=fast, limit_ms=1500, min_calls=50,
                                         **hook)
    add_spend(org, 1, NOW - timedelta(minutes=30), product=slow, calls=95, duration_ms=600)
    add_spend(org, 1, NOW - timedelta(minutes=30), product=slow, calls=5, duration_ms=4000)
    add_spend(org, 1, NOW - timedelta(minutes=30), product=fast, calls=100, duration_ms=600)
    rollup_pending()

    (alert,) = evaluate_latency_slo(slow_slo, NOW)
    assert alert.details["value_ms"] == pytest.approx(4000, rel=0.025)
    assert evaluate_latency_slo(fast_slo, NOW) == []
    assert evaluate_latency_slo(slow_slo, NOW + timedelta(minutes=5)) == []
    (post,) = receiver.to("/hook")
    assert post.json()["event"] == "latency.slo_breached" and signature_is_valid(post, SECRET)


@pytest.mark.django_db
def test_too_few_calls_give_no_latency_verdict(org):
    product = Product.objects.create(organization=org, name="Chat", slug="chat")
    slo = LatencySlo.objects.create(organization=org, name="Chat p99", product=product, limit_ms=100, min_calls=50)
    add_spend(org, 1, NOW - timedelta(minutes=30), product=product, calls=10, duration_ms=5000)
    rollup_pending()
    assert evaluate_latency_slo(slo, NOW) == []
