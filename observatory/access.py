"""Who may see and change what: the one place that decides it, for pages, htmx partials, the REST API, exports
and ingest reads.

A requester is a signed-in person or an API key. Each holds, per organization, either the whole organization or
some of its teams:

- a person with an org-wide membership (or a superuser) sees the whole organization, unattributed calls included;
  a person with team memberships sees those teams only;
- an API key with a team sees that team only, everywhere (calls, spend, exports, budgets, rules, alerts,
  recommendations); a key without a team sees its whole organization. Keys never change anything.

A trace's context spans (ingest.models.TraceSpan: HTTP, DB, agent steps) are read like calls, by their team: a
team viewer sees only their teams' spans of a shared trace, never another team's span names or attributes, and a
span without a team (stored before spans had one, or whose export's calls did not agree on one) only with the
whole organization. Pages may say how many rows were left out (`Viewer.unreadable_count`), nothing more.

Changing: organization admins change everything in their organization; managers the budgets, rules and
recommendations of their teams (a product's owning team counts) and their teams' keys; viewers and keys nothing.
People and products: organization admins create and rename teams and invite, re-role and remove anyone; a team's
admins (a team membership with the admin role) rename their team, create and rename its products and manage its
members and invitations, never organization-wide roles.
The gateway's settings (provider accounts, allowed upstream hosts, cache policies, routing rules) are changed by
organization admins only; a running canary also by its team's managers, on its page.
Anything a requester may not read is a 404, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from observatory.models import ApiKey, Invitation, Membership, Organization, Product, Role, Team

ROLE_RANK = {Role.VIEWER: 1, Role.MANAGER: 2, Role.ADMIN: 3}


@dataclass(frozen=True)
class Scope:
    """What a requester may see of one organization: all of it (team_ids None) or only some teams."""

    organization_id: int
    team_ids: tuple[int, ...] | None = None

    def q(self, prefix: str = "") -> Q:
        condition = Q(**{f"{prefix}organization_id": self.organization_id})
        if self.team_ids is not None:
            condition &= Q(**{f"{prefix}team_id__in": self.team_ids})
        return condition


@dataclass(frozen=True)
class ProductScope(Scope):
    """A scope narrowed to one product: rollup and call queries that filter with `q()` keep to it."""

    product_id: int = 0

    def q(self, prefix: str = "") -> Q:
        return super().q(prefix) & Q(**{f"{prefix}product_id": self.product_id})


# What a requester holds, per organization -----------------------------------------------------------------------

EVERYTHING = None  # a superuser's grants: every organization, whole


def grants_of(user, api_key: ApiKey | None = None) -> dict[int, tuple[int, ...] | None] | None:
    """{organization id: team ids, or None for the whole organization}; None (EVERYTHING) for a superuser."""
    if api_key is not None:
        return {api_key.organization_id: (api_key.default_team_id,) if api_key.default_team_id else None}
    if not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) is None:
        return {}
    if user.is_superuser:
        return EVERYTHING
    grants: dict[int, tuple[int, ...] | None] = {}
    for organization_id, team_id in Membership.objects.filter(user=user).values_list("organization_id", "team_id"):
        if team_id is None:
            grants[organization_id] = None
        elif organization_id not in grants or grants[organization_id] is not None:
            grants[organization_id] = (*grants.get(organization_id, ()), team_id)
    return grants


# budgets, rules, SLOs and recommendations without a team belong to their product's owning team; calls and rollups
# belong to the team they were attributed to, nothing else
OWNED_THROUGH_PRODUCT = {"budget", "anomalyrule", "latencyslo", "recommendation", "routingrule", "cachepolicy"}


def _team_condition(model, team_ids: tuple[int, ...]) -> Q:
    """Rows of a model that belong to one of these teams."""
    names = {f.name for f in model._meta.get_fields()}
    if "team" in names and model._meta.model_name in OWNED_THROUGH_PRODUCT:
        return Q(team_id__in=team_ids) | Q(team=None, product__team_id__in=team_ids)
    if "team" in names:
        return Q(team_id__in=team_ids)
    if "default_team" in names:
        return Q(default_team_id__in=team_ids)
    if "product" in names:
        return Q(product__team_id__in=team_ids)
    return Q(pk__in=[])  # nothing of a team-less model is a team's


def _condition(model, grants: dict[int, tuple[int, ...] | None]) -> Q:
    condition = Q(pk__in=[])
    for organization_id, team_ids in grants.items():
        part = Q(organization_id=organization_id)
        if team_ids is not None:
            part &= _team_condition(model, team_ids)
        condition |= part
    return condition


def readable(queryset: QuerySet, user, api_key: ApiKey | None = None) -> QuerySet:
    """The rows of `queryset` (calls, trace spans, rollups, budgets, rules, SLOs, recommendations, keys, alerts) the requester
    may read, in every organization they belong to."""
    grants = grants_of(user, api_key)
    if grants is EVERYTHING:
        return queryset
    model = queryset.model
    if model._meta.model_name == "alert":
        from billing.models import AnomalyRule, Budget, LatencySlo  # alerts are read through their sources

        return queryset.filter(
            Q(budget__in=Budget.objects.filter(_condition(Budget, grants)))
            | Q(anomaly_rule__in=AnomalyRule.objects.filter(_condition(AnomalyRule, grants)))
            | Q(latency_slo__in=LatencySlo.objects.filter(_condition(LatencySlo, grants)))
        )
    return queryset.filter(_condition(model, grants))


def visible_organizations(user, api_key: ApiKey | None = None) -> QuerySet[Organization]:
    grants = grants_of(user, api_key)
    if grants is EVERYTHING:
        return Organization.objects.all()
    return Organization.objects.filter(pk__in=list(grants))


def visible_teams(user, api_key: ApiKey | None = None) -> QuerySet[Team]:
    """Teams the requester may read: all of an organization where they hold it whole."""
    grants = grants_of(user, api_key)
    teams = Team.objects.select_related("organization")
    if grants is EVERYTHING:
        return teams.all()
    condition = Q(pk__in=[])
    for organization_id, team_ids in grants.items():
        condition |= Q(organization_id=organization_id) if team_ids is None else Q(id__in=team_ids)
    return teams.filter(condition)


# One organization, as one requester sees it -------------------------------------------------------------------------

@dataclass(frozen=True)
class Viewer:
    """A signed-in person, or an API key, looking at one organization."""

    user: object
    organization: Organization
    organizations: tuple[Organization, ...]
    teams: tuple[Team, ...]
    whole_organization: bool
    organization_role: str | None = None
    team_roles: dict[int, str] = field(default_factory=dict)
    api_key: ApiKey | None = None

    @property
    def scope(self) -> Scope:
        team_ids = None if self.whole_organization else tuple(team.id for team in self.teams)
        return Scope(organization_id=self.organization.id, team_ids=team_ids)

    @property
    def team_names(self) -> dict[int, str]:
        return {team.id: team.name for team in self.teams}

    def team_scope(self, team: Team) -> Scope:
        return Scope(organization_id=self.organization.id, team_ids=(team.id,))

    def narrowed_to(self, team: Team) -> Viewer:
        """This viewer seeing one of its teams only, with its role there (a team's weekly digest). A team the
        viewer cannot read is a 404."""
        if team not in self.teams:
            raise Http404("No such team.")
        return replace(self, teams=(team,), whole_organization=False, organization_role=None,
                       team_roles={team.id: self.role_for(team.id)} if self.role_for(team.id) else {})

    def product_scope(self, product: Product) -> ProductScope:
        return ProductScope(organization_id=self.organization.id, team_ids=self.scope.team_ids, product_id=product.id)

    def readable(self, queryset: QuerySet) -> QuerySet:
        """`queryset` cut to what this viewer reads of this organization."""
        grants = {self.organization.id: self.scope.team_ids}
        if queryset.model._meta.model_name == "alert":
            return readable(queryset, self.user, self.api_key).filter(organization_id=self.organization.id)
        return queryset.filter(_condition(queryset.model, grants))

    def unreadable_count(self, queryset: QuerySet) -> int:
        """How many of this organization's rows in `queryset` the viewer may not read: a count for a placeholder
        ("3 spans outside your access"), never the rows themselves."""
        if self.whole_organization:
            return 0
        grants = {self.organization.id: self.scope.team_ids}
        counts = queryset.filter(organization_id=self.organization.id).aggregate(
            rows=Count("pk"), readable=Count("pk", filter=_condition(queryset.model, grants)))
        return counts["rows"] - counts["readable"]

    def role_for(self, team_id: int | None) -> str | None:
        """The strongest role for a team (org-wide roles count for every team); for no team, the org-wide role."""
        if self.api_key is not None:
            return None
        roles = [self.organization_role, self.team_roles.get(team_id) if team_id else None]
        return max((r for r in roles if r), key=lambda r: ROLE_RANK[r], default=None)

    def can_manage_keys(self, team_id: int | None) -> bool:
        """Managers create and revoke keys of their teams; a key without a team sees everything: admins only."""
        role = self.role_for(team_id)
        if team_id is None:
            return role == Role.ADMIN
        return role is not None and ROLE_RANK[role] >= ROLE_RANK[Role.MANAGER]

    def may_change(self, team: Team | None = None, product: Product | None = None) -> bool:
        """Budgets, rules, SLOs and recommendations: admins all of the organization's; managers those of their
        teams (for a product without a team: its owning team's); viewers and keys none."""
        if self.is_admin:
            return True
        if team is not None and team.organization_id != self.organization.id:
            return False
        owning_team = team or (product.team if product is not None else None)
        if owning_team is None or owning_team.organization_id != self.organization.id:
            return False
        role = self.role_for(owning_team.id)
        return role is not None and ROLE_RANK[role] >= ROLE_RANK[Role.MANAGER]

    @property
    def manageable_teams(self) -> list[Team]:
        return [team for team in self.teams if self.can_manage_keys(team.id)]

    @property
    def may_create(self) -> bool:
        """Budgets and recomputes: admins, and managers of at least one team."""
        return self.is_admin or bool(self.manageable_teams)

    @property
    def is_admin(self) -> bool:
        return self.role_for(None) == Role.ADMIN

    def may_manage_team(self, team_id: int | None) -> bool:
        """A team's members, invitations, products and name: its admins and organization admins. No team (an
        organization-wide role, a product without a team): organization admins only."""
        return self.role_for(team_id) == Role.ADMIN

    @property
    def administered_teams(self) -> list[Team]:
        return [team for team in self.teams if self.may_manage_team(team.id)]

    @property
    def may_manage_people(self) -> bool:
        return self.is_admin or bool(self.administered_teams)


def viewer_in(user, organization: Organization, api_key: ApiKey | None = None) -> Viewer | None:
    """The requester's view of one organization, or None when they hold nothing of it."""
    if api_key is not None:
        if api_key.organization_id != organization.id:
            return None
        teams = tuple(visible_teams(None, api_key).order_by("name"))
        return Viewer(user, organization, (organization,), teams, whole_organization=api_key.default_team_id is None,
                      api_key=api_key)
    organizations = tuple(visible_organizations(user).order_by("name", "id"))
    if organization not in organizations:
        return None
    teams = tuple(visible_teams(user).filter(organization=organization).order_by("name"))
    if user.is_superuser:
        return Viewer(user, organization, organizations, teams, whole_organization=True, organization_role=Role.ADMIN)
    memberships = Membership.objects.filter(user=user, organization=organization).values_list("team_id", "role")
    organization_role = next((role for team_id, role in memberships if team_id is None), None)
    team_roles = {team_id: role for team_id, role in memberships if team_id is not None}
    return Viewer(user, organization, organizations, teams, whole_organization=organization_role is not None,
                  organization_role=organization_role, team_roles=team_roles)


def organization_viewer(organization: Organization) -> Viewer:
    """The whole organization, read by Observatory itself for its own channel (the weekly digest posted to the
    organization's Slack), never for a request."""
    teams = tuple(Team.objects.filter(organization=organization).order_by("name"))
    return Viewer(None, organization, (organization,), teams, whole_organization=True)


def viewer_for(request: HttpRequest, api_key: ApiKey | None = None) -> Viewer | None:
    """The organization picked by `?org=<slug>` (default: the first by name), or None when the requester has none.
    An unknown or foreign `?org=` is a 404."""
    organizations = tuple(visible_organizations(request.user, api_key).order_by("name", "id"))
    slug = request.GET.get("org")
    if slug:
        organization = next((org for org in organizations if org.slug == slug), None)
        if organization is None:
            raise Http404("No such organization.")
    elif organizations:
        organization = organizations[0]
    else:
        return None
    return viewer_in(request.user, organization, api_key)


def api_viewer(request) -> Viewer:
    """The Viewer of a REST request (DRF: `request.auth` is the ApiKey when a key authenticated it)."""
    api_key = request.auth if isinstance(request.auth, ApiKey) else None
    viewer = viewer_for(request._request if hasattr(request, "_request") else request, api_key)
    if viewer is None:
        raise PermissionDenied("you belong to no organization.")
    return viewer


def require_change(viewer: Viewer, team: Team | None = None, product: Product | None = None) -> None:
    if not viewer.may_change(team, product):
        raise PermissionDenied("only organization admins, and managers of its team, may change this.")


def dashboard_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login required; the view gets the Viewer after the request. Users in no organization get a page saying so."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        viewer = viewer_for(request)
        if viewer is None:
            return render(request, "observatory/no_organization.html", {"nav": ""})
        return view(request, viewer, *args, **kwargs)

    return wrapper


def team_or_404(viewer: Viewer, slug: str) -> Team:
    team = next((team for team in viewer.teams if team.slug == slug), None)
    if team is None:
        raise Http404("No such team.")
    return team


def visible_products(viewer: Viewer) -> list[Product]:
    """Products to offer in menus: all of the organization's, or those owned by the user's teams."""
    products = Product.objects.filter(organization=viewer.organization).select_related("team").order_by("name")
    if not viewer.whole_organization:
        products = products.filter(team_id__in=[team.id for team in viewer.teams])
    return list(products)


def product_or_404(viewer: Viewer, slug: str, used_by_scope: Callable[[Scope, Product], bool]) -> Product:
    """A product is visible with the whole organization, when one of the viewer's teams owns it, or when one of
    their teams' calls used it (`used_by_scope`; its page then shows only those calls)."""
    product = Product.objects.filter(organization=viewer.organization, slug=slug).first()
    if product is None:
        raise Http404("No such product.")
    scope = viewer.scope
    if scope.team_ids is None or product.team_id in scope.team_ids or used_by_scope(scope, product):
        return product
    raise Http404("No such product.")


def visible_keys(viewer: Viewer) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.filter(organization=viewer.organization).select_related("default_team", "default_product",
                                                                                 "created_by")
    return viewer.readable(keys)


def key_or_404(viewer: Viewer, key_id: int) -> ApiKey:
    key = visible_keys(viewer).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key.")
    return key


# People, invitations and products, as the settings page manages them ---------------------------------------------

def visible_memberships(viewer: Viewer) -> QuerySet[Membership]:
    """Memberships of the viewer's teams; the organization-wide ones too for those who see the whole organization."""
    memberships = Membership.objects.filter(organization=viewer.organization).select_related("user", "team")
    return viewer.readable(memberships)


def visible_invitations(viewer: Viewer) -> QuerySet[Invitation]:
    """Invitations not yet accepted, revoked or expired, to the viewer's teams (or the organization's, all)."""
    from django.utils import timezone

    invitations = Invitation.objects.filter(organization=viewer.organization, accepted_at=None, revoked_at=None,
                                            expires_at__gt=timezone.now()).select_related("team", "invited_by")
    return viewer.readable(invitations)


def membership_or_404(viewer: Viewer, membership_id: int) -> Membership:
    membership = visible_memberships(viewer).filter(pk=membership_id).first()
    if membership is None:
        raise Http404("No such member.")
    return membership


def invitation_or_404(viewer: Viewer, invitation_id: int) -> Invitation:
    invitation = visible_invitations(viewer).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def team_by_id_or_404(viewer: Viewer, team_id: int) -> Team:
    team = next((team for team in viewer.teams if team.id == team_id), None)
    if team is None:
        raise Http404("No such team.")
    return team


def product_by_id_or_404(viewer: Viewer, product_id: int) -> Product:
    """A product of the organization that the viewer sees whole, or one owned by one of their teams."""
    product = next((product for product in visible_products(viewer) if product.id == product_id), None)
    if product is None:
        raise Http404("No such product.")
    return product


def require_manage_team(viewer: Viewer, team_id: int | None) -> None:
    if not viewer.may_manage_team(team_id):
        raise PermissionDenied("only organization admins, and admins of this team, may manage it."
                               if team_id else "only organization admins may manage organization-wide roles.")


def routing_rule_or_404(viewer: Viewer, rule_id: int):
    """A gateway routing rule (a canary) the viewer may read: its team's, or its product's owning team's."""
    from gateway.rules import RoutingRule

    rule = viewer.readable(RoutingRule.objects.select_related("team", "product", "recommendation")).filter(
        pk=rule_id).first()
    if rule is None:
        raise Http404("No such routing rule.")
    return rule


# The gateway's configuration, as its settings page shows it ----------------------------------------------------------

def visible_upstream_hosts(viewer: Viewer) -> QuerySet:
    """The organization's allowed upstream hosts: the organization's, not a team's (read with the whole organization)."""
    from gateway.models import UpstreamHost

    return viewer.readable(UpstreamHost.objects.filter(organization=viewer.organization).order_by("host"))


def visible_provider_accounts(viewer: Viewer) -> QuerySet:
    """The organization's provider accounts (base URL and key hint; never the key), with the whole organization."""
    from gateway.models import ProviderAccount

    return viewer.readable(ProviderAccount.objects.filter(organization=viewer.organization).order_by("provider"))


def visible_cache_policies(viewer: Viewer) -> QuerySet:
    """Response cache policies of the viewer's teams (a product's owning team counts), newest first."""
    from gateway.rules import CachePolicy

    policies = CachePolicy.objects.filter(organization=viewer.organization).select_related("team", "product")
    return viewer.readable(policies).order_by("-created_at", "-id")


def visible_routing_rules(viewer: Viewer) -> QuerySet:
    """Routing rules of the viewer's teams (a product's owning team counts), newest first: the order they win in."""
    from gateway.rules import RoutingRule

    rules = RoutingRule.objects.filter(organization=viewer.organization).select_related("team", "product")
    return viewer.readable(rules).order_by("-created_at", "-id")


def require_gateway_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise PermissionDenied("only organization admins change the gateway's settings.")


def upstream_host_or_404(viewer: Viewer, host_id: int):
    host = visible_upstream_hosts(viewer).filter(pk=host_id).first()
    if host is None:
        raise Http404("No such upstream host.")
    return host


def cache_policy_or_404(viewer: Viewer, policy_id: int):
    policy = visible_cache_policies(viewer).filter(pk=policy_id).first()
    if policy is None:
        raise Http404("No such cache policy.")
    return policy


def invitation_for_token(token_hash: str) -> Invitation | None:
    """The invitation a link opens: whoever holds the link may see it (it names the inviting organization and team)."""
    return Invitation.objects.select_related("organization", "team", "invited_by").filter(token_hash=token_hash).first()
