"""Account models: users, namespaces, memberships, signing keys, API tokens.

Plain data with constraints; the rules for changing them live in
``services.py`` and the queries in ``selectors.py``.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    """A person. Their personal namespace has the same name as their username."""


class Namespace(models.Model):
    class Kind(models.TextChoices):
        PERSONAL = "personal"
        ORGANIZATION = "organization"

    name = models.CharField(max_length=40, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ORGANIZATION)
    display_name = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(User, through="Membership", related_name="namespaces")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    """Ordered by power: an owner can do everything a maintainer can, and so on."""

    OWNER = "owner"
    MAINTAINER = "maintainer"  # publish, yank, deprecate, manage keys
    MEMBER = "member"  # read private packs


ROLE_RANK = {Role.MEMBER: 1, Role.MAINTAINER: 2, Role.OWNER: 3}


class Membership(models.Model):
    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["namespace", "user"], name="uniq_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.namespace} ({self.role})"


class SigningKey(models.Model):
    """An Ed25519 public key a namespace publishes with.

    Rotation: register the new key, publish with it, then revoke the old one.
    A key is trusted for new publications while ``revoked_at`` is unset (or in
    the future). Keys are never deleted: clients need them, and their
    revocation dates, to judge old versions.
    """

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="keys")
    keyid = models.CharField(max_length=64)
    public_key = models.CharField(max_length=100)  # "ed25519:<base64>"
    label = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["namespace", "keyid"], name="uniq_namespace_key"),
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.namespace}:{self.keyid[:12]}"

    def is_active(self, at: datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.created_at <= at and (self.revoked_at is None or self.revoked_at > at)


class ApiToken(models.Model):
    """A bearer token: only its sha256 is stored; the clear text is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=200, blank=True, default="")
    prefix = models.CharField(max_length=16)  # the first characters, to recognise it in a list
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def is_usable(self, at: datetime | None = None) -> bool:
        at = at or timezone.now()
        if self.revoked_at is not None and self.revoked_at <= at:
            return False
        return self.expires_at is None or self.expires_at > at
