"""Liveness and readiness endpoints for load balancers and the launcher."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from ingest import spool


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
    waiting = spool.state()
    spooled = {"spool": waiting.as_dict()} if waiting.pending_bytes else {}
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems, **spooled}, status=503,
                            headers={"Retry-After": "5"})
    warnings = job_warnings()
    if waiting.pending_bytes:
        warnings.append(f"{waiting.pending_bytes} bytes of exports waiting in the ingest spool")
    return JsonResponse({"status": "ok", **({"warnings": warnings} if warnings else {}), **spooled})


@require_GET
def metrics(request):
    """Prometheus text format: what the ingest spool holds on this host (counts only, no data)."""
    waiting = spool.state()
    age = waiting.as_dict()["oldest_seconds"] or 0
    lines = [
        "# HELP observatory_ingest_spool_pending_bytes Bytes of exports received while the database was away, not applied yet.",
        "# TYPE observatory_ingest_spool_pending_bytes gauge",
        f"observatory_ingest_spool_pending_bytes {waiting.pending_bytes}",
        "# HELP observatory_ingest_spool_segments Spool segment files with exports not applied yet.",
        "# TYPE observatory_ingest_spool_segments gauge",
        f"observatory_ingest_spool_segments {waiting.segments}",
        "# HELP observatory_ingest_spool_oldest_seconds Age of the oldest export waiting in the spool.",
        "# TYPE observatory_ingest_spool_oldest_seconds gauge",
        f"observatory_ingest_spool_oldest_seconds {age}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")
