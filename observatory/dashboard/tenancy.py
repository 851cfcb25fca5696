"""Settings reads and the key form: teams, members and roles, API keys and attribution rules the viewer may see,
and a new key's plaintext kept in the session from the POST that created it to the page that shows it once."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.db.models import Count, QuerySet
from django.utils import timezone

from billing.models import AttributionRule
from observatory.access import Viewer, visible_keys, visible_products
from observatory.models import Membership, Product, Team
from observatory.services import NewApiKey


def teams_with_counts(viewer: Viewer) -> QuerySet[Team]:
    return (Team.objects.filter(id__in=[team.id for team in viewer.teams])
            .annotate(members=Count("memberships", distinct=True), product_count=Count("products", distinct=True))
            .order_by("name"))


def members(viewer: Viewer) -> QuerySet[Membership]:
    """Memberships of the viewer's teams, and the org-wide ones for those who see the whole organization."""
    memberships = Membership.objects.filter(organization=viewer.organization).select_related("user", "team")
    if not viewer.whole_organization:
        memberships = memberships.filter(team_id__in=[team.id for team in viewer.teams])
    return memberships.order_by("team__name", "user__username")


def attribution_rules(viewer: Viewer) -> QuerySet[AttributionRule]:
    rules = AttributionRule.objects.filter(organization=viewer.organization).select_related("team", "product")
    if not viewer.whole_organization:
        rules = rules.filter(team_id__in=[team.id for team in viewer.teams])
    return rules


class NewKeyForm(forms.Form):
    """Name a key and give it a default team (a manager's teams; no team — the whole organization — for admins)."""

    name = forms.CharField(max_length=200)
    team = forms.ChoiceField(required=False)
    product = forms.ChoiceField(required=False)

    def __init__(self, viewer: Viewer, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.viewer = viewer
        teams = [(team.slug, team.name) for team in viewer.manageable_teams]
        self.fields["team"].choices = ([("", "No team — whole organization")] if viewer.is_admin else []) + teams
        self.fields["team"].required = not viewer.is_admin
        self.products = {product.slug: product for product in visible_products(viewer)}
        self.fields["product"].choices = [("", "No default product")] + [(p.slug, p.name) for p in self.products.values()]

    def clean_team(self) -> Team | None:
        slug = self.cleaned_data["team"]
        return next((team for team in self.viewer.manageable_teams if team.slug == slug), None) if slug else None

    def clean_product(self) -> Product | None:
        slug = self.cleaned_data["product"]
        return self.products.get(slug) if slug else None


# A new key's plaintext between the POST that created it and the settings page that shows it (post/redirect/get)

NEW_KEY_SESSION_KEY = "observatory:new-api-key"
NEW_KEY_KEPT_FOR = timedelta(minutes=10)


def remember_new_key(session, new_key: NewApiKey, organization_id: int) -> None:
    """Keep the plaintext in the session until the next settings page of that organization shows it."""
    session[NEW_KEY_SESSION_KEY] = {"key_id": new_key.api_key.pk, "organization_id": organization_id,
                                    "plaintext": new_key.plaintext, "created": timezone.now().timestamp()}


def pop_new_key(session, viewer: Viewer) -> NewApiKey | None:
    """The key remembered for this organization, taken out of the session: shown once. A key remembered for
    another organization stays for that organization's page; one older than NEW_KEY_KEPT_FOR is dropped unseen."""
    stored = session.get(NEW_KEY_SESSION_KEY)
    if not isinstance(stored, dict):
        return None
    stale = timezone.now().timestamp() - stored.get("created", 0) > NEW_KEY_KEPT_FOR.total_seconds()
    if stored.get("organization_id") != viewer.organization.id and not stale:
        return None
    del session[NEW_KEY_SESSION_KEY]
    if stale:
        return None
    api_key = visible_keys(viewer).filter(pk=stored.get("key_id")).first()
    return NewApiKey(api_key=api_key, plaintext=stored["plaintext"]) if api_key is not None else None


def spend_per_key(scope, period, keys: dict) -> list[dict]:
    """Calls and cost per API key in the range, for the keys given (those the viewer may see) and within the
    viewer's scope, most expensive first; keys without calls are left out."""
    from django.db.models import Count, F, Max, Q, Sum

    from ingest.models import LLMCall

    rows = (LLMCall.objects.filter(scope.q(), api_key_id__in=list(keys), start_time__gte=period.start,
                                   start_time__lt=period.end)
            .values("api_key_id").annotate(calls=Count("id"), cost_usd=Sum("cost_usd"),
                                           errors=Count("id", filter=Q(status="error")), last_call=Max("start_time"))
            .order_by(F("cost_usd").desc(nulls_last=True), "api_key_id"))
    return [{**row, "key": keys[row["api_key_id"]]} for row in rows]
