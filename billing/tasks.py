"""Celery tasks of billing: thin wrappers over services."""

from celery import shared_task

from billing.rollups import rollup_pending


@shared_task
def roll_up() -> dict:
    return rollup_pending()
