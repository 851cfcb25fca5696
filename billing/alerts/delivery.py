"""Raising alerts exactly once and delivering them by email, Slack and signed webhook, with retries.

Exactly once: an alert row is unique on (budget or rule, period start, kind, threshold or subject) and is
inserted with `INSERT … ON CONFLICT DO NOTHING RETURNING id`, in the same transaction as its per-channel
Delivery rows. Only the process whose insert returned a row goes on to deliver, and every send first
claims its Delivery row with `SELECT … FOR UPDATE SKIP LOCKED` and keeps the lock until the outcome is
written, so concurrent workers, re-queued tasks and the retry job never send one delivery twice.
A failed send is retried with exponential backoff (attempts and the last error are kept on the row);
a delivery still pending when its alert's `deliver_until` has passed is skipped, never sent late.
Slack and webhook URLs go through billing.alerts.webhook_guard: a URL that points at an internal address (checked again
after DNS resolution, at each send) fails at once with the reason, without retries.
A crash in the middle of a send (after the receiver got it, before the commit) can repeat that one send:
delivery is exactly once under concurrency and retries, at-least-once across a killed process. So that receivers
can drop such a repeat, every webhook carries a delivery id that stays the same across retries and repeats
(the `X-Observatory-Delivery` header and `delivery_id` in the body; an email's Message-ID is made from it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.utils import timezone

from billing.alerts import webhook_guard
from billing.alerts.webhook_guard import UnsafeWebhookUrl
from billing.models import Alert, AlertChannels, Delivery

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
SEND_TIMEOUT_SECONDS = 10
SIGNATURE_HEADER = "X-Observatory-Signature"
TIMESTAMP_HEADER = "X-Observatory-Timestamp"
DELIVERY_HEADER = "X-Observatory-Delivery"
TEST_MARK = "[TEST] "


@dataclass(frozen=True)
class ChannelTarget:
    channel: str
    target: str

    @property
    def shown(self) -> str:
        """What a page may show: a webhook URL's path and query are its secret (Slack's always), so only the scheme
        and host are shown; email addresses as they are."""
        if self.channel == Delivery.Channel.EMAIL:
            return self.target
        parts = urlsplit(self.target)
        return f"{parts.scheme}://{parts.hostname or ''}/…" if parts.scheme else "…"


def channel_targets(source: AlertChannels) -> list[ChannelTarget]:
    """The channels a budget or rule sends to; Slack falls back to the server's SLACK_WEBHOOK_URL."""
    targets = []
    if source.email_recipients:
        targets.append(ChannelTarget(Delivery.Channel.EMAIL, ", ".join(source.email_recipients)))
    slack = source.slack_webhook_url or settings.SLACK_WEBHOOK_URL
    if slack:
        targets.append(ChannelTarget(Delivery.Channel.SLACK, slack))
    if source.webhook_url:
        targets.append(ChannelTarget(Delivery.Channel.WEBHOOK, source.webhook_url))
    return targets


def _insert_if_new(alert: Alert) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: True (and alert.pk set) only for the one caller that created the row."""
    fields = [f for f in Alert._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = [f.get_db_prep_save(f.pre_save(alert, add=True), connection) for f in fields]
    placeholders = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Alert._meta.db_table} ({columns}) VALUES ({placeholders}) "  # noqa: S608 (names from the model)
            "ON CONFLICT DO NOTHING RETURNING id",
            values,
        )
        row = cursor.fetchone()
    if row is None:
        return False
    alert.pk = row[0]
    alert._state.adding = False
    alert._state.db = connection.alias
    return True


def record_alerts(alerts: Sequence[Alert], source: AlertChannels, now: datetime) -> list[Alert]:
    """Insert the alerts that do not exist yet and queue deliveries; returns the ones this call created.

    Callers order `alerts` from least to most severe: when several are new at once (spend jumped past 50%
    and 80% in one minute) only the last new one is sent and the others are marked as superseded.
    An alert created with `suppressed` set is recorded without deliveries.
    """
    with transaction.atomic():
        created = [alert for alert in alerts if _insert_if_new(alert)]
        if not created:
            return []
        *superseded, last = created
        for alert in superseded:
            alert.suppressed = f"superseded by “{last.title}”, raised at the same time"
            alert.save(update_fields=["suppressed"])
        if not last.suppressed:
            Delivery.objects.bulk_create([
                Delivery(alert=last, channel=t.channel, target=t.target, next_attempt_at=now, created_at=now)
                for t in channel_targets(source)
            ])
    return created


def deliver_alerts(alerts: Sequence[Alert], now: datetime | None = None) -> int:
    """Send the pending deliveries of alerts this process just raised; returns how many were sent."""
    pending = Delivery.objects.filter(alert__in=[a.pk for a in alerts], status=Delivery.Status.PENDING).order_by("id")
    return sum(attempt_delivery(delivery_id, now) == Delivery.Status.SENT for delivery_id in pending.values_list("id", flat=True))


def deliver_due(now: datetime | None = None, limit: int = 500) -> dict:
    """The retry job: attempt every pending delivery whose time has come."""
    now = now or timezone.now()
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).order_by("next_attempt_at")
    outcomes: dict[str, int] = {}
    for delivery_id in list(due.values_list("id", flat=True)[:limit]):
        outcome = attempt_delivery(delivery_id, now)
        if outcome:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, 4 min … capped at an hour."""
    return min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)


