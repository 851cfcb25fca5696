"""The weekly digest: last week's dollars against the week before, movers, budgets, top savings, absolute links,
a team manager's digest holding their team only, sending once, opting out, retries, Slack, and its page.

Seeded: Search spent $80.00 in the week of 2 November and $120.00 in the week of 9 November (the last complete
week on Wednesday 18 November), $10.00 on 17 November; Ads $23.31 (3 × $7.77) in the week of 9 November only."""

# ruff: noqa: F811 (the shared fixture receiver is imported, then named as a test parameter)

import email
import email.policy
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth import get_user_model
from django.core import mail as django_mail

from billing.alerts.budgets import budget_status
from billing.models import Budget, Recommendation
from billing.rollups import rollup_pending
from observatory import digest
from observatory.access import viewer_in
from observatory.dashboard.digest import compose, last_complete_week
from observatory.models import DigestOptOut, DigestSend, Membership, Product, Role
from tests.billing.test_alerts import Mailbox, add_spend, free_port, receiver  # noqa: F401 (fixture)

NOW = datetime(2026, 11, 18, 15, 20, tzinfo=UTC)  # a Wednesday: the last complete week is 9–15 November
LAST_WEEK = datetime(2026, 11, 10, 12, tzinfo=UTC)
WEEK_BEFORE = datetime(2026, 11, 4, 12, tzinfo=UTC)
SITE = "https://observatory.example.com"


class PickyMailbox(Mailbox):
    """An SMTP server that refuses the addresses in `refuse` (a full mailbox, a typo) and takes the rest."""

    def __init__(self):
        super().__init__()
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


def serving_mail(settings, mailbox):
    """A local SMTP server delivering to `mailbox`, with Django's email settings pointed at it (a generator)."""
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield mailbox
    controller.stop()


@pytest.fixture
def smtp(settings):
    yield from serving_mail(settings, PickyMailbox())


def person(name, org, team, role):
    user = get_user_model().objects.create_user(name, email=f"{name}@example.com")
    Membership.objects.create(user=user, organization=org, team=team, role=role)
    return user


def seed_week(org, team, other_team):
    """The calls, budgets, recommendations and people of the module docstring; returns them by name."""
    answers = Product.objects.create(organization=org, team=team, name="Answers", slug="answers")
    add_spend(org, "80.00", WEEK_BEFORE, team=team, product=answers, calls=4)
    add_spend(org, "100.00", LAST_WEEK, team=team, product=answers, calls=5)
    add_spend(org, "20.00", LAST_WEEK, team=team, product=answers, model="gpt-4o", calls=2)
    add_spend(org, "10.00", datetime(2026, 11, 17, 9, tzinfo=UTC), team=team, product=answers)
    add_spend(org, "23.31", LAST_WEEK, team=other_team, model="ads-secret-model", calls=3)
    rollup_pending()
    budget = Budget.objects.create(organization=org, team=team, name="Search monthly", amount_usd=Decimal(500),
                                   period="month", created_at=datetime(2026, 10, 1, tzinfo=UTC))
    Budget.objects.create(organization=org, team=other_team, name="Ads monthly", amount_usd=Decimal(50), period="month",
                          created_at=datetime(2026, 10, 1, tzinfo=UTC))

    def rec(title, usd, team, status="open"):
        return Recommendation.objects.create(organization=org, kind="model_routing", team=team, title=title,
                                             monthly_savings_usd=Decimal(usd), status=status, fingerprint=title)

    recs = {"routing": rec("Route short answers to gpt-4o-mini", "410.00", team),
            "cache": rec("Cache the shared prompt prefix", "250.00", team),
            "retry": rec("Stop retrying failed calls", "90.00", team),
            "small": rec("Trim long contexts", "40.00", team),
            "dismissed": rec("Self-host the model", "5000.00", team, status="dismissed"),
            "ads": rec("Batch the ads scoring", "999.00", other_team)}
    people = {"mona": person("mona", org, team, Role.MANAGER), "vera": person("vera", org, team, Role.VIEWER),
              "adam": person("adam", org, other_team, Role.ADMIN), "alice": person("alice", org, None, Role.ADMIN)}
    return {"budget": budget, "recs": recs, **people}


