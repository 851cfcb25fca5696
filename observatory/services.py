"""Writes for tenancy: creating organizations, teams, products, users and API keys; key checks; invitations,
roles and removals of members."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import smtplib
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from observatory.models import ApiKey, Invitation, Membership, Organization, Product, Role, Team

KEY_PREFIX = "obs_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(plaintext: str) -> str:
    """SHA-256 of the full key. Keys are 190 random bits, so a fast hash is safe (no dictionary to try)."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    plaintext: str


def create_api_key(
    organization: Organization,
    name: str,
    team: Team | None = None,
    product: Product | None = None,
    created_by=None,
) -> NewApiKey:
    """Create a key; the plaintext is returned once and never stored."""
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=prefix,
        key_hash=hash_key(plaintext),
        default_team=team,
        default_product=product,
        created_by=created_by,
    )
    return NewApiKey(api_key=api_key, plaintext=plaintext)


def parse_key_prefix(plaintext: str) -> str | None:
    if not plaintext.startswith(KEY_PREFIX):
        return None
    rest = plaintext[len(KEY_PREFIX) :]
    prefix, sep, secret = rest.partition("_")
    if not sep or len(prefix) != 12 or not secret:
        return None
    return prefix


def authenticate_key(plaintext: str) -> ApiKey | None:
    """The active key matching `plaintext`, or None. Constant-time comparison of the hash."""
    prefix = parse_key_prefix(plaintext or "")
    if prefix is None:
        return None
    api_key = (
        ApiKey.objects.select_related("organization", "default_team", "default_product")
        .filter(prefix=prefix, revoked_at=None)
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.key_hash, hash_key(plaintext)):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


KEY_CACHE_SECONDS = 10.0
_key_cache: dict[str, tuple[float, ApiKey]] = {}


def authenticate_key_cached(plaintext: str) -> ApiKey | None:
    """authenticate_key with a short per-process memory for the ingest hot path.

    A revoked key stops working in this process at once and in the others within KEY_CACHE_SECONDS.
    """
    digest = hash_key(plaintext or "")
    hit = _key_cache.get(digest)
    now = time.monotonic()
    if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
        return hit[1]
    api_key = authenticate_key(plaintext)
    if api_key is None:
        _key_cache.pop(digest, None)
        return None
    if len(_key_cache) > 10_000:
        _key_cache.clear()
    _key_cache[digest] = (now, api_key)
    return api_key


def cached_key(plaintext: str) -> ApiKey | None:
    """The key `authenticate_key_cached` checked less than KEY_CACHE_SECONDS ago, without touching the database
    (None: not known here yet, or known too long ago — then ask `authenticate_key_cached`)."""
    hit = _key_cache.get(hash_key(plaintext or ""))
    if hit is not None and time.monotonic() - hit[0] < KEY_CACHE_SECONDS:
        return hit[1]
    return None


def forget_cached_keys() -> None:
    """Drop this process's key memory (after organization or key settings change)."""
    _key_cache.clear()


def revoke_api_key(api_key: ApiKey) -> None:
    for digest in [d for d, (_, cached) in _key_cache.items() if cached.pk == api_key.pk]:
        _key_cache.pop(digest, None)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


def get_or_create_organization(name: str, slug: str | None = None) -> Organization:
    org, _ = Organization.objects.get_or_create(slug=slug or slugify(name), defaults={"name": name})
    return org


def get_or_create_team(organization: Organization, slug: str, name: str | None = None) -> Team:
    team, _ = Team.objects.get_or_create(
        organization=organization, slug=slugify(slug), defaults={"name": name or slug}
    )
    return team


def get_or_create_product(
    organization: Organization, slug: str, name: str | None = None, team: Team | None = None
) -> Product:
    product, _ = Product.objects.get_or_create(
        organization=organization, slug=slugify(slug), defaults={"name": name or slug, "team": team}
    )
    return product


@dataclass(frozen=True)
class FirstRun:
    username: str
    password: str | None  # None when the admin already existed
    api_key: str | None


