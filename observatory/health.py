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


def job_warnings() -> list[str]:
    """Background jobs failing somewhere, as counts (this endpoint is not signed in; the settings page of each
    organization says which hour, budget or rule, and why)."""
    from billing.models import AnomalyRule, Budget, LatencySlo, RollupState

    warnings = []
    states = RollupState.objects.exclude(last_error="", failed_hours={})
    failing = sum(1 for state in states if state.last_error)
    hours = sum(len(state.failed_hours) for state in states)
    if failing:
        warnings.append(f"rollups failing for {failing} organization(s)")
    if hours:
        warnings.append(f"{hours} hour(s) could not be rolled up")
    evaluations = sum(model.objects.filter(is_active=True).exclude(evaluation_error="").count()
                      for model in (Budget, AnomalyRule, LatencySlo))
    if evaluations:
        warnings.append(f"{evaluations} budget(s) or alert rule(s) could not be evaluated")
    return warnings


@require_GET
def readyz(request):
    """Ready: the database answers and the task broker accepts connections. Failing background jobs do not make
    the web process unready; they are listed as warnings (see each organization's settings page)."""
    problems = [p for p in (check_database(), check_broker()) if p]
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503, headers={"Retry-After": "5"})
    warnings = job_warnings()
    return JsonResponse({"status": "ok", **({"warnings": warnings} if warnings else {})})
