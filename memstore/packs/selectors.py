"""Reads about packs: visibility, version resolution, download authorization.

One download rule (:func:`versions_downloadable`) decides both who may resolve a
version and who may read a blob by digest: a blob is readable by whoever may
download some version that references it, and 'not found' to anyone else.

The one definition of an active entitlement lives here (``active_entitlements``);
commerce (ownership, the library) and search (full text of paid packs) use it.
Not here: writes (``services``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from django.db.models import Q, QuerySet
from django.utils import timezone

from protocol import MIPError, Version, VersionRange

from ..accounts.actor import Actor
from ..accounts.models import Membership, Namespace, Role, SigningKey
from ..accounts.selectors import has_role, is_member
from ..errors import ForbiddenError, GoneError, NotAuthenticatedError, NotFoundError
from .models import Entitlement, Pack, PackVersion, VersionPayload
from .resolve_read import resolve_rows


def _not_found(namespace: str, name: str) -> NotFoundError:
    return NotFoundError(f"no pack {namespace}/{name}", pack=f"{namespace}/{name}")


def packs_visible(*, actor: Actor) -> QuerySet[Pack]:
    """Packs the actor may see: public ones, and private ones of their namespaces."""
    qs = Pack.objects.select_related("namespace")
    if actor.user is None or not actor.can_read_with_credentials():
        return qs.filter(private=False)
    mine = Membership.objects.filter(user=actor.user).values("namespace_id")
    return qs.filter(Q(private=False) | Q(namespace_id__in=mine))


def pack_get(*, actor: Actor, namespace: str, name: str) -> Pack:
    """The pack, if the actor may see it; a private pack is 'not found' to outsiders."""
    pack = (
        Pack.objects.select_related("namespace")
        .filter(namespace__name=namespace, name=name)
        .first()
    )
    return _seen(actor, pack, namespace, name)


def _seen(actor: Actor, pack: Pack | None, namespace: str, name: str) -> Pack:
    """``pack`` if ``actor`` may see it; else (absent, or private to outsiders) 'not found'.

    The one visibility rule of a pack by name: :func:`pack_get` and :func:`version_resolve`
    (which reads the pack its own way) both ask it."""
    if pack is None or (pack.private and not is_member(actor=actor, namespace=pack.namespace)):
        raise _not_found(namespace, name)
    return pack


def versions_of(*, pack: Pack, include_deleted: bool = False) -> list[PackVersion]:
    """Versions in SemVer order, highest first."""
    qs = PackVersion.objects.filter(pack=pack)
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    return sorted(qs, key=lambda v: Version.parse(v.version), reverse=True)


def version_get(*, pack: Pack, version: str) -> PackVersion:
    found = PackVersion.objects.filter(pack=pack, version=version).first()
    if found is None:
        raise NotFoundError(f"no version {version} of {pack.full_name}", code="registry.not_found")
    if found.deleted_at is not None:
        raise GoneError(f"{pack.full_name}@{version} was deleted", version=version)
    return found


def version_select(*, pack: Pack, spec: str) -> PackVersion:
    """The version ``spec`` resolves to: highest match, not deleted, not yanked (unless exact)."""
    return _version_choose(pack, spec, PackVersion.objects.filter(pack=pack))


class _Choosable(Protocol):
    """What choosing a version reads: a :class:`PackVersion`, or a row of :mod:`.resolve_read`."""

    version: str
    deleted_at: datetime | None
    yanked: bool


_C = TypeVar("_C", bound=_Choosable)


def _version_choose(pack: Pack, spec: str, candidates: Iterable[_C]) -> _C:
    try:
        wanted = VersionRange.parse(spec or "*")
    except MIPError:
        raise
    # Each version string parsed once (it was three times per candidate per request).
    ordered = sorted(
        ((Version.parse(v.version), v) for v in candidates), key=lambda p: p[0], reverse=True
    )
    if wanted.is_exact:
        exact = wanted.comparators[0].version
        for parsed, candidate in ordered:
            if parsed == exact:
                if candidate.deleted_at is not None:
                    raise GoneError(
                        f"{pack.full_name}@{candidate.version} was deleted",
                        version=candidate.version,
                    )
                return candidate
    live = [(p, v) for p, v in ordered if v.deleted_at is None and not v.yanked]
    by_version = dict(live)
    best = wanted.best(by_version)
    if best is None:
        raise NotFoundError(
            f"no version of {pack.full_name} matches {spec or '*'!r}",
            code="registry.no_matching_version",
            spec=spec or "*",
            available=[v.version for _, v in live],
        )
    return by_version[best]


def entitlement_active_q(prefix: str = "") -> Q:
    """The one rule for an active entitlement, as a filter: not revoked, or only from later.

    ``prefix`` is the path to the entitlement (``"entitlements__"`` from a pack).
    """
    return Q(**{f"{prefix}revoked_at__isnull": True}) | Q(
        **{f"{prefix}revoked_at__gt": timezone.now()}
    )


def active_entitlements(*, user: Any, pack: Pack | None = None) -> QuerySet[Entitlement]:
    """``user``'s entitlements in force now (to ``pack``, when given); see above."""
    found = Entitlement.objects.filter(entitlement_active_q(), user=user)
    return found if pack is None else found.filter(pack=pack)


def has_entitlement(*, actor: Actor, pack: Pack) -> bool:
    if actor.user is None:
        return False
    return active_entitlements(user=actor.user, pack=pack).exists()


