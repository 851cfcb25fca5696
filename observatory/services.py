"""Writes for tenancy: creating organizations, teams, products, users and API keys; key checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from observatory.models import ApiKey, Membership, Organization, Product, Role, Team

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
