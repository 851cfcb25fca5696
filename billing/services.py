"""Writes for billing: seeding and importing the price catalog (with effective dates)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.catalog import DEFAULT_CATALOG_PATH, PriceSpec, load_catalog
from billing.models import Price, PriceSource
from billing.price_rows import SCALAR_FIELDS, normalized, price_fields


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
