"""Liveness and readiness endpoints for load balancers and the launcher."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    """Alive: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"
        connection.close_if_unusable_or_obsolete()
        return f"database unavailable: {exc.__class__.__name__}"
    return None


def check_broker() -> str | None:
    from observatory.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # any transport error means "not ready"
        return f"broker unavailable ({settings.CELERY_BROKER_URL.split('://')[0]}): {exc.__class__.__name__}"
    return None


@require_GET
def readyz(request):
    """Ready: the database answers and the task broker accepts connections."""
    problems = [p for p in (check_database(), check_broker()) if p]
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503, headers={"Retry-After": "5"})
    return JsonResponse({"status": "ok"})