@pytest.fixture
def week(org, team, other_team, settings):
    settings.SITE_URL = SITE
    return seed_week(org, team, other_team)


def digest_of(user, org, now=NOW):
    (view,) = digest.digest_viewers(user, org)
    return compose(view, now)


def test_the_last_complete_week_runs_monday_to_monday_utc():
    assert last_complete_week(NOW) == (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
    monday_morning = datetime(2026, 11, 16, 8, tzinfo=UTC)
    assert last_complete_week(monday_morning) == (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))


def test_it_reports_last_weeks_dollars_against_the_week_before(week, org):
    found = digest_of(week["mona"], org)
    assert (found.spend_usd, found.previous_usd) == (Decimal("120.00"), Decimal("80.00"))
    assert (found.change.amount, found.change.up, found.change.pct) == (Decimal("40.00"), True, Decimal(50))
    assert found.calls == 7
    movers = {(m.group, m.label): (m.cost_usd, m.change.amount) for m in found.movers}
    assert movers[("model", "gpt-4o-mini")] == (Decimal("100.00"), Decimal("20.00"))
    assert movers[("model", "gpt-4o")] == (Decimal("20.00"), Decimal("20.00"))
    assert movers[("product", "Answers")] == (Decimal("120.00"), Decimal("40.00"))


def test_a_team_managers_digest_holds_their_team_only(week, org):
    found = digest_of(week["mona"], org)
    assert found.team.name == "Search"
    assert [b.name for b in found.budgets] == ["Search monthly"]
    _subject, text, html = digest.render_email(found, week["mona"])
    for content in (text, html):
        assert "$120.00" in content
        for leak in ("Ads", "ads-secret-model", "23.31", "7.77", "999", "143.31"):
            assert leak not in content, leak


def test_an_org_admin_gets_the_whole_organization_with_every_team_moving(week, org):
    found = digest_of(week["alice"], org)
    assert found.team is None
    assert (found.spend_usd, found.previous_usd) == (Decimal("143.31"), Decimal("80.00"))
    movers = {(m.group, m.label): m.change.amount for m in found.movers}
    assert movers[("team", "Ads")] == Decimal("23.31")
    assert movers[("team", "Search")] == Decimal("40.00")
    assert {b.name for b in found.budgets} == {"Search monthly", "Ads monthly"}


def test_it_lists_the_top_three_open_savings_in_dollars(week, org):
    found = digest_of(week["mona"], org)
    assert [(s.title, s.monthly_savings_usd) for s in found.savings] == [
        ("Route short answers to gpt-4o-mini", Decimal("410.00")), ("Cache the shared prompt prefix", Decimal("250.00")),
        ("Stop retrying failed calls", Decimal("90.00"))]
    assert (found.open_savings_count, found.open_savings_usd) == (4, Decimal("790.00"))
    assert [s.monthly_savings_usd for s in digest_of(week["alice"], org).savings] == [Decimal(999), Decimal(410), Decimal(250)]


def test_budget_burn_and_forecast_are_the_budget_pages_figures(week, org):
    (line,) = digest_of(week["mona"], org).budgets
    status = budget_status(week["budget"], NOW)
    assert (line.spend_usd, line.amount_usd) == (Decimal("210.00"), Decimal("500.00"))
    assert line.percent == Decimal(42)
    assert line.forecast_usd == status.forecast.amount_usd
    assert line.period_label == "November 2026"


def test_every_item_links_absolutely_to_the_page_behind_it(week, org, client):
    found = digest_of(week["mona"], org)
    assert found.spend_url == f"{SITE}/teams/search/?org=acme&range=custom&start=2026-11-09&end=2026-11-15"
    assert found.budgets[0].url == f"{SITE}/budgets/{week['budget'].pk}/?org=acme"
    assert found.savings[0].url == f"{SITE}/recommendations/?org=acme#rec-{week['recs']['routing'].pk}"
    product = next(m for m in found.movers if m.group == "product")
    assert product.url == f"{SITE}/products/answers/?org=acme&range=custom&start=2026-11-09&end=2026-11-15"
    client.force_login(week["mona"])
    for url in (found.spend_url, found.budgets[0].url, found.savings[0].url, product.url,
                *(m.url for m in found.movers)):
        assert client.get(url.removeprefix(SITE)).status_code == 200, url
    _, text, html = digest.render_email(found, week["mona"])
    assert found.spend_url in text and found.budgets[0].url in text
    assert found.savings[0].url in html


