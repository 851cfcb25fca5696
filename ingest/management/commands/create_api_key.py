"""`create_api_key --team <slug> [--product <slug>]`: prints a new ingest key as the last line of stdout."""

from django.core.management.base import BaseCommand, CommandError

from observatory.models import Organization, Product, Team
from observatory.services import create_api_key, get_or_create_organization


class Command(BaseCommand):
    help = "Create an API key whose calls default to a team (and product). The key is printed once, last."

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="team slug the key's calls default to")
        parser.add_argument("--product", help="product slug the key's calls default to")
        parser.add_argument("--org", default="default", help="organization slug (default: default)")
        parser.add_argument("--name", default="", help="a label for the key")
        parser.add_argument("--create", action="store_true", help="create the organization, team and product if missing")

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            if not options["create"]:
                raise CommandError(f"no organization {options['org']!r}; add --create to create it")
            org = get_or_create_organization(options["org"].replace("-", " ").title(), options["org"])
        team = Team.objects.filter(organization=org, slug=options["team"]).first()
        if team is None:
            if not options["create"]:
                raise CommandError(f"no team {options['team']!r} in {org.slug}; add --create to create it")
            team = Team.objects.create(organization=org, slug=options["team"], name=options["team"].replace("-", " ").title())
        product = None
        if options["product"]:
            product = Product.objects.filter(organization=org, slug=options["product"]).first()
            if product is None:
                if not options["create"]:
                    raise CommandError(f"no product {options['product']!r} in {org.slug}; add --create to create it")
                product = Product.objects.create(
                    organization=org, slug=options["product"], name=options["product"].replace("-", " ").title(), team=team
                )
        name = options["name"] or f"{team.slug}{'/' + product.slug if product else ''} key"
        new = create_api_key(org, name, team=team, product=product)
        self.stderr.write(f"Created API key {new.api_key.prefix}… for team {team.slug}"
                          f"{' and product ' + product.slug if product else ''}. It is shown once:")
        self.stdout.write(new.plaintext)
