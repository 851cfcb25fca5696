"""Celery tasks of billing: thin wrappers over services."""

from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.utils.dateparse import parse_datetime

from billing.alerts.anomalies import evaluate_rules
from billing.alerts.budgets import evaluate_budgets
from billing.alerts.delivery import deliver_due
from billing.gpu import compute_gpu_cost_range
from billing.limits import reconcile
from billing.models import GpuPool
from billing.pricing.repricing import reprice
from billing.rollups import rollup_pending


@shared_task
def roll_up() -> dict:
    return rollup_pending()


@shared_task
def gpu_cost_recent_hours(hours: int = 3) -> int:
    """Recompute the last few complete hours of every GPU pool (late metrics are picked up)."""
    until = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    since = until - timedelta(hours=hours)
    org_ids = set(GpuPool.objects.values_list("organization_id", flat=True))
    return sum(compute_gpu_cost_range(org_id, since, until) for org_id in org_ids)


@shared_task
def reprice_calls(since: str, until: str | None = None, model: str | None = None, organization_id: int | None = None) -> dict:
    """Re-price stored calls after a price change (the UI and API queue this)."""
    result = reprice(organization_id, parse_datetime(since), parse_datetime(until) if until else None, model=model)
    return {"examined": result.examined, "changed": result.changed}


@shared_task
def evaluate_all_budgets() -> dict:
    """Every minute: spend to date and forecast of each budget; raises threshold, forecast and reset alerts."""
    return evaluate_budgets()


@shared_task
def reconcile_budget_counters() -> int:
    """Every minute: each hard budget's spend counter set to what the rollups and raw calls say (billing.limits)."""
    return reconcile()


@shared_task
def evaluate_alert_rules() -> dict:
    """Every minute: spend anomalies and latency SLOs."""
    return evaluate_rules()


@shared_task
def deliver_pending_alerts() -> dict:
    """Every minute: retry failed deliveries whose backoff has passed."""
    return deliver_due()


@shared_task
def generate_recommendations(window_days: int = 30) -> dict:
    """Daily: refresh every organization's savings recommendations from its last `window_days` of calls."""
    from billing.recommendations import generate_all

    return generate_all(window_days=window_days)


@shared_task
def generate_organization_recommendations(organization_id: int, window_days: int = 30) -> dict:
    """On demand (the dashboard's and the API's "recompute"): one organization's recommendations."""
    from billing.recommendations import generate

    return {"organization": organization_id, "recommendations": len(generate(organization_id, window_days=window_days))}
