"""Writes for billing, shared by the pages and the REST API: the price catalog (seeding and importing with
effective dates); budgets, anomaly rules and latency SLOs (save, delete, test alert); recommendation status and
recompute; GPU pools. Each write checks the requester's right through `observatory.access` and raises
`PermissionDenied` (a 403 on pages and in the API) when it is missing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from billing.alerts.delivery import channel_targets
from billing.models import CATALOG_START, AnomalyRule, Budget, GpuPool, LatencySlo, Price, PriceSource, Recommendation
from billing.pricing.catalog import DEFAULT_CATALOG_PATH, CatalogParse, PriceSpec, read_catalog
from billing.pricing.rows import LIMIT_FIELDS, SCALAR_FIELDS, normalized, price_fields
from observatory.access import Viewer, require_change


def seed_catalog(price_model: type[Model] = Price, using: str = "default") -> int:
    """Load the bundled catalog into an install that has none of it, every price in force from CATALOG_START (the
    earliest start time ingest accepts), and return how many prices were added. `migrate` calls this (see
    billing.apps), so every install — `observatory up`, docker compose, a plain `manage.py migrate` — prices calls
    from its first one on.

    Idempotent and never overwriting: once any catalog row exists nothing is added (newer catalogs come in with
    `import_prices`, which keeps history), and a model a user or an import already priced — same provider and
    catalog key or bare model name — keeps that price. `price_model` is the migration state's Price when called from
    `post_migrate`; fields it does not have yet are left out."""
    prices = price_model.objects.using(using)
    if prices.filter(source=PriceSource.CATALOG).exists():
        return 0
    taken_keys = set(prices.values_list("provider", "key"))
    taken_models = {(provider, model.lower()) for provider, model in prices.values_list("provider", "model")}
    columns = {field.name for field in price_model._meta.concrete_fields}
    rows = [
        price_model(**{name: value for name, value in price_fields(spec).items() if name in columns},
                    source=PriceSource.CATALOG, effective_from=CATALOG_START)
        for spec in bundled_catalog().specs
        if (spec.provider, spec.key) not in taken_keys and (spec.provider, spec.model.lower()) not in taken_models
    ]
    prices.bulk_create(rows, batch_size=1000)
    return len(rows)


@cache
def bundled_catalog() -> CatalogParse:
    """The catalog file shipped in billing/data, parsed once per process."""
    return read_catalog(DEFAULT_CATALOG_PATH)


def catalog_status() -> str:
    """One line on the prices in force and what the bundled catalog skips, e.g. for the start-up output."""
    bundled = bundled_catalog()
    in_force = Price.objects.filter(effective_to=None).count()
    return (f"price catalog: {in_force:,} model prices in force. The bundled catalog has {bundled.entries:,} entries: "
            f"{len(bundled.specs):,} priced per token, {len(bundled.skipped):,} skipped "
            f"({bundled.skipped_summary()})")


def load_default_catalog() -> str:
    """Seed the bundled catalog if this install has none of it (migrate already does) and say what is in force."""
    seed_catalog()
    return catalog_status()


@dataclass
class ImportSummary:
    added: list[str]
    changed: list[str]
    unchanged: int
    limits_updated: int = 0

    def lines(self) -> list[str]:
        out = [f"{len(self.added)} added, {len(self.changed)} changed, {self.unchanged} unchanged"]
        if self.limits_updated:
            out[0] += f" ({self.limits_updated} with new token limits, set in place: limits are not prices)"
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
    and opens a new one, so calls before that moment keep their old price (no history rewritten). New token
    limits of an otherwise unchanged price are set on the row in force."""
    when = effective_from or timezone.now()
    current = {(p.provider, p.key): p for p in Price.objects.filter(effective_to=None).select_for_update()}
    added, changed, unchanged, limits_updated = [], [], 0, 0
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
            limits = {name: getattr(spec, name) for name in LIMIT_FIELDS}
            if any(getattr(row, name) != value for name, value in limits.items()):
                limits_updated += 1
                if not dry_run:
                    Price.objects.filter(pk=row.pk).update(**limits, updated_at=timezone.now())
            continue
        changed.append(f"{spec.provider}/{spec.key}: " + ", ".join(differences))
        if not dry_run:
            row.effective_to = when
            row.save(update_fields=["effective_to"])
            Price.objects.create(**price_fields(spec), source=PriceSource.IMPORT, effective_from=when)
    if dry_run:
        transaction.set_rollback(True)
    return ImportSummary(added=added, changed=changed, unchanged=unchanged, limits_updated=limits_updated)


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
    from billing.alerts.anomalies import send_rule_test_alert
    from billing.alerts.budgets import send_budget_test_alert

    _require_change_of(viewer, source)
    if not channel_targets(source):
        raise NoChannel("no channel is configured: add an email address or a webhook.")
    return send_budget_test_alert(source) if isinstance(source, Budget) else send_rule_test_alert(source)


# Recommendations ------------------------------------------------------------------------------------------------------

def set_recommendation_status(viewer: Viewer, recommendation: Recommendation, status: str, reason: str = "") -> None:
    """Accept, dismiss (with a reason, kept) or reopen. Dismissed ones come back only when their monthly saving doubles."""
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
