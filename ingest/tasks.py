"""Celery tasks of ingest: thin wrappers over services."""

from celery import shared_task
from django.conf import settings

from ingest.partitions import drop_expired_partitions, ensure_partitions


@shared_task
def maintain_partitions() -> dict:
    created = ensure_partitions(days_ahead=settings.PARTITION_DAYS_AHEAD)
    dropped = drop_expired_partitions(settings.RETENTION_DAYS)
    return {"created": created, "dropped": dropped}
