"""`reattribute --since DATE`: apply the current attribution rules (then key defaults) to stored calls."""

from django.core.management.base import BaseCommand

from billing.attribution import reattribute
from billing.management.commands.reprice import organization_by_slug, time_range
from observatory.models import Organization


class Command(BaseCommand):
    help = "Re-attribute stored calls that started in [--since, --until) and do not name their own team/product."

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="date or ISO time (UTC if no offset)")
        parser.add_argument("--until", help="date or ISO time, exclusive (default: now)")
        parser.add_argument("--org", help="organization slug (default: all organizations)")

    def handle(self, *args, **options):
        since, until = time_range(options)
        organization = organization_by_slug(options["org"])
        for org in [organization] if organization else Organization.objects.order_by("slug"):
            changed = reattribute(org.pk, since, until)
            self.stdout.write(f"{org.slug}: {changed:,} calls re-attributed")
