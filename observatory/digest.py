"""The weekly digest: who gets which one, and sending each exactly once by email and to the organization's Slack.

Recipients: every member with a manager or admin role. One with an organization-wide role gets the
organization's digest; one who manages teams gets one digest per team, narrowed to it (access.Viewer.narrowed_to),
so a team manager never sees another team's spend. People who opted out (DigestOptOut) and accounts without an
email address get nothing. The organization's digest also goes to its digest Slack webhook, when one is set.

Exactly once: each (organization, recipient, scope, week) is a DigestSend row, inserted with
`INSERT … ON CONFLICT DO NOTHING`; a send first claims its row with `SELECT … FOR UPDATE SKIP LOCKED` and keeps
the lock until the outcome is written, so racing workers (or the weekly job and the retry job) never send one
digest twice. A failed send is one failed attempt on its own row — the others go on — retried with backoff by
the retry job until it is sent, gives up after MAX_ATTEMPTS, or its week is over (the next digest is due).
As with alerts (billing.alerts.delivery), a process killed between the send and the commit can repeat that one
send; the email's Message-ID and the Slack post's delivery id header stay the same across repeats.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from billing.alerts import delivery
from billing.alerts.budgets import money
from billing.alerts.webhook_guard import UnsafeWebhookUrl
from observatory.access import Viewer, organization_viewer, viewer_in
from observatory.dashboard.digest import Digest, absolute, compose, last_complete_week
from observatory.models import DigestOptOut, DigestSend, Membership, Organization, Role

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MANAGING = (Role.MANAGER, Role.ADMIN)
UNSUBSCRIBE_SALT = "observatory.digest.unsubscribe"
SLACK = "slack"
ORG_SCOPE = "org"


# Who gets what ---------------------------------------------------------------------------------------------------

def digest_viewers(user, organization: Organization) -> list[Viewer]:
    """The views `user` gets a digest of: the whole organization for an org-wide manager or admin, else each team
    they manage (narrowed to it); empty for viewers and non-members. Opting out is not looked at here."""
    if not Membership.objects.filter(user=user, organization=organization).exists():
        return []
    viewer = viewer_in(user, organization)
    if viewer is None:
        return []
    if viewer.whole_organization:
        return [viewer] if viewer.organization_role in MANAGING else []
    return [viewer.narrowed_to(team) for team in viewer.teams if viewer.team_roles.get(team.id) in MANAGING]


def opted_out(user, organization: Organization) -> bool:
    return DigestOptOut.objects.filter(user=user, organization=organization).exists()


def set_opted_out(user, organization: Organization, out: bool) -> None:
    """Idempotent: opting out twice keeps one row; opting back in removes it."""
    if out:
        DigestOptOut.objects.get_or_create(user=user, organization=organization)
    else:
        DigestOptOut.objects.filter(user=user, organization=organization).delete()


def set_slack_webhook(organization: Organization, url: str) -> None:
    """The organization's digest Slack webhook (checked by the form with the alerts' webhook guard)."""
    organization.digest_slack_webhook_url = url
    organization.save(update_fields=["digest_slack_webhook_url"])


def scope_key(viewer: Viewer) -> str:
    return ORG_SCOPE if viewer.whole_organization else f"team:{viewer.teams[0].id}"


# Unsubscribe links -----------------------------------------------------------------------------------------------

def unsubscribe_token(user, organization: Organization) -> str:
    return signing.dumps([user.pk, organization.pk], salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> tuple[int, int] | None:
    """(user id, organization id), or None for a token this server did not sign."""
    try:
        user_id, organization_id = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(user_id, int) or not isinstance(organization_id, int):
        return None
    return user_id, organization_id


def unsubscribe_url(user, organization: Organization) -> str:
    return absolute(f"/digest/unsubscribe/{unsubscribe_token(user, organization)}/")


# Rendering -------------------------------------------------------------------------------------------------------

def render_email(digest: Digest, user, test: bool = False) -> tuple[str, str, str]:
    """(subject, text, html) of one person's digest."""
    context = {"digest": digest, "user": user, "test": test, "unsubscribe_url": unsubscribe_url(user, digest.organization),
               "preview_url": absolute("/digest/", org=digest.organization.slug)}
    subject = f"[Observatory] {'[TEST] ' if test else ''}{digest.subject}"
    return (subject, render_to_string("observatory/digest_email.txt", context),
            render_to_string("observatory/digest_email.html", context))


