"""Settings → Gateway: where clients reach the gateway, and the rows and forms (each error beside its field) of its
provider accounts, allowed upstream hosts, response cache policies and routing rules, as observatory.access lets the
viewer read them. Only organization admins get forms."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from gateway.models import Provider
from gateway.routes import PUBLIC_BASE_URLS
from gateway.rules import RoutingRule
from gateway.upstreams import PUBLIC_HOSTS, normalize_host
from observatory.access import (
    Viewer,
    visible_cache_policies,
    visible_products,
    visible_provider_accounts,
    visible_routing_rules,
    visible_upstream_hosts,
)
from observatory.models import Product, Team

MAX_TTL_SECONDS = 30 * 86400


def ttl_label(seconds: int) -> str:
    """A time to live as people say it, in its two largest units: 45 → "45 s", 5400 → "1 h 30 min",
    86400 → "1 day", 2592000 → "30 days"."""
    parts = []
    for size, unit, units in ((86400, "day", "days"), (3600, "h", "h"), (60, "min", "min"), (1, "s", "s")):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit if count == 1 else units}")
    return " ".join(parts[:2]) or "0 s"


class ProviderAccountForm(forms.Form):
    """A provider's base URL, and a key to store; the key is never rendered back, not even with an error."""

    base_url = forms.URLField(label="Base URL", required=False, max_length=500, assume_scheme="https",
                              help_text="Empty: the provider's public API. Another host must be allowed below first.")
    api_key = forms.CharField(label="API key", required=False, max_length=500, strip=True,
                              widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                              help_text="Stored encrypted, never shown again. Empty: keep the stored key.")


class UpstreamHostForm(forms.Form):
    host = forms.CharField(label="Host", max_length=255, help_text="host, or host:port for one port only")

    def __init__(self, *args, allowed: frozenset[str] = frozenset(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.allowed = allowed
        self.fields["host"].widget.attrs["placeholder"] = "llm.internal:8000"

    def clean_host(self) -> str:
        try:
            host = normalize_host(self.cleaned_data["host"])
        except ValueError as exc:
            raise forms.ValidationError(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None
        if host in self.allowed or host in PUBLIC_HOSTS:
            raise forms.ValidationError(f"{host} is already allowed.")
        return host


class _ScopeForm(forms.Form):
    """Which calls: a team, a product and a feature, each empty for any."""

    team = forms.ChoiceField(label="Team", required=False)
    product = forms.ChoiceField(label="Product", required=False)
    feature = forms.CharField(label="Feature", max_length=200, required=False, help_text="Empty: any feature.")

    def __init__(self, viewer: Viewer, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.teams = {str(team.id): team for team in viewer.teams}
        self.products = {str(product.id): product for product in visible_products(viewer)}
        self.fields["team"].choices = [("", "Any team")] + [(key, team.name) for key, team in self.teams.items()]
        self.fields["product"].choices = [("", "Any product")] + [(key, p.name) for key, p in self.products.items()]

    def clean_team(self) -> Team | None:
        return self.teams.get(self.cleaned_data["team"])

    def clean_product(self) -> Product | None:
        return self.products.get(self.cleaned_data["product"])


class CachePolicyForm(_ScopeForm):
    ttl_seconds = forms.IntegerField(label="Time to live (seconds)", min_value=1, max_value=MAX_TTL_SECONDS, initial=3600,
                                     help_text="Up to 2,592,000 (30 days).")
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)


class RoutingRuleForm(_ScopeForm):
    name = forms.CharField(label="Name", max_length=200, required=False, help_text="Empty: from → to.")
    from_model = forms.CharField(label="From model", max_length=255, required=False,
                                 help_text="Empty: any model; a name matches its dated versions.")
    to_model = forms.CharField(label="To model", max_length=255, required=False)
    share_percent = forms.DecimalField(label="Share (%)", min_value=0, max_value=100, max_digits=5, decimal_places=2,
                                       initial=100, help_text="Of the matching calls sent to the new model; 100: all.")
    split = forms.ChoiceField(label="Split", choices=RoutingRule.Split.choices, initial=RoutingRule.Split.REQUEST_ID)
    fallback_model = forms.CharField(label="Fallback model", max_length=255, required=False,
                                     help_text="Tried once after a 429, 5xx or timeout.")
    fallback_base_url = forms.URLField(label="Fallback base URL", max_length=500, required=False, assume_scheme="https",
                                       help_text="Empty: the same upstream. Its host must be allowed.")
    fallback_provider = forms.ChoiceField(
        label="Fallback provider", required=False, choices=[("", "The call's own"), *RoutingRule.FallbackProvider.choices],
        help_text="The other provider retries chat calls on its own API with its stored key, translated both ways.")
    status = forms.ChoiceField(label="Status", choices=RoutingRule.Status.choices, initial=RoutingRule.Status.CANARY)
    field_order = ["name", "team", "product", "feature", "from_model", "to_model", "share_percent", "split",
                   "fallback_model", "fallback_base_url", "fallback_provider", "status"]

    def clean(self) -> dict:
        data = super().clean()
        if not (data.get("to_model") or data.get("fallback_model") or data.get("fallback_base_url")
                or self.has_error("fallback_base_url")):
            self.add_error("to_model", "Give a model to route to, or a fallback model or base URL.")
        if data.get("fallback_provider"):  # the rule's own checks: a model of that provider, no base URL
            rule = RoutingRule(fallback_provider=data["fallback_provider"], fallback_model=data.get("fallback_model", ""),
                               fallback_base_url=data.get("fallback_base_url", ""))
            try:
                rule.clean()
            except ValidationError as exc:
                for field, problems in exc.message_dict.items():
                    for problem in problems:
                        self.add_error(field, problem)
        return data


def gateway_context(viewer: Viewer, bound: dict[str, forms.Form] | None = None) -> dict:
    """The page's rows, and for organization admins its forms; `bound` holds a form just posted with errors, by its
    prefix ("openai", "new-host", …), shown in its place."""
    bound = bound or {}
    may_change = viewer.is_admin

    def form(prefix: str, make):
        if not may_change:
            return None
        return bound[prefix] if prefix in bound else make(prefix)

    accounts = {account.provider: account for account in visible_provider_accounts(viewer)}
    hosts = list(visible_upstream_hosts(viewer))
    providers = [{
        "provider": provider, "label": label, "public_url": PUBLIC_BASE_URLS[provider], "account": accounts.get(provider),
        "form": form(provider, lambda p, a=accounts.get(provider): ProviderAccountForm(
            initial={"base_url": a.base_url if a else ""}, prefix=p)),
    } for provider, label in Provider.choices]
    url = settings.GATEWAY_URL
    return {
        "may_change": may_change,
        "openai_base_url": f"{url}/v1", "anthropic_base_url": url,
        "provider_rows": providers,
        "hosts": hosts, "public_hosts": sorted(PUBLIC_HOSTS), "configured_hosts": settings.GATEWAY_ALLOWED_HOSTS,
        "policy_rows": [{"policy": policy, "ttl": ttl_label(policy.ttl_seconds)} for policy in visible_cache_policies(viewer)],
        "rules": list(visible_routing_rules(viewer)),
        "host_form": form("new-host", lambda p: UpstreamHostForm(allowed=frozenset(h.host for h in hosts), prefix=p)),
        "policy_form": form("new-policy", lambda p: CachePolicyForm(viewer, prefix=p)),
        "rule_form": form("new-rule", lambda p: RoutingRuleForm(viewer, prefix=p)),
    }
