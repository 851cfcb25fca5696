"""`compute_gpu_cost`: (re)compute GPU pools' hourly cost per team and idle, by default for the last complete hour."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from billing.gpu import HOUR, compute_gpu_cost_range, hour_start
from billing.management.commands.reprice import organization_by_slug, time_range
from observatory.models import Organization


class Command(BaseCommand):
    help = "Compute GPU pool cost per team and idle for each UTC hour in [--since, --until)."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="date or ISO time (UTC if no offset); default: the last complete hour")
        parser.add_argument("--until", help="date or ISO time, exclusive (default: the start of the current hour)")
        parser.add_argument("--org", help="organization slug (default: every organization with a GPU pool)")

    def handle(self, *args, **options):
        current_hour = hour_start(timezone.now())
        since, until = time_range(options, default_since=current_hour - HOUR, default_until=current_hour)
        organization = organization_by_slug(options["org"])
        organizations = [organization] if organization else Organization.objects.filter(gpu_pools__isnull=False).distinct()
        self.stdout.write(f"GPU cost for the hours {since:%Y-%m-%d %H}:00 to {until:%Y-%m-%d %H:%M} UTC")
        for org in organizations:
            rows = compute_gpu_cost_range(org.pk, since, until)
            self.stdout.write(f"{org.slug}: {rows:,} rows")
