"""Reads about accounts: namespaces, roles, keys, token lookup.

A namespace's signing keys reach the trust rule (``protocol.TrustedKeys``)
through :func:`namespace_trusted_keys` only; which signature counts, at which
time, is the protocol's to say. Not here: writes (``services``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from protocol import PublicKey, TrustedKey, TrustedKeys

from ..errors import NotFoundError
from .actor import Actor
from .models import ROLE_RANK, ApiToken, Membership, Namespace, Role, SigningKey, User


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def api_token_by_raw(raw: str) -> ApiToken | None:
    """The usable token whose clear text is ``raw`` (compared by sha256), or None."""
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(raw)).first()
    if token is None or not token.is_usable() or not token.user.is_active:
        return None
    return token


def namespace_get(*, name: str) -> Namespace:
    try:
        return Namespace.objects.get(name=name)
    except Namespace.DoesNotExist:
        raise NotFoundError(
            f"namespace {name!r} does not exist",
            code="registry.namespace_not_found",
            namespace=name,
        ) from None


def role_of(*, user: User | None, namespace: Namespace) -> Role | None:
    if user is None:
        return None
    membership = Membership.objects.filter(namespace=namespace, user=user).first()
    return Role(membership.role) if membership else None


def has_role(*, user: User | None, namespace: Namespace, at_least: Role) -> bool:
    role = role_of(user=user, namespace=namespace)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[at_least]


def is_member(*, actor: Actor, namespace: Namespace) -> bool:
    return actor.can_read_with_credentials() and has_role(
        user=actor.user, namespace=namespace, at_least=Role.MEMBER
    )


def namespaces_of(*, user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user).select_related("namespace").order_by("namespace__name")
    )


def namespace_keys(*, namespace: Namespace) -> list[SigningKey]:
    """Every key the namespace ever registered, revoked ones included, oldest first."""
    return list(SigningKey.objects.filter(namespace=namespace).order_by("created_at", "id"))


def namespace_trusted_keys(
    *, namespace: Namespace, registered_by: datetime | None = None
) -> TrustedKeys:
    """The namespace's keys as the trust rule knows them: each with its revocation date.

    Every key the namespace registered (by ``registered_by``, when given; keys
    are never deleted). Judge signatures with ``.verify(..., at=...)``: at *now*
    for a new publication, at its publication time for an old version.
    """
    return TrustedKeys(
        TrustedKey(PublicKey.from_text(k.public_key), revoked_at=k.revoked_at, label=k.label)
        for k in namespace_keys(namespace=namespace)
        if registered_by is None or k.created_at <= registered_by
    )


def trusted_public_keys(
    *, namespace: Namespace, at: datetime | None = None
) -> dict[str, PublicKey]:
    """The keys a new publication in ``namespace`` may be signed with, at ``at`` (now)."""
    at = at or timezone.now()
    in_force = namespace_trusted_keys(namespace=namespace, registered_by=at).in_force(at)
    return {k.keyid: k for k in in_force}
