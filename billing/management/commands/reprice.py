"""`reprice --since DATE`: recompute stored calls' cost at the prices now recorded for their start times."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from billing.pricing.repricing import day_windows, reprice
from observatory.models import Organization


def parse_moment(value: str, option: str) -> datetime:
    """A date (midnight UTC) or an ISO date-time (UTC if no offset); CommandError naming the option otherwise."""
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"{option} {value!r} is not a date (2026-11-01) or ISO date-time (2026-11-01T14:00)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def time_range(
    options: dict, default_since: datetime | None = None, default_until: datetime | None = None
) -> tuple[datetime, datetime]:
    """--since and --until as UTC-aware datetimes (--until defaults to now), since before until."""
    since = parse_moment(options["since"], "--since") if options["since"] else default_since
    until = parse_moment(options["until"], "--until") if options["until"] else default_until or timezone.now()
    if until <= since:
        raise CommandError(f"--until ({until:%Y-%m-%d %H:%M}) must be after --since ({since:%Y-%m-%d %H:%M})")
    return since, until


def organization_by_slug(slug: str | None) -> Organization | None:
    if slug is None:
        return None
    try:
        return Organization.objects.get(slug=slug)
    except Organization.DoesNotExist:
        raise CommandError(f"no organization with slug {slug!r}") from None


class Command(BaseCommand):
    help = "Re-price stored calls that started in [--since, --until) at the prices and overrides in force then."

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="date or ISO time (UTC if no offset)")
        parser.add_argument("--until", help="date or ISO time, exclusive (default: now)")
        parser.add_argument("--model", help="only calls of this model (exact or shell pattern, e.g. gpt-4o*)")
        parser.add_argument("--org", help="organization slug (default: all organizations)")
        parser.add_argument("--batch", type=int, default=5000, help="calls read and written per transaction")

    def handle(self, *args, **options):
        since, until = time_range(options)
        organization = organization_by_slug(options["org"])
        days = [start for start, _ in day_windows(since, until)]
        done = 0

        def report(examined: int, changed: int) -> None:
            nonlocal done
            done += 1
            day = f"{days[done - 1]:%Y-%m-%d}"
            self.stdout.write(f"day {done}/{len(days)} ({day}): {examined:,} calls, {changed:,} changed")

        result = reprice(organization.pk if organization else None, since, until, model=options["model"],
                         batch=options["batch"], progress=report)
        self.stdout.write(f"re-priced {result.examined:,} calls: {result.changed:,} changed")
