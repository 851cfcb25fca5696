"""Periodic jobs of the gateway (Celery beat: `purge-gateway-cache` in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from gateway.cache import purge_expired


@shared_task
def purge_expired_responses() -> int:
    """Delete the response cache's expired entries from PostgreSQL."""
    return purge_expired()