def send_email(digest: Digest, user, delivery_id: str, test: bool = False) -> None:
    subject, text, html = render_email(digest, user, test)
    unsubscribe = unsubscribe_url(user, digest.organization)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[user.email],
        connection=get_connection(timeout=delivery.SEND_TIMEOUT_SECONDS),
        headers={"Message-ID": f"<{delivery_id}@observatory>", "List-Unsubscribe": f"<{unsubscribe}>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
    message.attach_alternative(html, "text/html")
    message.send(fail_silently=False)


def _change_text(digest: Digest) -> str:
    if not digest.change.amount:
        return "no change against the week before"
    arrow = "▲" if digest.change.up else "▼"
    pct = f" ({digest.change.pct:.0f}%)" if digest.change.pct is not None else ""
    return f"{arrow} {money(digest.change.amount)}{pct} vs {money(digest.previous_usd)} the week before"


def slack_payload(digest: Digest) -> dict:
    """A Block Kit message: the week's spend and change, movers, budgets and savings, each line linked."""
    title = f"Weekly digest · {digest.scope_label} · {digest.week_label}"
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*<{digest.spend_url}|Spend last week: {money(digest.spend_usd)}>* — {_change_text(digest)}")}},
    ]

    def section(heading: str, lines: list[str]) -> None:
        if lines:  # a section's text holds at most 3,000 characters
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{heading}*\n" + "\n".join(lines)[:2900]}})

    section("Top movers", [
        f"• {m.group} <{m.url}|{m.label}>: {money(m.cost_usd)} ({'▲' if m.change.up else '▼'} {money(m.change.amount)})"
        for m in digest.movers])
    section("Budgets", [
        f"• <{b.url}|{b.name}>: {money(b.spend_usd)} of {money(b.amount_usd)} ({b.percent:.0f}%), "
        f"forecast {money(b.forecast_usd)} — {b.period_label}" for b in digest.budgets])
    section("Top savings", [f"• <{s.url}|{s.title}>: {money(s.monthly_savings_usd)}/month" for s in digest.savings])
    blocks.append({"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Open in Observatory"}, "url": digest.spend_url}]})
    return {"text": f"{title}: {money(digest.spend_usd)} ({_change_text(digest)})", "blocks": blocks}


# Sending, exactly once -------------------------------------------------------------------------------------------

