"""Observatory: the Django project package, tenancy (organizations, teams, keys) and dashboard."""

from observatory.celery import app as celery_app

__all__ = ("celery_app",)
