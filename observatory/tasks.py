"""Celery tasks of the observatory app: thin wrappers over observatory.digest."""

from celery import shared_task

from observatory.digest import deliver_due, send_weekly_digests


@shared_task
def send_weekly_digest() -> dict:
    """Mondays 08:00 UTC: last week's digest to every manager and admin (and the organizations' Slack), once."""
    return send_weekly_digests()


@shared_task
def retry_weekly_digests() -> dict:
    """Every 10 minutes: digests whose send failed, once their backoff has passed."""
    return deliver_due()