@transaction.atomic
def ensure_first_admin(username: str = "admin") -> FirstRun:
    """On an empty install: an organization, an admin user and an ingest key. Idempotent.

    The key is the organization's, with no default team: a call that names no team stays unattributed (the
    overview's "unattributed spend"), instead of quietly counting as some team's."""
    User = get_user_model()
    org = get_or_create_organization("Default organization", "default")
    if User.objects.filter(is_superuser=True).exists():
        return FirstRun(username=User.objects.filter(is_superuser=True).first().get_username(), password=None, api_key=None)
    password = secrets.token_urlsafe(12)
    user = User.objects.create_superuser(username=username, email="", password=password)
    Membership.objects.create(user=user, organization=org, team=None, role=Role.ADMIN)
    new_key = create_api_key(org, "First key", created_by=user)
    return FirstRun(username=username, password=password, api_key=new_key.plaintext)


# Teams, products and people, as the settings page changes them --------------------------------------------------

INVITATION_DAYS = 7


class LastAdminError(ValueError):
    """The change would leave the organization without an organization-wide admin."""


@transaction.atomic  # a savepoint: a slug taken meanwhile (IntegrityError) leaves the request's transaction usable
def create_team(organization: Organization, name: str, slug: str) -> Team:
    return Team.objects.create(organization=organization, name=name, slug=slug)


def rename_team(team: Team, name: str) -> Team:
    """The name changes; the slug, which calls and links name the team by, stays."""
    team.name = name
    team.save(update_fields=["name"])
    return team


@transaction.atomic
def create_product(organization: Organization, name: str, slug: str, team: Team | None) -> Product:
    return Product.objects.create(organization=organization, name=name, slug=slug, team=team)


def change_product(product: Product, name: str, team: Team | None) -> Product:
    product.name, product.team = name, team
    product.save(update_fields=["name", "team"])
    return product


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    link: str  # absolute, with the single-use token: shown once to the inviter and emailed, never stored


def invite(organization: Organization, email: str, role: str, team: Team | None, invited_by) -> NewInvitation:
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization, team=team, email=email, role=role, token_hash=hash_key(token),
        invited_by=invited_by, expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    return NewInvitation(invitation=invitation, link=f"{settings.SITE_URL}/invite/{token}/")


def email_invitation(new: NewInvitation) -> str | None:
    """Send the link to the invitee; the reason when the mail server refused it (the inviter still has the link)."""
    invitation = new.invitation
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "An administrator"
    where = f"the {invitation.team.name} team of {invitation.organization.name}" if invitation.team else \
        invitation.organization.name
    body = (f"{inviter} invited you to {where} on Observatory, as {invitation.get_role_display().lower()}.\n\n"
            f"Open this link to set your password and sign in:\n{new.link}\n\n"
            f"It works once and expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n")
    try:
        send_mail(f"You are invited to {invitation.organization.name} on Observatory", body,
                  settings.DEFAULT_FROM_EMAIL, [invitation.email])
    except (OSError, smtplib.SMTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def revoke_invitation(invitation: Invitation) -> None:
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])


class InvitationUnusable(ValueError):
    """The link was used, revoked or has expired (the message says which)."""


def why_unusable(invitation: Invitation) -> str | None:
    if invitation.accepted_at is not None:
        return "used"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= timezone.now():
        return "expired"
    return None


@transaction.atomic
def accept_invitation(invitation: Invitation, user) -> Membership:
    """Give `user` the invited role (saving the user first when it is a new account); the link then stops
    working. Raises InvitationUnusable when it was used, revoked or expired meanwhile."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    problem = why_unusable(invitation)
    if problem:
        raise InvitationUnusable(problem)
    if user.pk is None:
        user.save()
    membership, _ = Membership.objects.update_or_create(
        user=user, organization_id=invitation.organization_id, team_id=invitation.team_id,
        defaults={"role": invitation.role})
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def _check_admins_remain(membership: Membership) -> None:
    """Refuse to take away the organization's last organization-wide admin (rows locked: two admins demoting each
    other at once cannot both succeed)."""
    if membership.team_id is not None or membership.role != Role.ADMIN:
        return
    admins = list(Membership.objects.select_for_update().filter(
        organization_id=membership.organization_id, team=None, role=Role.ADMIN).values_list("pk", flat=True))
    if admins == [membership.pk]:
        raise LastAdminError("This is the organization's last admin: make someone else an organization admin first.")


@transaction.atomic
def change_role(membership: Membership, role: str) -> Membership:
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if role != Role.ADMIN:
        _check_admins_remain(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_membership(membership: Membership) -> None:
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    _check_admins_remain(membership)
    membership.delete()
