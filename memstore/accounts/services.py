"""Writes about accounts: users, namespaces, memberships, signing keys, API tokens.

Token rules (issue 13): a token creates tokens only if it holds ``tokens:create``, and
only with a subset of its own scopes, expiring no later than itself; a session (web or
password login) may create any token. Members, signing keys and organisations need an
``admin:NS`` (or ``admin:*``) scope when the actor is a token; ``publish:`` is not enough.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from protocol import MIPError, PublicKey

from ..errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotAuthenticatedError,
    NotFoundError,
)
from .actor import ADMIN_ANY, PUBLISH_ANY, READ, TOKENS_CREATE, Actor, admin_scope
from .models import ApiToken, Membership, Namespace, Role, SigningKey, User
from .selectors import has_role, token_digest

TOKEN_PREFIX = "mst_"  # noqa: S105 - a public prefix, not a secret
_NAMESPACE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?\Z")
_SCOPE_RE = re.compile(
    r"^(read|tokens:create|(?:publish|admin):(?:\*|[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?))$"
)

#: A token lives 90 days unless asked otherwise, at most a year. Why: a leaked token
#: should die on its own; GitHub's fine-grained tokens default to 30 days and allow up
#: to a year, and 90 days is one CI rotation a quarter without a "never" choice. PyPI
#: tokens never expire, which is the leak this avoids.
DEFAULT_TOKEN_LIFETIME = timedelta(days=90)

#: Sent inside a transfer's transaction (``namespace``, ``from_owner``, ``to_owner``):
#: the transparency log appends its entry there (a failed append undoes the transfer) and
#: the TUF index re-signs the namespace's delegation once it commits. A signal because
#: both sit above accounts and cannot be imported from here.
namespace_transferred = Signal()
MAX_TOKEN_LIFETIME = timedelta(days=365)


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
    if not actor.has_scope(ADMIN_ANY):
        raise ForbiddenError(f"this token lacks the {ADMIN_ANY!r} scope", scope=ADMIN_ANY)
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
    _require_role(actor, namespace, Role.OWNER, scope=admin_scope(namespace.name))
    user = User.objects.filter(username=username).first()
    if user is None:
        raise NotFoundError(f"no user {username!r}", code="registry.user_not_found")
    if role is None:
        Membership.objects.filter(namespace=namespace, user=user).delete()
        return
    Membership.objects.update_or_create(namespace=namespace, user=user, defaults={"role": role})


def namespace_transfer(*, namespace: Namespace, to_owner: str, actor: Actor) -> Namespace:
    """Make ``to_owner`` the one owner of an organisation namespace; the owners before leave it.

    Owners only (a token needs ``admin:NS``). Other members and every signing key stay:
    packs signed before stay valid, and a client that pinned the namespace's keys accepts
    a key the new owner registers only with an endorsement by one of those keys (SPEC
    section 15) -- a transfer is logged and shown to followers, never a way to re-key a
    namespace for its clients. A personal namespace is its user's name and cannot move.
    """
    _require_role(actor, namespace, Role.OWNER, scope=admin_scope(namespace.name))
    if namespace.kind == Namespace.Kind.PERSONAL:
        raise ConflictError(
            f"{namespace.name!r} is a personal namespace; only organisations can be transferred",
            code="registry.personal_namespace",
        )
    user = User.objects.filter(username=to_owner).first()
    if user is None:
        raise NotFoundError(f"no user {to_owner!r}", code="registry.user_not_found")
    with transaction.atomic():
        Namespace.objects.select_for_update().filter(pk=namespace.pk).get()  # one at a time
        owners = Membership.objects.filter(namespace=namespace, role=Role.OWNER)
        previous = sorted(owners.values_list("user__username", flat=True))
        if previous == [user.username]:
            raise ConflictError(
                f"{user.username!r} owns {namespace.name!r} already", code="registry.already_owner"
            )
        owners.exclude(user=user).delete()
        Membership.objects.update_or_create(
            namespace=namespace, user=user, defaults={"role": Role.OWNER}
        )
        namespace_transferred.send(
            sender=Namespace, namespace=namespace, from_owner=",".join(previous),
            to_owner=user.username,
        )  # fmt: skip
    return namespace


@transaction.atomic
def signing_key_register(
    *, actor: Actor, namespace: Namespace, public_key: str, label: str = ""
) -> SigningKey:
    """Register an Ed25519 public key (``ed25519:<base64>`` or PEM) for the namespace."""
    _require_role(actor, namespace, Role.MAINTAINER, scope=admin_scope(namespace.name))
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
    _require_role(actor, namespace, Role.MAINTAINER, scope=admin_scope(namespace.name))
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


def _token_expiry(actor: Actor | None, expires_at: datetime | None) -> datetime:
    now = timezone.now()
    if expires_at is None:
        expires_at = now + DEFAULT_TOKEN_LIFETIME
    if expires_at > now + MAX_TOKEN_LIFETIME:
        raise InvalidRequestError(
            f"a token lives at most {MAX_TOKEN_LIFETIME.days} days",
            code="registry.bad_expiry",
            max_days=MAX_TOKEN_LIFETIME.days,
        )
    parent = actor.token_expires_at if actor is not None else None
    if parent is not None and expires_at > parent:
        expires_at = parent  # a token never outlives the token that made it
    return expires_at


def _check_subset(actor: Actor, scopes: list[str]) -> None:
    """A token creating a token: it needs ``tokens:create`` and every scope it hands on."""
    if not actor.has_scope(TOKENS_CREATE):
        raise ForbiddenError(
            f"this token lacks the {TOKENS_CREATE!r} scope; sign in or use a token that has it",
            scope=TOKENS_CREATE,
        )
    wider = [scope for scope in scopes if not actor.has_scope(scope)]
    if wider:
        raise ForbiddenError(
            "a token can only create tokens with a subset of its own scopes; "
            f"not held: {', '.join(wider)}",
            code="registry.scope_escalation",
            scopes=wider,
        )


def api_token_create(
    *,
    user: User,
    name: str = "",
    scopes: Iterable[str] | None = None,
    expires_at: datetime | None = None,
    actor: Actor | None = None,
) -> tuple[ApiToken, str]:
    """A new token; returns the row and the clear text (shown once, never stored).

    ``actor`` is who asks: None for an internal caller (management commands), a session
    actor for the web UI or a password login, a token actor for a token creating a token
    (then :func:`_check_subset` applies). ``scopes`` defaults to ``read`` + ``publish:*``
    for a session, to the asking token's own scopes less ``tokens:create`` for a token.
    ``expires_at`` defaults to :data:`DEFAULT_TOKEN_LIFETIME` from now, at most
    :data:`MAX_TOKEN_LIFETIME`, and never later than the asking token's own expiry.
    """
    if actor is not None and (actor.user is None or actor.user.pk != user.pk):
        raise ForbiddenError("a token is created for the user who asks")
    by_token = actor is not None and actor.scopes is not None
    if scopes is None:
        if by_token and actor is not None and actor.scopes is not None:
            scopes = sorted(actor.scopes - {TOKENS_CREATE})
        else:
            scopes = (READ, PUBLISH_ANY)
    clean = _check_scopes(scopes)
    if by_token and actor is not None:
        _check_subset(actor, clean)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=raw[:10],
        digest=token_digest(raw),
        scopes=clean,
        expires_at=_token_expiry(actor, expires_at),
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
