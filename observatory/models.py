"""Tenancy: organizations, teams, products, who belongs where, and ingest API keys."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    capture_content = models.BooleanField(
        default=False, help_text="Keep prompt and completion text. Off by default: only token counts are stored."
    )
    content_max_bytes = models.PositiveIntegerField(default=16_384, help_text="Per call and direction.")
    digest_slack_webhook_url = models.URLField(
        max_length=500, blank=True, default="",
        help_text="Slack incoming webhook that gets the organization-wide weekly digest. Empty: no Slack digest.")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="team_unique_slug_per_org")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="products")
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="products", help_text="Owning team."
    )
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="product_unique_slug_per_org")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    """A user's role in one team, or in the whole organization when `team` is empty."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization", "team"], name="membership_unique"),
            models.UniqueConstraint(
                fields=["user", "organization"], condition=models.Q(team=None), name="membership_unique_org_wide"
            ),
        ]

    def __str__(self) -> str:
        where = self.team.slug if self.team_id else f"{self.organization.slug} (all teams)"
        return f"{self.user} — {self.role} of {where}"


class ApiKey(models.Model):
    """An ingest/API key. Only a SHA-256 of the secret is stored; the key is shown once at creation."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, used for lookup.")
    key_hash = models.CharField(max_length=64)
    default_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    default_product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    ingest_rate_limit = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Records (spans, log records, metric points) per second this key may send; empty: the server default.",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Invitation(models.Model):
    """An invitation to join an organization (or one of its teams) with a role. The link's token is single-use and
    only its SHA-256 is kept; the link is shown once to the inviter and emailed to the invitee."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations",
                             help_text="Empty: the role holds for the whole organization.")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} — {self.role} of {self.team.slug if self.team_id else self.organization.slug}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class DigestOptOut(models.Model):
    """A person who asked for no weekly digest of one organization (Settings, the digest page, or the email's
    unsubscribe link). No row: they get it, if they manage something."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="digest_opt_out_unique")]

    def __str__(self) -> str:
        return f"{self.user} — no weekly digest of {self.organization}"


class DigestSend(models.Model):
    """One weekly digest to one recipient (a person by email, or the organization's Slack webhook) for one scope
    (a team, or the whole organization) and one week. Unique on those, inserted with ON CONFLICT DO NOTHING and
    claimed with a row lock while sending (observatory.digest): racing workers send it once."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    recipient = models.CharField(max_length=40, help_text="user:<id> or slack")
    scope = models.CharField(max_length=40, help_text="org or team:<id>")
    week_start = models.DateField(help_text="The Monday (UTC) of the week the digest reports on.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "recipient", "scope", "week_start"],
                                               name="digest_send_once_per_week")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="digest_send_due")]

    def __str__(self) -> str:
        return f"digest {self.week_start} {self.scope} → {self.recipient} ({self.status})"
