"""`import_prices <file>`: apply a LiteLLM-format price catalog, printing what changed."""

import json
from datetime import UTC
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from billing.pricing.catalog import parse_catalog
from billing.services import import_catalog


class Command(BaseCommand):
    help = "Import model prices (LiteLLM catalog JSON). Changed prices take effect at --effective-from (default now)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--effective-from", help="ISO time the new prices apply from (UTC if no offset)")
        parser.add_argument("--dry-run", action="store_true", help="show the differences, change nothing")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CommandError(f"{path} is not a price catalog: expected an object of model name → prices")
        when = None
        if options["effective_from"]:
            when = parse_datetime(options["effective_from"])
            if when is None:
                raise CommandError(f"--effective-from {options['effective_from']!r} is not an ISO date-time")
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
        parsed = parse_catalog(data)
        summary = import_catalog(list(parsed.specs), effective_from=when, dry_run=options["dry_run"])
        if options["dry_run"]:
            self.stdout.write("dry run, nothing changed:")
        for line in summary.lines():
            self.stdout.write(line)
        if parsed.skipped:
            self.stdout.write(f"{len(parsed.skipped):,} entries skipped (no per-token prices): {parsed.skipped_summary()}")
