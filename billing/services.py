"""Writes for billing, shared by the pages and the REST API: the price catalog (seeding and importing with
effective dates); budgets, anomaly rules and latency SLOs (save, delete, test alert); recommendation status and
recompute; GPU pools. Each write checks the requester's right through `observatory.access` and raises
`PermissionDenied` (a 403 on pages and in the API) when it is missing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from billing.alerting import channel_targets
from billing.catalog import DEFAULT_CATALOG_PATH, PriceSpec, load_catalog
from billing.models import AnomalyRule, Budget, GpuPool, LatencySlo, Price, PriceSource, Recommendation
from billing.price_rows import SCALAR_FIELDS, normalized, price_fields
from observatory.access import Viewer, require_change


def load_default_catalog() -> str:
    """Seed the bundled catalog on an empty install; later runs leave user edits alone."""
    if Price.objects.exists():
        return f"price catalog: {Price.objects.filter(effective_to=None).count():,} prices in force"
    specs = load_catalog(DEFAULT_CATALOG_PATH)
    Price.objects.bulk_create([Price(**price_fields(spec), source=PriceSource.CATALOG) for spec in specs], batch_size=1000)
    return f"price catalog: loaded {len(specs):,} model prices"


@dataclass
class ImportSummary:
    added: list[str]
    changed: list[str]
    unchanged: int

    def lines(self) -> list[str]:
        out = [f"{len(self.added)} added, {len(self.changed)} changed, {self.unchanged} unchanged"]
        out += [f"  + {key}" for key in self.added[:50]]
        out += [f"  ~ {line}" for line in self.changed[:50]]
        return out


def per_token(value: Decimal | None) -> str:
    return "none" if value is None else format(value.normalize(), "f")


def _differences(current: Price, spec: PriceSpec) -> list[str]:
    fields = price_fields(spec)
    changes = []
    for name in SCALAR_FIELDS:
        old, new = normalized(getattr(current, name)), normalized(fields[name])
        if old != new:
            changes.append(f"{name} {per_token(old)} → {per_token(new)}")
    for name in ("tiers", "variants", "mode"):
        if (current.tiers if name == "tiers" else current.variants if name == "variants" else current.mode) != fields[name]:
            changes.append(f"{name} changed")
    return changes


@transaction.atomic
def import_catalog(specs: list[PriceSpec], effective_from: datetime | None = None, dry_run: bool = False) -> ImportSummary:
    """Apply a catalog: new models are added; a changed price closes the old row at `effective_from`
    and opens a new one, so calls before that moment keep their old price (no history rewritten)."""
    when = effective_from or timezone.now()
    current = {(p.provider, p.key): p for p in Price.objects.filter(effective_to=None).select_for_update()}
    added, changed, unchanged = [], [], 0
    for spec in specs:
        row = current.get((spec.provider, spec.key))
        if row is None:
            added.append(f"{spec.provider}/{spec.key}")
            if not dry_run:
                Price.objects.create(**price_fields(spec), source=PriceSource.IMPORT, effective_from=when)
            continue
        differences = _differences(row, spec)
        if not differences:
            unchanged += 1
            continue
        changed.append(f"{spec.provider}/{spec.key}: " + ", ".join(differences))
        if not dry_run:
            row.effective_to = when
            row.save(update_fields=["effective_to"])
            Price.objects.create(**price_fields(spec), source=PriceSource.IMPORT, effective_from=when)
    if dry_run:
        transaction.set_rollback(True)
    return ImportSummary(added=added, changed=changed, unchanged=unchanged)


# Budgets, anomaly rules and latency SLOs ----------------------------------------------------------------------------

AlertSource = Budget | AnomalyRule | LatencySlo


class NoChannel(ValueError):
    """A test alert was asked for a budget or rule with no email address or webhook."""


def _require_change_of(viewer: Viewer, source: Model) -> None:
    require_change(viewer, getattr(source, "team", None), source.product)


def save_alert_source(viewer: Viewer, source: AlertSource) -> AlertSource:
    """Create or change a budget, rule or SLO (already validated by a form or serializer): the requester must be
    allowed to change what it covered before and what it covers now."""
    if source.organization_id != viewer.organization.id:
        raise PermissionDenied("this belongs to another organization.")
    if source.pk is not None:
        _require_change_of(viewer, type(source).objects.select_related("product__team").get(pk=source.pk))
    _require_change_of(viewer, source)
    if source.pk is None and source.owner_id is None and getattr(viewer.user, "pk", None) is not None:
        source.owner = viewer.user
    source.save()
    return source


def delete_alert_source(viewer: Viewer, source: AlertSource) -> None:
    """Delete a budget, rule or SLO with its alert history."""
    _require_change_of(viewer, source)
    source.delete()


def send_test_alert(viewer: Viewer, source: AlertSource) -> dict[str, str]:
    """A clearly marked test message to each channel of a budget, rule or SLO; nothing is recorded."""
    from billing.anomalies import send_rule_test_alert
    from billing.budgets import send_budget_test_alert

    _require_change_of(viewer, source)
    if not channel_targets(source):
        raise NoChannel("no channel is configured: add an email address or a webhook.")
    return send_budget_test_alert(source) if isinstance(source, Budget) else send_rule_test_alert(source)


# Recommendations ------------------------------------------------------------------------------------------------------

def set_recommendation_status(viewer: Viewer, recommendation: Recommendation, status: str, reason: str = "") -> None:
    """Accept, dismiss (with a reason, kept) or reopen. Dismissed ones come back only when their evidence doubles."""
    require_change(viewer, recommendation.team, recommendation.product)
    if status not in Recommendation.Status.values:
        raise ValueError("status must be open, accepted or dismissed.")
    recommendation.status = status
    recommendation.dismissed_reason = reason.strip()[:2000] if status == Recommendation.Status.DISMISSED else ""
    recommendation.save(update_fields=["status", "dismissed_reason", "updated_at"])


def refresh_recommendations(viewer: Viewer) -> None:
    """Queue the organization's recompute; admins and managers. Raises BrokerUnavailable when it cannot be queued."""
    from billing.tasks import generate_organization_recommendations
    from observatory.celery import enqueue

    if not viewer.may_create:
        raise PermissionDenied("only admins and managers recompute recommendations.")
    try:
        enqueue(generate_organization_recommendations, viewer.organization.pk)
    except (BrokerError, OSError) as error:
        raise BrokerUnavailable(error.__class__.__name__) from error


class BrokerUnavailable(RuntimeError):
    """The task broker did not take the job."""


# GPU pools -------------------------------------------------------------------------------------------------------------

def _require_admin(viewer: Viewer, what: str) -> None:
    if not viewer.is_admin:
        raise PermissionDenied(f"only organization admins {what} GPU pools.")


def save_gpu_pool(viewer: Viewer, pool: GpuPool) -> GpuPool:
    """Create or change a pool (validated by its form); its cost is split from the next rollup hour on."""
    _require_admin(viewer, "add and change")
    if pool.organization_id != viewer.organization.id:
        raise PermissionDenied("this pool belongs to another organization.")
    pool.save()
    return pool


def delete_gpu_pool(viewer: Viewer, pool: GpuPool) -> None:
    _require_admin(viewer, "delete")
    pool.delete()
