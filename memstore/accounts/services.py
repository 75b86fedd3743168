"""Writes about accounts: users, namespaces, memberships, signing keys, API tokens."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from protocol import MIPError, PublicKey

from ..errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotAuthenticatedError,
    NotFoundError,
)
from .actor import PUBLISH_ANY, READ, Actor
from .models import ApiToken, Membership, Namespace, Role, SigningKey, User
from .selectors import has_role, token_digest

TOKEN_PREFIX = "mst_"  # noqa: S105 - a public prefix, not a secret
_NAMESPACE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_SCOPE_RE = re.compile(r"^(read|publish:\*|publish:[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?)$")


def _check_namespace_name(name: str) -> None:
    if not _NAMESPACE_RE.match(name):
        raise InvalidRequestError(
            f"{name!r} is not a namespace name (lower-case letters, digits, '-'; at most 40)",
            code="registry.bad_name",
        )


def _require_role(actor: Actor, namespace: Namespace, role: Role, scope: str | None = None) -> None:
    if actor.user is None:
        raise NotAuthenticatedError("sign in first")
    if not has_role(user=actor.user, namespace=namespace, at_least=role):
        raise ForbiddenError(
            f"you need the {role.value} role in namespace {namespace.name!r}",
            namespace=namespace.name,
        )
    if scope is not None and not actor.has_scope(scope):
        raise ForbiddenError(f"this token lacks the {scope!r} scope", scope=scope)


@transaction.atomic
def user_create(*, username: str, password: str | None, email: str = "") -> User:
    """A user and their personal namespace (same name), of which they are the owner."""
    _check_namespace_name(username)
    if (
        Namespace.objects.filter(name=username).exists()
        or User.objects.filter(username=username).exists()
    ):
        raise ConflictError(f"the name {username!r} is taken", code="registry.name_taken")
    user = User.objects.create_user(username=username, password=password, email=email)
    namespace = Namespace.objects.create(name=username, kind=Namespace.Kind.PERSONAL)
    Membership.objects.create(namespace=namespace, user=user, role=Role.OWNER)
    return user


@transaction.atomic
def namespace_create(*, actor: Actor, name: str, display_name: str = "") -> Namespace:
    """An organisation namespace owned by the actor."""
    if actor.user is None:
        raise NotAuthenticatedError("sign in first")
    _check_namespace_name(name)
    try:
        with transaction.atomic():
            namespace = Namespace.objects.create(
                name=name, kind=Namespace.Kind.ORGANIZATION, display_name=display_name
            )
    except IntegrityError:
        raise ConflictError(f"the namespace {name!r} exists", code="registry.name_taken") from None
    Membership.objects.create(namespace=namespace, user=actor.user, role=Role.OWNER)
    return namespace


@transaction.atomic
def membership_set(*, actor: Actor, namespace: Namespace, username: str, role: Role | None) -> None:
    """Add, change or (``role=None``) remove a member. Owners only."""
    _require_role(actor, namespace, Role.OWNER)
    user = User.objects.filter(username=username).first()
    if user is None:
        raise NotFoundError(f"no user {username!r}", code="registry.user_not_found")
    if role is None:
        Membership.objects.filter(namespace=namespace, user=user).delete()
        return
    Membership.objects.update_or_create(namespace=namespace, user=user, defaults={"role": role})


@transaction.atomic
def signing_key_register(
    *, actor: Actor, namespace: Namespace, public_key: str, label: str = ""
) -> SigningKey:
    """Register an Ed25519 public key (``ed25519:<base64>`` or PEM) for the namespace."""
    _require_role(actor, namespace, Role.MAINTAINER, scope=f"publish:{namespace.name}")
    try:
        key = PublicKey.load(public_key.encode("utf-8"))
    except MIPError as exc:
        raise InvalidRequestError(exc.message, code="registry.bad_key") from exc
    existing = SigningKey.objects.filter(namespace=namespace, keyid=key.keyid).first()
    if existing is not None:
        if existing.revoked_at is not None:
            raise ConflictError(
                "this key was revoked; a revoked key cannot be registered again",
                code="registry.key_revoked",
                keyid=key.keyid,
            )
        return existing
    return SigningKey.objects.create(
        namespace=namespace,
        keyid=key.keyid,
        public_key=key.to_text(),
        label=label,
        created_by=actor.user,
    )


@transaction.atomic
def signing_key_revoke(
    *,
    actor: Actor,
    namespace: Namespace,
    keyid: str,
    reason: str = "",
    at: datetime | None = None,
) -> SigningKey:
    """Revoke a key from ``at`` (now). It stays listed, with its revocation date."""
    _require_role(actor, namespace, Role.MAINTAINER, scope=f"publish:{namespace.name}")
    key = SigningKey.objects.select_for_update().filter(namespace=namespace, keyid=keyid).first()
    if key is None:
        raise NotFoundError(
            f"no key {keyid!r} in {namespace.name!r}", code="registry.key_not_found"
        )
    if key.revoked_at is None:
        key.revoked_at = at or timezone.now()
        key.revocation_reason = reason
        key.save(update_fields=["revoked_at", "revocation_reason"])
    return key


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    out = sorted(set(scopes))
    for scope in out:
        if not _SCOPE_RE.match(scope):
            raise InvalidRequestError(f"unknown scope {scope!r}", code="registry.bad_scope")
    return out


def api_token_create(
    *,
    user: User,
    name: str = "",
    scopes: Iterable[str] = (READ, PUBLISH_ANY),
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token; returns the row and the clear text (shown once, never stored)."""
    clean = _check_scopes(scopes)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=raw[:10],
        digest=token_digest(raw),
        scopes=clean,
        expires_at=expires_at,
    )
    return token, raw


def api_token_revoke(*, actor: Actor, token_id: int) -> None:
    if actor.user is None:
        raise NotAuthenticatedError("sign in first")
    updated = ApiToken.objects.filter(id=token_id, user=actor.user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not updated and not ApiToken.objects.filter(id=token_id, user=actor.user).exists():
        raise NotFoundError("no such token", code="registry.token_not_found")


def api_token_touch(*, token: ApiToken) -> None:
    """Record use (at most once a minute, to keep writes rare)."""
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(id=token.id).update(last_used_at=now)