def _claim_row(organization: Organization, recipient: str, scope: str, week_start, user=None, team=None,
               now: datetime | None = None) -> None:
    """INSERT … ON CONFLICT DO NOTHING: the row exists afterwards, whoever created it."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {DigestSend._meta.db_table} "  # noqa: S608 (the table name comes from the model)
            "(organization_id, recipient, scope, week_start, user_id, team_id, status, attempts, next_attempt_at, "
            "last_error, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, '', %s) "
            "ON CONFLICT (organization_id, recipient, scope, week_start) DO NOTHING",
            [organization.pk, recipient, scope, week_start, getattr(user, "pk", None), getattr(team, "pk", None),
             DigestSend.Status.PENDING, now, now],
        )


def plan_organization(organization: Organization, now: datetime) -> int:
    """Make sure every digest this organization owes for last week has its row; returns how many it owes."""
    week_start = last_complete_week(now)[0].date()
    owed = 0
    user_ids = Membership.objects.filter(organization=organization, role__in=MANAGING).values_list("user_id", flat=True)
    for user in get_user_model().objects.filter(pk__in=set(user_ids), is_active=True).order_by("pk"):
        if not user.email or opted_out(user, organization):
            continue
        for viewer in digest_viewers(user, organization):
            _claim_row(organization, f"user:{user.pk}", scope_key(viewer), week_start, user=user,
                       team=None if viewer.whole_organization else viewer.teams[0], now=now)
            owed += 1
    if organization.digest_slack_webhook_url:
        _claim_row(organization, SLACK, ORG_SCOPE, week_start, now=now)
        owed += 1
    return owed


@dataclass
class Run:
    """One pass of the job: digests composed once per scope and shared by its recipients."""

    now: datetime
    composed: dict

    def digest(self, viewer: Viewer) -> Digest:
        key = (viewer.organization.pk, scope_key(viewer))
        if key not in self.composed:
            self.composed[key] = compose(viewer, self.now)
        return self.composed[key]


def _send_row(row: DigestSend, run: Run) -> None:
    """Compose and send one claimed row; raises when it could not be sent."""
    organization = row.organization
    delivery_id = delivery.delivery_key(row.pk, "digests")
    if row.recipient == SLACK:
        if not organization.digest_slack_webhook_url:
            raise LookupError("the organization's digest Slack webhook was removed")
        digest = run.digest(organization_viewer(organization))
        delivery.post_json(organization.digest_slack_webhook_url, slack_payload(digest), delivery_id)
        return
    viewer = viewer_in(row.user, organization)
    if viewer is not None and row.team_id is not None:
        viewer = viewer.narrowed_to(row.team)
    send_email(run.digest(viewer), row.user, delivery_id)


def _skip_reason(row: DigestSend, now: datetime) -> str:
    if now >= datetime.combine(row.week_start, datetime.min.time(), tzinfo=UTC) + timedelta(days=14):
        return "not sent: its week is over, the next digest is due"
    if row.user_id is not None:
        if opted_out(row.user, row.organization):
            return "not sent: opted out"
        viewer_scopes = {scope_key(v) for v in digest_viewers(row.user, row.organization)}
        if row.scope not in viewer_scopes:
            return "not sent: no longer manages this scope"
    return ""


def attempt(row_id: int, run: Run) -> str | None:
    """Claim one due row (skipping it if another worker holds it), send it, record the outcome. Returns the new
    status, or None when it was not ours to send."""
    now = run.now
    with transaction.atomic():
        row = (DigestSend.objects.select_for_update(skip_locked=True, of=("self",))
               .select_related("organization", "user", "team")
               .filter(id=row_id, status=DigestSend.Status.PENDING, next_attempt_at__lte=now).first())
        if row is None:
            return None
        reason = _skip_reason(row, now)
        if reason:
            row.status, row.last_error = DigestSend.Status.SKIPPED, reason
            row.save(update_fields=["status", "last_error"])
            return row.status
        row.attempts += 1
        try:
            _send_row(row, run)
        except Exception as exc:  # one recipient's failure is one failed attempt; the others go on
            log.warning("digest %s (%s, %s) attempt %s failed: %s", row.pk, row.recipient, row.scope, row.attempts, exc)
            row.last_error = delivery.failure_text(exc)[:2000]
            if row.attempts >= MAX_ATTEMPTS or isinstance(exc, UnsafeWebhookUrl):
                row.status = DigestSend.Status.FAILED
            else:
                row.next_attempt_at = now + delivery.retry_delay(row.attempts)  # 30 s, 1 min, 2 min … an hour
        else:
            row.status, row.sent_at, row.last_error = DigestSend.Status.SENT, now, ""
        row.save(update_fields=["status", "attempts", "last_error", "next_attempt_at", "sent_at"])
        return row.status


def deliver_due(now: datetime | None = None) -> dict[str, int]:
    """The retry job (and the weekly job's second half): attempt every pending digest whose time has come."""
    run = Run(now or timezone.now(), {})
    due = DigestSend.objects.filter(status=DigestSend.Status.PENDING, next_attempt_at__lte=run.now).order_by("id")
    outcomes: dict[str, int] = {}
    for row_id in list(due.values_list("id", flat=True)):
        outcome = attempt(row_id, run)
        if outcome:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def send_weekly_digests(now: datetime | None = None) -> dict[str, int]:
    """The Monday job: plan every organization's digests for last week, then send what is due. An organization
    that fails to plan is logged and left for the next run; the others go on."""
    now = now or timezone.now()
    planned = errors = 0
    for organization in Organization.objects.order_by("id"):
        try:
            planned += plan_organization(organization, now)
        except Exception:
            log.exception("planning the weekly digest of organization %s failed", organization.pk)
            errors += 1
    return {"planned": planned, "planning_errors": errors, **deliver_due(now)}


def send_test(viewer: Viewer, user, now: datetime | None = None) -> int:
    """Email `user` now every digest they would get, marked as a test; nothing is recorded. Returns how many."""
    run = Run(now or timezone.now(), {})
    views = digest_viewers(user, viewer.organization)
    for view in views:
        send_email(run.digest(view), user, f"test-{uuid.uuid4()}", test=True)
    return len(views)
