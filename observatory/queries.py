"""Reads for tenancy: which organizations and teams a user may see, and with which role."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from observatory.models import Membership, Organization, Role, Team

ROLE_RANK = {Role.VIEWER: 1, Role.MANAGER: 2, Role.ADMIN: 3}


def visible_teams(user) -> QuerySet[Team]:
    """Teams the user may read: all of an organization where they hold an org-wide role."""
    if not user.is_authenticated:
        return Team.objects.none()
    if user.is_superuser:
        return Team.objects.select_related("organization").all()
    memberships = Membership.objects.filter(user=user)
    org_wide = memberships.filter(team=None).values("organization_id")
    direct = memberships.exclude(team=None).values("team_id")
    return Team.objects.select_related("organization").filter(Q(organization_id__in=org_wide) | Q(id__in=direct))


def visible_organizations(user) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user).distinct()


def role_for_team(user, team: Team) -> str | None:
    """The strongest role the user holds for `team` (directly or org-wide), or None."""
    if user.is_superuser:
        return Role.ADMIN
    roles = Membership.objects.filter(user=user, organization_id=team.organization_id).filter(
        Q(team=None) | Q(team=team)
    ).values_list("role", flat=True)
    return max(roles, key=lambda r: ROLE_RANK[r], default=None)


def sees_whole_organization(user, organization: Organization) -> bool:
    """True when the user may see org-wide totals (org-wide membership or superuser)."""
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, organization=organization, team=None).exists()
