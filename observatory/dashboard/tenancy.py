"""Settings reads and the key form: teams, members and roles, API keys and attribution rules the viewer may see,
the background jobs that are failing, and the one-time token that keeps a re-sent key form from creating a second
key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from django import forms
from django.db.models import Count, QuerySet

from billing.models import AnomalyRule, AttributionRule, Budget, LatencySlo, RollupState
from ingest.spool import SpoolState
from ingest.spool import state as spool_state
from observatory.access import Viewer, visible_memberships, visible_products
from observatory.models import Membership, Product, Team


def teams_with_counts(viewer: Viewer) -> QuerySet[Team]:
    return (Team.objects.filter(id__in=[team.id for team in viewer.teams])
            .annotate(members=Count("memberships", distinct=True), product_count=Count("products", distinct=True))
            .order_by("name"))


def members(viewer: Viewer) -> QuerySet[Membership]:
    """Memberships of the viewer's teams, and the org-wide ones for those who see the whole organization."""
    return visible_memberships(viewer).order_by("team__name", "user__username")


def attribution_rules(viewer: Viewer) -> QuerySet[AttributionRule]:
    rules = AttributionRule.objects.filter(organization=viewer.organization).select_related("team", "product")
    if not viewer.whole_organization:
        rules = rules.filter(team_id__in=[team.id for team in viewer.teams])
    return rules


@dataclass
class BackgroundJobs:
    """How the every-minute jobs fare for one organization, as the settings page shows it."""

    rolled_up_to: datetime | None = None
    rollup_error: str = ""
    rollup_failing_since: datetime | None = None
    failed_hours: list[tuple[datetime, str]] = field(default_factory=list)
    failing_evaluations: list[tuple[str, object]] = field(default_factory=list)  # ("Budget", the budget), …
    spool: SpoolState | None = None  # exports this host accepted while the database was away, not applied yet

    @property
    def healthy(self) -> bool:
        return not (self.rollup_error or self.failed_hours or self.failing_evaluations or self.spool)


def background_jobs(viewer: Viewer) -> BackgroundJobs:
    """The organization's rollup progress and failures (no team's data in them: hours and errors), and the
    budgets, anomaly rules and latency SLOs the viewer may read whose evaluation is failing."""
    jobs = BackgroundJobs()
    waiting = spool_state()
    jobs.spool = waiting if waiting.pending_bytes else None
    state = RollupState.objects.filter(name="hourly", organization=viewer.organization).first()
    if state is not None:
        jobs.rolled_up_to, jobs.rollup_error, jobs.rollup_failing_since = state.watermark, state.last_error, state.failing_since
        jobs.failed_hours = [(datetime.fromisoformat(hour), problem) for hour, problem in state.failed_hours.items()]
    for label, model in (("Budget", Budget), ("Anomaly rule", AnomalyRule), ("Latency SLO", LatencySlo)):
        failing = viewer.readable(model.objects.filter(organization=viewer.organization).exclude(evaluation_error=""))
        jobs.failing_evaluations += [(label, source) for source in failing.order_by("name")]
    return jobs


class NewKeyForm(forms.Form):
    """Name a key and give it a default team (a manager's teams; no team — the whole organization — for admins)."""

    name = forms.CharField(max_length=200)
    team = forms.ChoiceField(required=False)
    once = forms.CharField(required=False, widget=forms.HiddenInput)  # the form's one-time token
    product = forms.ChoiceField(required=False)

    def __init__(self, viewer: Viewer, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["once"] = new_form_token()
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


# Creating a key answers the POST with the page that shows its plaintext, once; nothing of it is kept server side.
# The form carries a one-time token so that re-sending the POST (reload, back button) creates no second key: only
# used tokens are remembered in the session (never the key).

USED_FORM_TOKENS = "observatory:used-key-form-tokens"
KEPT_FORM_TOKENS = 50


def new_form_token() -> str:
    return secrets.token_urlsafe(16)


def claim_form_token(session, token: str) -> bool:
    """True the first time `token` is presented in this session, False when it was already used. A form sent
    without one (a script) cannot be recognised when sent again, and is always taken."""
    if not token:
        return True
    used = list(session.get(USED_FORM_TOKENS, []))
    if token in used:
        return False
    session[USED_FORM_TOKENS] = [*used, token][-KEPT_FORM_TOKENS:]
    return True


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
