"""Writes about packs: publish (atomic, signature-checked), yank, deprecate, delete, entitle.

Publishing is the heart of the registry. ``pack_publish`` reads the pack with
the protocol library (every limit, every digest, the content of every
payload), verifies its signatures against the namespace's registered keys that
are not revoked, then:

1. stores every blob (the pack file and each payload) content-addressed, each
   recorded by a ``storage.Blob`` row committed with the upload;
2. in ONE database transaction, locks those blob rows and creates the
   version, its payload and signature rows and its ingestion job; the
   ingestion task is enqueued only when that transaction commits;
3. on any failure after step 1 started, removes the blobs that nothing
   references (``blobs_release``), under the same row locks, so a blob shared
   with a concurrent publish is never removed from under it.

Either the version is visible with all its blobs stored, or nothing of it
exists. A name@version is never reusable: version rows are never deleted.

packs is the lowest of the registry's domain apps that know versions: ingest
and search build on its models, so it imports neither. They :func:`subscribe`
(from their ``AppConfig.ready``) to a new version, called inside the publish
transaction, and to a change of a pack's live versions (yank, unyank,
delete), called after it commits. Not here: reads (``selectors``), the
periodic blob collection task (``tasks``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import re
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from protocol import (
    Manifest,
    ReadLimits,
    SignatureError,
    Version,
    read_pack,
)
from protocol import (
    Pack as ProtocolPack,
)

from ..accounts.actor import Actor
from ..accounts.models import Namespace, Role, SigningKey, User
from ..accounts.selectors import has_role, namespace_get, namespace_trusted_keys
from ..errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotAuthenticatedError,
    TooLargeError,
)
from ..storage.backends import BlobStorage
from ..storage.models import Blob
from ..storage.services import get_blob_storage
from .models import Entitlement, Pack, PackVersion, VersionPayload, VersionSignature
from .selectors import active_entitlements

log = logging.getLogger(__name__)

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Price:
    amount_minor: int = 0
    currency: str = ""

    def __post_init__(self) -> None:
        if self.amount_minor < 0:
            raise InvalidRequestError("a price cannot be negative", code="registry.bad_price")
        if self.amount_minor > 0 and not _CURRENCY_RE.match(self.currency):
            raise InvalidRequestError(
                "a paid pack needs an ISO 4217 currency such as 'EUR'", code="registry.bad_price"
            )

    @property
    def currency_or_blank(self) -> str:
        return self.currency if self.amount_minor > 0 else ""


FREE = Price()


# --------------------------------------------------------------------------- subscribers


class VersionSubscriber(Protocol):
    def __call__(self, *, version: PackVersion) -> object: ...


class PackSubscriber(Protocol):
    def __call__(self, *, pack_id: int) -> object: ...


_on_published: list[VersionSubscriber] = []
_on_versions_changed: list[PackSubscriber] = []


def subscribe(
    *, published: VersionSubscriber | None = None, versions_changed: PackSubscriber | None = None
) -> None:
    """Have ``published(version=)`` called in each publish transaction, and
    ``versions_changed(pack_id=)`` after a yank, unyank or delete commits (once each)."""
    if published is not None and published not in _on_published:
        _on_published.append(published)
    if versions_changed is not None and versions_changed not in _on_versions_changed:
        _on_versions_changed.append(versions_changed)


def _versions_changed(pack: Pack) -> None:
    for subscriber in _on_versions_changed:
        transaction.on_commit(functools.partial(subscriber, pack_id=pack.pk))


# --------------------------------------------------------------------------- publish


def _require_publisher(actor: Actor, namespace: Namespace) -> None:
    if actor.user is None:
        raise NotAuthenticatedError("publishing needs an account and a token")
    if not has_role(user=actor.user, namespace=namespace, at_least=Role.MAINTAINER):
        raise ForbiddenError(
            f"you may not publish to namespace {namespace.name!r}", namespace=namespace.name
        )
    if not actor.has_scope(f"publish:{namespace.name}"):
        raise ForbiddenError(
            f"this token lacks the 'publish:{namespace.name}' scope",
            scope=f"publish:{namespace.name}",
        )


def _verify_signatures(namespace: Namespace, pack: ProtocolPack) -> tuple[str, ...]:
    """The keys that validly sign ``pack`` now, by the one trust rule (raises otherwise)."""
    now = timezone.now()
    trusted = namespace_trusted_keys(namespace=namespace, registered_by=now)
    try:
        return trusted.verify_or_raise(pack.manifest_bytes, pack.signatures, at=now).valid
    except SignatureError as exc:
        if exc.code != "signature.revoked_key":
            raise
        raise SignatureError(  # the registry's wording: the namespace revoked it
            "the pack is signed only by a key the namespace has revoked",
            code=exc.code,
            **exc.detail,
        ) from exc


def _base_models(manifest: Manifest) -> list[str]:
    found = {c.model.model_id for c in manifest.cubes if c.model is not None}
    return sorted(found)


def _check_new_version(pack: Pack | None, version: str) -> None:
    if pack is None:
        return
    wanted = Version.parse(version)
    for existing in PackVersion.objects.filter(pack=pack).values_list("version", flat=True):
        if Version.parse(existing) == wanted:
            raise ConflictError(
                f"{pack.full_name}@{existing} was already published; versions are immutable "
                "and never reusable, even after deletion: publish a new version",
                code="registry.version_exists",
                version=existing,
            )


def _blob_store(sha256: str, path: Path, size: int, storage: BlobStorage) -> None:
    """Put one blob and commit its row; the row lock keeps a concurrent release away."""
    with transaction.atomic():
        Blob.objects.get_or_create(sha256=sha256, defaults={"size": size})
        Blob.objects.select_for_update().get(sha256=sha256)
        if not storage.exists(sha256):
            storage.put_file(sha256, path)


def _blob_referenced(sha256: str) -> bool:
    return (
        PackVersion.objects.filter(file_sha256=sha256).exists()
        or VersionPayload.objects.filter(sha256=sha256).exists()
    )


def blobs_release(*, shas: list[str], storage: BlobStorage | None = None) -> list[str]:
    """Remove the blobs among ``shas`` that no version references; return those removed."""
    storage = storage or get_blob_storage()
    removed: list[str] = []
    for sha in dict.fromkeys(shas):
        try:
            with transaction.atomic():
                row = Blob.objects.select_for_update().filter(sha256=sha).first()
                if _blob_referenced(sha):
                    continue
                storage.delete(sha)
                if row is not None:
                    row.delete()
                removed.append(sha)
        except Exception:  # the DB or storage is down: the garbage collector retries later
            log.exception("could not release blob %s; garbage collection will", sha)
    return removed


def blobs_collect_garbage(
    *, older_than: timedelta = timedelta(hours=1), storage: BlobStorage | None = None
) -> list[str]:
    """Remove unreferenced blobs left by crashed publishes (periodic task)."""
    cutoff = timezone.now() - older_than
    candidates = list(Blob.objects.filter(created_at__lt=cutoff).values_list("sha256", flat=True))
    return blobs_release(shas=candidates, storage=storage)


def _commit_version(
    *,
    actor: Actor,
    namespace: Namespace,
    pack: ProtocolPack,
    signed_by: tuple[str, ...],
    blob_shas: list[str],
    private: bool,
    price: Price,
) -> PackVersion:
    manifest = pack.manifest
    with transaction.atomic():
        locked = set(
            Blob.objects.select_for_update(no_key=True)
            .filter(sha256__in=blob_shas)
            .values_list("sha256", flat=True)
        )
        if locked != set(blob_shas):  # released by a concurrent failed publish: retry
            raise ConflictError("a blob vanished during publish; retry", code="registry.conflict")
        pack_row, _ = Pack.objects.get_or_create(
            namespace=namespace, name=manifest.short_name, defaults={"private": private}
        )
        pack_row = Pack.objects.select_for_update().get(pk=pack_row.pk)
        _check_new_version(pack_row, manifest.version)
        try:
            with transaction.atomic():
                version = PackVersion.objects.create(
                    pack=pack_row,
                    version=manifest.version,
                    manifest_bytes=pack.manifest_bytes,
                    manifest=manifest.to_dict(),
                    manifest_sha256=_sha256(pack.manifest_bytes),
                    title=manifest.title,
                    description=manifest.description,
                    license=manifest.license,
                    price_amount_minor=price.amount_minor,
                    price_currency=price.currency_or_blank,
                    tags=list(manifest.keywords),
                    memory_types=manifest.memory_types,
                    base_models=_base_models(manifest),
                    file_sha256=pack.file_sha256,
                    file_size=pack.file_size,
                    published_by=actor.user,
                )
        except IntegrityError:
            raise ConflictError(
                f"{manifest.ref} was already published", code="registry.version_exists"
            ) from None
        VersionPayload.objects.bulk_create(
            VersionPayload(
                version=version,
                cube_id=cube.id,
                memory_type=cube.memory_type.value,
                path=ref.path,
                media_type=ref.media_type,
                size=ref.size,
                sha256=ref.sha256,
            )
            for cube in manifest.cubes
            for ref in cube.payloads
        )
        keys = {k.keyid: k for k in SigningKey.objects.filter(namespace=namespace)}
        VersionSignature.objects.bulk_create(
            VersionSignature(
                version=version,
                keyid=sig.keyid,
                algorithm=sig.algorithm,
                value_b64=base64.b64encode(sig.value).decode("ascii"),
                key=keys.get(sig.keyid),
            )
            for sig in pack.signatures
        )
        for subscriber in _on_published:
            subscriber(version=version)
    return version


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack_publish(
    *,
    actor: Actor,
    pack_file: Path,
    private: bool = False,
    price: Price = FREE,
    storage: BlobStorage | None = None,
) -> PackVersion:
    """Publish a ``.memcube`` file for ``actor``; atomic (see the module docstring)."""
    storage = storage or get_blob_storage()
    pack_file = Path(pack_file)
    max_bytes: int = settings.MEMSTORE_MAX_PACK_BYTES
    size = pack_file.stat().st_size
    if size > max_bytes:
        raise TooLargeError(f"the pack is {size} bytes; the limit is {max_bytes}", limit=max_bytes)
    if actor.user is None:
        raise NotAuthenticatedError("publishing needs an account and a token")
    with tempfile.TemporaryDirectory(prefix="memstore-publish-") as tmp:
        pack = read_pack(
            pack_file,
            target=Path(tmp) / "pack",
            limits=ReadLimits(max_pack_bytes=max_bytes, max_total_bytes=max(max_bytes * 4, 1)),
        )
        namespace = namespace_get(name=pack.manifest.namespace)
        _require_publisher(actor, namespace)
        signed_by = _verify_signatures(namespace, pack)
        _check_new_version(
            Pack.objects.filter(namespace=namespace, name=pack.manifest.short_name).first(),
            pack.manifest.version,
        )
        blobs: dict[str, tuple[Path, int]] = {pack.file_sha256: (pack_file, pack.file_size)}
        for ref in pack.manifest.payloads():
            blobs.setdefault(ref.sha256, (pack.payload_path(ref), ref.size))
        stored: list[str] = []
        try:
            for sha, (path, blob_size) in blobs.items():
                stored.append(sha)
                _blob_store(sha, path, blob_size, storage)
            for attempt in range(2):
                try:
                    return _commit_version(
                        actor=actor,
                        namespace=namespace,
                        pack=pack,
                        signed_by=signed_by,
                        blob_shas=list(blobs),
                        private=private,
                        price=price,
                    )
                except ConflictError as exc:
                    if exc.code != "registry.conflict" or attempt:
                        raise
                    for sha, (path, blob_size) in blobs.items():
                        _blob_store(sha, path, blob_size, storage)
            raise AssertionError("unreachable")  # pragma: no cover
        except BaseException:
            blobs_release(shas=stored, storage=storage)
            raise


# --------------------------------------------------------------------------- lifecycle


def _require_maintainer(actor: Actor, pack: Pack) -> None:
    _require_publisher(actor, pack.namespace)


def version_yank(*, actor: Actor, version: PackVersion, reason: str) -> PackVersion:
    _require_maintainer(actor, version.pack)
    PackVersion.objects.filter(pk=version.pk).update(
        yanked=True, yanked_reason=reason[:500], yanked_at=timezone.now()
    )
    version.refresh_from_db()
    _versions_changed(version.pack)
    return version


def version_unyank(*, actor: Actor, version: PackVersion) -> PackVersion:
    _require_maintainer(actor, version.pack)
    PackVersion.objects.filter(pk=version.pk).update(yanked=False, yanked_reason="", yanked_at=None)
    version.refresh_from_db()
    _versions_changed(version.pack)
    return version


def version_delete(*, actor: Actor, version: PackVersion) -> None:
    """Soft delete: the bytes stop being served; the name@version stays reserved."""
    _require_maintainer(actor, version.pack)
    PackVersion.objects.filter(pk=version.pk, deleted_at__isnull=True).update(
        deleted_at=timezone.now()
    )
    _versions_changed(version.pack)


def pack_deprecate(*, actor: Actor, pack: Pack, deprecated: bool, message: str = "") -> Pack:
    _require_maintainer(actor, pack)
    pack.deprecated = deprecated
    pack.deprecation_message = message[:500] if deprecated else ""
    pack.save(update_fields=["deprecated", "deprecation_message"])
    return pack


def pack_set_private(*, actor: Actor, pack: Pack, private: bool) -> Pack:
    _require_maintainer(actor, pack)
    pack.private = private
    pack.save(update_fields=["private"])
    return pack


def version_record_download(*, version: PackVersion) -> None:
    PackVersion.objects.filter(pk=version.pk).update(download_count=F("download_count") + 1)
    Pack.objects.filter(pk=version.pack_id).update(download_count=F("download_count") + 1)


def entitlement_grant(
    *, user: User, pack: Pack, source: str = "grant", reference: str | None = None
) -> Entitlement:
    """Give ``user`` the right to download ``pack`` (idempotent by user+pack and reference)."""
    with transaction.atomic():
        if reference is not None:
            existing = Entitlement.objects.filter(reference=reference).first()
            if existing is not None:
                return existing
        entitlement, created = Entitlement.objects.get_or_create(
            user=user, pack=pack, defaults={"source": source, "reference": reference}
        )
        if not created and entitlement.revoked_at is not None:
            entitlement.revoked_at = None
            entitlement.source = source
            entitlement.save(update_fields=["revoked_at", "source"])
        return entitlement


def entitlement_revoke(*, user: User, pack: Pack) -> None:
    """End ``user``'s entitlement to ``pack`` now, if it is in force (one dated later too)."""
    active_entitlements(user=user, pack=pack).update(revoked_at=timezone.now())