def versions_downloadable(*, actor: Actor) -> QuerySet[PackVersion]:
    """The one download rule, as a filter: the versions whose bytes ``actor`` may fetch.

    Not deleted; of a public pack or of a namespace the actor is a member of; free, or
    the actor is a member or holds an active entitlement to the pack. Resolve
    (:func:`check_download`) and blob reads by digest (:func:`blob_readable`) both ask it.
    """
    live = PackVersion.objects.filter(deleted_at__isnull=True)
    if actor.user is None or not actor.can_read_with_credentials():
        return live.filter(pack__private=False, price_amount_minor=0)
    mine = Membership.objects.filter(user=actor.user).values("namespace_id")
    entitled = active_entitlements(user=actor.user).values("pack_id")
    member = Q(pack__namespace_id__in=mine)
    return live.filter(Q(pack__private=False) | member).filter(
        Q(price_amount_minor=0) | member | Q(pack_id__in=entitled)
    )


def open_to_all(version: PackVersion) -> bool:
    """Whether every actor, anonymous included, may download ``version`` by the rule above.

    The rule's narrowest branch (an actor without credentials: not deleted, public, free)
    read off the version and its pack in hand, so that resolve, which has just read both,
    need not ask the database again; every other case asks :func:`check_download`.
    ``test_resolve_fast`` checks it against :func:`versions_downloadable` for each case.
    """
    return version.deleted_at is None and not version.pack.private and not version.is_paid


def check_download(*, actor: Actor, version: PackVersion) -> None:
    """Raise unless the actor may download this version's bytes (:func:`versions_downloadable`).

    The rule decides; the branches below only choose the answer that explains a refusal.
    """
    if versions_downloadable(actor=actor).filter(pk=version.pk).exists():
        return
    pack = version.pack
    if pack.private and not is_member(actor=actor, namespace=pack.namespace):
        raise _not_found(pack.namespace.name, pack.name)
    if version.is_paid and actor.user is None:
        raise NotAuthenticatedError(
            f"{pack.full_name} is a paid pack: sign in with an account that bought it",
            pack=pack.full_name,
        )
    if version.is_paid:
        raise ForbiddenError(
            f"{pack.full_name} is a paid pack and you have no entitlement to it",
            code="registry.entitlement_required",
            pack=pack.full_name,
            price={"amount_minor": version.price_amount_minor, "currency": version.price_currency},
        )
    raise _not_found(pack.namespace.name, pack.name)  # e.g. deleted


def blobs_readable(*, actor: Actor, digests: Iterable[str]) -> set[str]:
    """The digests among ``digests`` that some version ``actor`` may download references."""
    wanted = set(digests)
    if not wanted:
        return set()
    versions = versions_downloadable(actor=actor)
    found = set(
        VersionPayload.objects.filter(version__in=versions, sha256__in=wanted).values_list(
            "sha256", flat=True
        )
    )
    found |= set(
        versions.filter(file_sha256__in=wanted - found).values_list("file_sha256", flat=True)
    )
    return found


def blob_readable(*, actor: Actor, sha256: str) -> bool:
    """Whether ``actor`` may read the blob ``sha256`` (else it is 'not found' to them)."""
    return sha256 in blobs_readable(actor=actor, digests=[sha256])


def can_maintain(*, actor: Actor, namespace: Namespace) -> bool:
    return (
        actor.user is not None
        and actor.has_scope(f"publish:{namespace.name}")
        and has_role(user=actor.user, namespace=namespace, at_least=Role.MAINTAINER)
    )


@dataclass(frozen=True)
class Resolution:
    pack: Pack
    version: PackVersion
    spec: str
    keys: list[SigningKey] | None = None  # the namespace's keys, read with the pack (or not)


#: Choices remembered by (spec, every candidate's version, deleted and yanked state), for
#: packs of up to _CHOICES_MAX_VERSIONS versions: a few MB at most.
_CHOICES_SIZE = 1024
_CHOICES_MAX_VERSIONS = 64
_choices: dict[tuple[str, tuple[tuple[str, bool, bool], ...]], int] = {}


def _choice(pack: Pack, spec: str, candidates: list[_C]) -> int:
    """Where in ``candidates`` the version :func:`_version_choose` picks is.

    The choice is a function of the spec and of each candidate's version, deletion and yank
    alone, so it is remembered under exactly those: the same pack state asked the same way
    skips the SemVer work (a fifth of a resolve's Python); a yank, a deletion or a new
    version is another key. Refusals are not remembered (they raise each time).
    """
    if len(candidates) > _CHOICES_MAX_VERSIONS:
        chosen = _version_choose(pack, spec, candidates)
        return next(i for i, c in enumerate(candidates) if c is chosen)
    key = (spec, tuple((c.version, c.deleted_at is None, c.yanked) for c in candidates))
    found = _choices.get(key)
    if found is None:
        chosen = _version_choose(pack, spec, candidates)
        found = next(i for i, c in enumerate(candidates) if c is chosen)
        if len(_choices) >= _CHOICES_SIZE:
            _choices.clear()  # rare; the next requests choose again
        _choices[key] = found
    return found


def version_resolve(*, actor: Actor, namespace: str, name: str, spec: str) -> Resolution:
    """Resolve NS/NAME@SPEC for a download; raises when not visible or not allowed.

    The same rules as :func:`pack_get`, :func:`version_select` and :func:`check_download`,
    on rows read in one round trip (:mod:`.resolve_read`, why there). Every version is a
    candidate, but only the chosen one's manifest is ever read (and rendered once per
    process, :mod:`.resolve_body`).
    """
    found = resolve_rows(namespace=namespace, name=name)
    if found is None:
        raise _not_found(namespace, name)
    pack = _seen(actor, found.pack, namespace, name)
    version = found.candidates[_choice(pack, spec, found.candidates)].model()
    if not open_to_all(version):
        check_download(actor=actor, version=version)
    return Resolution(pack=pack, version=version, spec=spec or "*", keys=found.keys)
