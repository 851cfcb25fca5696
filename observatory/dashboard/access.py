"""Who sees what on the dashboard: the organization a request looks at, the teams in it the user may read,
and the teams, products and API keys they may open or manage.

A user with an org-wide membership (or a superuser) sees the whole organization, unattributed calls included;
everyone else sees only their teams. Anything outside that is a 404, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from billing.models import HourlyRollup
from billing.queries import Scope
from observatory.models import ApiKey, Membership, Organization, Product, Role, Team
from observatory.queries import ROLE_RANK, visible_organizations, visible_teams


@dataclass(frozen=True)
class ProductScope(Scope):
    """A scope narrowed to one product: rollup and call queries that filter with `q()` keep to it."""

    product_id: int = 0

    def q(self, prefix: str = "") -> Q:
        return super().q(prefix) & Q(**{f"{prefix}product_id": self.product_id})


@dataclass(frozen=True)
class Viewer:
    """A signed-in user looking at one organization."""

    user: object
    organization: Organization
    organizations: tuple[Organization, ...]
    teams: tuple[Team, ...]
    whole_organization: bool
    organization_role: str | None = None
    team_roles: dict[int, str] = field(default_factory=dict)

    @property
    def scope(self) -> Scope:
        team_ids = None if self.whole_organization else tuple(team.id for team in self.teams)
        return Scope(organization_id=self.organization.id, team_ids=team_ids)

    @property
    def team_names(self) -> dict[int, str]:
        return {team.id: team.name for team in self.teams}

    def team_scope(self, team: Team) -> Scope:
        return Scope(organization_id=self.organization.id, team_ids=(team.id,))

    def product_scope(self, product: Product) -> ProductScope:
        return ProductScope(organization_id=self.organization.id, team_ids=self.scope.team_ids, product_id=product.id)

    def role_for(self, team_id: int | None) -> str | None:
        """The strongest role for a team (org-wide roles count for every team); for no team, the org-wide role."""
        roles = [self.organization_role, self.team_roles.get(team_id) if team_id else None]
        return max((r for r in roles if r), key=lambda r: ROLE_RANK[r], default=None)

    def can_manage_keys(self, team_id: int | None) -> bool:
        """Managers create and revoke keys of their teams; a key without a team sees everything: admins only."""
        role = self.role_for(team_id)
        if team_id is None:
            return role == Role.ADMIN
        return role is not None and ROLE_RANK[role] >= ROLE_RANK[Role.MANAGER]

    @property
    def manageable_teams(self) -> list[Team]:
        return [team for team in self.teams if self.can_manage_keys(team.id)]

    @property
    def is_admin(self) -> bool:
        return self.role_for(None) == Role.ADMIN


def viewer_for(request: HttpRequest) -> Viewer | None:
    """The organization picked by `?org=<slug>` (default: the first by name), or None when the user has none."""
    user = request.user
    organizations = tuple(visible_organizations(user).order_by("name", "id"))
    slug = request.GET.get("org")
    if slug:
        organization = next((org for org in organizations if org.slug == slug), None)
        if organization is None:
            raise Http404("No such organization.")
    elif organizations:
        organization = organizations[0]
    else:
        return None
    teams = tuple(visible_teams(user).filter(organization=organization).order_by("name"))
    if user.is_superuser:
        return Viewer(user, organization, organizations, teams, whole_organization=True, organization_role=Role.ADMIN)
    memberships = Membership.objects.filter(user=user, organization=organization).values_list("team_id", "role")
    organization_role = next((role for team_id, role in memberships if team_id is None), None)
    team_roles = {team_id: role for team_id, role in memberships if team_id is not None}
    return Viewer(user, organization, organizations, teams, whole_organization=organization_role is not None,
                  organization_role=organization_role, team_roles=team_roles)


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
    products = Product.objects.filter(organization=viewer.organization).order_by("name")
    if not viewer.whole_organization:
        products = products.filter(team_id__in=[team.id for team in viewer.teams])
    return list(products)


def product_or_404(viewer: Viewer, slug: str) -> Product:
    """A product is visible with the whole organization, when one of the user's teams owns it, or when one of
    their teams' calls used it (its page then shows only those calls)."""
    product = Product.objects.filter(organization=viewer.organization, slug=slug).first()
    if product is None:
        raise Http404("No such product.")
    scope = viewer.scope
    if scope.team_ids is None or product.team_id in scope.team_ids:
        return product
    if HourlyRollup.objects.filter(scope.q(), product_id=product.id).exists():
        return product
    raise Http404("No such product.")


def visible_keys(viewer: Viewer):
    keys = ApiKey.objects.filter(organization=viewer.organization).select_related("default_team", "default_product",
                                                                                 "created_by")
    if not viewer.whole_organization:
        keys = keys.filter(default_team_id__in=[team.id for team in viewer.teams])
    return keys


def key_or_404(viewer: Viewer, key_id: int) -> ApiKey:
    key = visible_keys(viewer).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key.")
    return key