def attempt_delivery(delivery_id: int, now: datetime | None = None) -> str | None:
    """Claim one due delivery (skipping it if another worker holds it), send it, record the outcome.

    Returns the new status, or None when the delivery was not ours to send (claimed elsewhere, not due, done).
    The row lock is held during the send so no other worker can pick the same delivery meanwhile.
    """
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",)).select_related("alert")
            .filter(id=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now).first()
        )
        if delivery is None:
            return None
        alert = delivery.alert
        if now >= alert.deliver_until:
            delivery.status = Delivery.Status.SKIPPED
            delivery.last_error = f"not sent: stale since {alert.deliver_until:%Y-%m-%d %H:%M} UTC (its period is over)"
            delivery.save(update_fields=["status", "last_error"])
            return delivery.status
        delivery.attempts += 1
        try:
            send(delivery.channel, delivery.target, alert, alert.source, now, delivery_id=delivery_key(delivery.pk))
        except UnsafeWebhookUrl as exc:  # retrying cannot help: the URL must change (or the operator allow it)
            log.warning("alert %s: %s delivery refused: %s", alert.pk, delivery.channel, exc)
            delivery.last_error = failure_text(exc)[:2000]
            delivery.status = Delivery.Status.FAILED
        except Exception as exc:  # any failure of the outside world is one failed attempt, retried later
            log.warning("alert %s: %s delivery attempt %s failed: %s", alert.pk, delivery.channel, delivery.attempts, exc)
            delivery.last_error = failure_text(exc)[:2000]
            if delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = Delivery.Status.FAILED
            else:
                delivery.next_attempt_at = now + retry_delay(delivery.attempts)
        else:
            delivery.status = Delivery.Status.SENT
            delivery.sent_at = now
            delivery.last_error = ""
        delivery.save(update_fields=["status", "attempts", "last_error", "next_attempt_at", "sent_at"])
        return delivery.status


