"""`gateway_provider --org SLUG --provider openai [--base-url URL] [--key-stdin | --remove-key] [--allow-host HOST]`:
set where an organization's gateway calls go and with which provider key (read from stdin, stored encrypted)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from gateway import services
from observatory.models import Organization


class Command(BaseCommand):
    help = "Configure the gateway's upstream for an organization: allowed hosts, base URL, provider key."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--provider", choices=["openai", "anthropic"])
        parser.add_argument("--base-url", help="the provider's base URL (default: its public API), e.g. "
                                               "http://llm.internal:8000/v1; its host must be allowed")
        parser.add_argument("--key-stdin", action="store_true", help="read the provider key from standard input")
        parser.add_argument("--remove-key", action="store_true", help="forget the stored key (clients pass their own)")
        parser.add_argument("--allow-host", action="append", default=[], help="add host or host:port to the allow-list")

    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug=options["org"]).first()
        if organization is None:
            raise CommandError(f"no organization {options['org']!r}")
        try:
            for host in options["allow_host"]:
                entry = services.allow_upstream_host(organization, host)
                self.stdout.write(f"allowed {entry.host}")
            if options["provider"]:
                api_key = None
                if options["key_stdin"]:
                    api_key = sys.stdin.readline().strip()
                    if not api_key:
                        raise CommandError("no key on standard input")
                elif options["remove_key"]:
                    api_key = ""
                account = services.set_provider_account(organization, options["provider"], api_key=api_key,
                                                        base_url=options["base_url"])
                key = f"key …{account.key_hint}" if account.key_hint else "no stored key (clients pass their own)"
                self.stdout.write(f"{account.provider}: {account.base_url or 'public API'}, {key}")
        except ValueError as exc:
            raise CommandError(str(exc)) from None