def test_the_weekly_job_emails_each_manager_once(week, org, smtp):
    first = digest.send_weekly_digests(NOW)
    again = digest.send_weekly_digests(NOW + timedelta(minutes=5))
    assert (first["planned"], first.get("sent")) == (3, 3)
    assert again.get("sent") is None
    assert sorted(m["To"] for m in smtp.messages) == ["adam@example.com", "alice@example.com", "mona@example.com"]
    (message,) = smtp.to("mona@example.com")
    assert message["Subject"] == "[Observatory] Weekly digest: Search, week of 9 Nov"
    text = message.get_body(("plain",)).get_content()
    assert "Spend last week: $120.00 (up $40.00, 50%; $80.00 the week before)" in text
    html = message.get_body(("html",)).get_content()
    assert 'data-testid="digest-spend">$120.00</a>' in html
    assert message["List-Unsubscribe"].strip().startswith(f"<{SITE}/digest/unsubscribe/")
    assert "Ads" not in text


def test_people_who_opted_out_get_nothing(week, org, smtp):
    digest.set_opted_out(week["mona"], org, True)
    digest.send_weekly_digests(NOW)
    assert smtp.to("mona@example.com") == []
    assert len(smtp.messages) == 2


def test_the_unsubscribe_link_works_without_login_and_twice(week, org, client):
    url = digest.unsubscribe_url(week["mona"], org).removeprefix(SITE)
    confirm = client.get(url)
    assert confirm.status_code == 200 and b"Stop sending the weekly digest of Acme" in confirm.content
    assert not DigestOptOut.objects.exists()  # a link scanner's GET changes nothing
    for _ in range(2):
        done = client.post(url)
        assert done.status_code == 200 and b"will no longer get the weekly digest" in done.content
    assert list(DigestOptOut.objects.values_list("user__username", flat=True)) == ["mona"]


def test_a_forged_unsubscribe_link_is_a_400(week, org, client):
    token = digest.unsubscribe_token(week["mona"], org)
    assert client.post(f"/digest/unsubscribe/{token[:-2]}xx/").status_code == 400
    assert client.get("/digest/unsubscribe/nonsense/").status_code == 400
    assert not DigestOptOut.objects.exists()


def test_a_failed_send_does_not_stop_the_others_and_is_retried_once(week, org, smtp):
    smtp.refuse.add("alice@example.com")
    outcome = digest.send_weekly_digests(NOW)
    assert outcome["sent"] == 2 and outcome.get("pending") == 1
    row = DigestSend.objects.get(recipient=f"user:{week['alice'].pk}")
    assert (row.status, row.attempts) == ("pending", 1)
    assert "550" in row.last_error
    smtp.refuse.clear()
    assert digest.deliver_due(NOW + timedelta(seconds=10)) == {}  # not before its backoff
    assert digest.deliver_due(NOW + timedelta(minutes=1)) == {"sent": 1}
    assert sorted(m["To"] for m in smtp.messages) == ["adam@example.com", "alice@example.com", "mona@example.com"]


def test_a_digest_never_sent_by_the_next_monday_is_skipped(week, org, smtp):
    smtp.refuse.add("alice@example.com")
    digest.send_weekly_digests(NOW)
    smtp.refuse.clear()
    assert digest.deliver_due(datetime(2026, 11, 23, 8, tzinfo=UTC)) == {"skipped": 1}
    assert smtp.to("alice@example.com") == []