def delivery_key(delivery_pk: int, kind: str = "alert-deliveries") -> str:
    """The stable id of one delivery (one alert on one channel; with `kind`, one row of another sender, e.g. a
    weekly digest): the same on every attempt and repeat, distinct across Observatory installations (it is
    derived from SITE_URL)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{settings.SITE_URL}/{kind}/{delivery_pk}"))


def send(channel: str, target: str, alert: Alert, source: AlertChannels, now: datetime, test: bool = False,
         delivery_id: str | None = None) -> None:
    """Send one alert on one channel; raises when the channel did not accept it. `delivery_id` is the stable id
    receivers de-duplicate on (a fresh one for a test alert, which is never recorded)."""
    delivery_id = delivery_id or f"test-{uuid.uuid4()}"
    if channel == Delivery.Channel.EMAIL:
        send_email([address.strip() for address in target.split(",") if address.strip()], alert, test, delivery_id)
    elif channel == Delivery.Channel.SLACK:
        _post(target, json.dumps(slack_payload(alert, test)).encode(), {"Content-Type": "application/json"})
    elif channel == Delivery.Channel.WEBHOOK:
        payload = {**webhook_payload(alert, test), "delivery_id": delivery_id}
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        timestamp = str(int(now.timestamp()))
        _post(target, body, {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp, DELIVERY_HEADER: delivery_id,
                             SIGNATURE_HEADER: signature(source.webhook_secret, timestamp, body)})
    else:
        raise ValueError(f"unknown channel {channel!r}")


def send_test_alert(source: AlertChannels, sample: Alert, now: datetime | None = None) -> dict[str, str]:
    """Send `sample` (an unsaved alert showing the source's current figures), marked as a test, to every
    channel; nothing is recorded. Returns each channel's outcome: "sent" or the error."""
    now = now or timezone.now()
    results = {}
    for target in channel_targets(source):
        try:
            send(target.channel, target.target, sample, source, now, test=True)
        except Exception as exc:  # reported to the user who asked for the test
            results[target.channel] = f"failed: {failure_text(exc)}"
        else:
            results[target.channel] = "sent"
    return results


def failure_text(exc: Exception) -> str:
    """What a failed send shows the user: the guard's reason as it is, other errors with their type."""
    if isinstance(exc, UnsafeWebhookUrl):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, keyed with the webhook secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def post_json(url: str, payload: dict, delivery_id: str) -> None:
    """POST a JSON message (a Slack message that is not an alert: the weekly digest) through the same guard, with
    the delivery id header receivers de-duplicate on; raises when it was not accepted."""
    _post(url, json.dumps(payload).encode(), {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id})


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST through the SSRF guard (public addresses only, pinned to the one checked; redirects not followed)."""
    response = webhook_guard.post(url, body, headers, timeout=SEND_TIMEOUT_SECONDS)
    if response.status_code >= 300:
        raise httpx.HTTPStatusError(f"{url} answered {response.status_code}: {response.text[:300]}",
                                    request=response.request, response=response)


def _title(alert: Alert, test: bool) -> str:
    return f"{TEST_MARK}{alert.title}" if test else alert.title


def _fields(alert: Alert) -> list[tuple[str, str]]:
    return [(label, value) for label, value in alert.details.get("fields", [])]


def send_email(recipients: list[str], alert: Alert, test: bool = False, delivery_id: str | None = None) -> None:
    lines = []
    if test:
        lines += ["This is a test alert from Observatory: nothing was crossed, the figures are the current ones.", ""]
    lines += [alert.message, ""]
    lines += [f"{label}: {value}" for label, value in _fields(alert)]
    if alert.details.get("url"):
        lines += ["", alert.details["url"]]
    message = EmailMessage(
        subject=f"[Observatory] {_title(alert, test)}", body="\n".join(lines) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL, to=recipients,
        connection=get_connection(timeout=SEND_TIMEOUT_SECONDS),
        headers={"Message-ID": f"<{delivery_id}@observatory>"} if delivery_id else None,
    )
    message.send(fail_silently=False)


def slack_payload(alert: Alert, test: bool = False) -> dict:
    """A Block Kit message: header, summary, the figures as fields, a button to the page."""
    title = _title(alert, test)
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": alert.message[:3000]}},
    ]
    fields = _fields(alert)
    if fields:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{value}"}
                                                     for label, value in fields[:10]]})
    if alert.details.get("url"):
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in Observatory"}, "url": alert.details["url"]},
        ]})
    if test:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": "This is a *test alert*: nothing was crossed; the figures are the current ones."},
        ]})
    return {"text": title, "blocks": blocks}


def webhook_payload(alert: Alert, test: bool = False) -> dict:
    money = {name: (str(value) if value is not None else None)
             for name, value in (("spend_usd", alert.spend_usd), ("budget_usd", alert.budget_usd),
                                 ("forecast_usd", alert.forecast_usd))}
    return {
        "event": alert.details.get("event", alert.kind),
        "test": test,
        "alert": {
            "id": alert.pk,
            "kind": alert.kind,
            "title": _title(alert, test),
            "message": alert.message,
            "organization_id": alert.organization_id,
            "budget_id": alert.budget_id,
            "anomaly_rule_id": alert.anomaly_rule_id,
            "latency_slo_id": alert.latency_slo_id,
            "period_start": alert.period_start.isoformat(),
            "period_end": alert.period_end.isoformat(),
            "threshold_percent": alert.threshold_percent or None,
            "subject": alert.subject,
            "subject_label": alert.subject_label,
            **money,
            "fields": dict(_fields(alert)),
            "url": alert.details.get("url"),
            "created_at": alert.created_at.isoformat(),
        },
    }