def test_the_org_digest_goes_to_the_digest_slack_webhook_once(week, org, smtp, receiver):
    org.digest_slack_webhook_url = receiver.url("/slack/digest")
    org.save()
    digest.send_weekly_digests(NOW)
    digest.send_weekly_digests(NOW + timedelta(minutes=1))
    (post,) = receiver.to("/slack/digest")
    payload = post.json()
    assert payload["text"].startswith("Weekly digest · Acme (whole organization) · 9 Nov – 15 Nov 2026: $143.31")
    body = "\n".join(block["text"]["text"] for block in payload["blocks"] if block["type"] == "section")
    assert f"<{SITE}/?org=acme&range=custom&start=2026-11-09&end=2026-11-15|Spend last week: $143.31>" in body
    assert "▲ $63.31 (79%) vs $80.00 the week before" in body
    assert "Batch the ads scoring" in body and "$999.00/month" in body
    row = DigestSend.objects.get(recipient="slack")
    assert post.headers["X-Observatory-Delivery"] == digest.delivery.delivery_key(row.pk, "digests")


# The page ----------------------------------------------------------------------------------------------------------

def test_the_page_previews_what_this_user_gets(week, org, client):
    client.force_login(week["mona"])
    response = client.get("/digest/")
    assert response.status_code == 200
    assert [d.scope_label for d in response.context["digests"]] == ["Search"]
    assert b"Send me a test now" in response.content
    assert b'data-testid="digest-spend">$' in response.content
    assert b"Ads" not in response.content


def test_a_viewer_is_told_they_get_no_digest(week, org, client):
    client.force_login(week["vera"])
    response = client.get("/digest/")
    assert response.status_code == 200 and b'data-testid="no-digest"' in response.content
    assert b"Send me a test now" not in response.content


def test_it_sends_a_test_on_post_only(week, org, client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.force_login(week["mona"])
    assert client.get("/digest/test/").status_code == 405
    response = client.post("/digest/test/")
    assert response.status_code == 302
    (message,) = django_mail.outbox
    assert message.subject.startswith("[Observatory] [TEST] Weekly digest: Search")
    assert message.to == ["mona@example.com"]
    assert not DigestSend.objects.exists()


def test_the_checkbox_opts_out_and_back_in(week, org, client):
    client.force_login(week["mona"])
    assert client.post("/digest/preferences/", {}).status_code == 302
    assert digest.opted_out(week["mona"], org)
    assert client.post("/digest/preferences/", {"receive": "on"}).status_code == 302
    assert not digest.opted_out(week["mona"], org)


def test_only_admins_set_the_slack_webhook_and_internal_addresses_are_refused(week, org, client):
    client.force_login(week["mona"])
    assert client.post("/digest/slack/", {"slack_webhook_url": "https://hooks.slack.com/services/T/B/x"}).status_code == 403
    client.force_login(week["alice"])
    refused = client.post("/digest/slack/", {"slack_webhook_url": "http://127.0.0.1:9/hook"})
    assert refused.status_code == 400 and b"loopback" in refused.content
    org.refresh_from_db()
    assert org.digest_slack_webhook_url == ""
    assert client.post("/digest/slack/", {"slack_webhook_url": "https://hooks.slack.com/services/T/B/x"}).status_code == 302
    org.refresh_from_db()
    assert org.digest_slack_webhook_url == "https://hooks.slack.com/services/T/B/x"


def test_it_requires_login(client, db):
    response = client.get("/digest/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_member_of_another_organization_gets_nothing_of_this_one(week, org):
    from observatory.models import Organization

    other = Organization.objects.create(name="Globex", slug="globex")
    stranger = person("sam", other, None, Role.ADMIN)
    assert digest.digest_viewers(stranger, org) == []
    assert viewer_in(stranger, org) is None


def test_the_weekly_job_is_on_the_beat_schedule_every_deploy_path_reads(transactional_db):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from observatory.celery import app

    DatabaseScheduler(app=app)  # what `celery beat --scheduler …DatabaseScheduler` does at start (compose and `up`)
    task = PeriodicTask.objects.get(name="weekly-digest")
    schedule = task.crontab
    assert task.task == "observatory.tasks.send_weekly_digest"
    assert (schedule.minute, schedule.hour, schedule.day_of_week, str(schedule.timezone)) == ("0", "8", "mon", "UTC")
    assert PeriodicTask.objects.get(name="retry-weekly-digests").task == "observatory.tasks.retry_weekly_digests"


def test_the_email_is_plain_text_and_html(week, org, smtp):
    digest.send_weekly_digests(NOW)
    (message,) = smtp.to("alice@example.com")
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert {part.get_content_type() for part in parsed.walk()} >= {"text/plain", "text/html"}
