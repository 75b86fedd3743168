"""Publish a version: from a ``.memcube`` file, or from a signed manifest over stored blobs.

Both ways make the same checks, in the same code, before anything is visible:
the publisher's role and token scope in the manifest's namespace, the
signatures by the one trust rule (the namespace's ``TrustedKeys``, revocations
included), the version's immutability (a name@version is never reusable), and
the content of every payload by the protocol's validators. Then, in ONE
database transaction that locks the version's blob rows, the version, its
payload and signature rows are created and the subscribers (ingestion, search)
are called; ingestion is enqueued only when that transaction commits.

* :func:`pack_publish` first checks who may publish without inflating the
  pack (:mod:`memstore.packs.publish_gate`), then reads the file with the
  protocol library (every limit, every digest, every payload's content),
  stores every blob (the pack file and each payload) content-addressed, then
  commits; on any failure it releases the
  blobs nothing references (:func:`memstore.packs.blob_refs.blobs_release`).
* :func:`memstore.packs.blob_publish.pack_publish_manifest` publishes a signed
  manifest over blobs uploaded before, through :func:`admit` and
  :func:`commit_version` here.

packs is the lowest of the registry's domain apps that know versions: ingest and
search :func:`subscribe` (from their ``AppConfig.ready``) to a new version,
called inside the publish transaction, and to a change of a pack's live versions.
Not here: the manifest-over-blobs publish (``blob_publish``), yank, delete and other
lifecycle writes (``services``), reads (``selectors``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from protocol import (
    Manifest,
    ReadLimits,
    Signature,
    Version,
    read_pack,
)

from ..accounts.actor import Actor
from ..accounts.models import Namespace, Role, SigningKey
from ..accounts.selectors import has_role, namespace_get, namespace_trusted_keys
from ..currencies import is_price_currency
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
from .blob_refs import blob_store, blobs_release
from .models import Pack, PackVersion, VersionPayload, VersionSignature
from .publish_gate import manifest_namespace, require_publisher_somewhere
from .scanning import ScanReport, findings_save, scan_manifest, scan_policy_check

__all__ = [
    "FREE",
    "Price",
    "Signed",
    "admit",
    "commit_version",
    "notify_versions_changed",
    "pack_publish",
    "require_publisher",
    "subscribe",
]


@dataclass(frozen=True)
class Price:
    amount_minor: int = 0
    currency: str = ""

    def __post_init__(self) -> None:
        if self.amount_minor < 0:
            raise InvalidRequestError("a price cannot be negative", code="registry.bad_price")
        if self.amount_minor > 0 and not is_price_currency(self.currency):
            raise InvalidRequestError(
                f"{self.currency!r} is not an ISO 4217 currency in use; price in one such as 'EUR'",
                code="registry.bad_currency",
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


def notify_versions_changed(pack: Pack) -> None:
    """Tell the subscribers, once the current transaction commits, that live versions changed."""
    for subscriber in _on_versions_changed:
        transaction.on_commit(functools.partial(subscriber, pack_id=pack.pk))


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Signed:
    """What a publish commits: the manifest, its exact bytes, signatures, the container."""

    manifest: Manifest
    manifest_bytes: bytes
    signatures: tuple[Signature, ...]
    file_sha256: str = ""  # empty: published as a manifest over blobs, no container file
    file_size: int = 0


def require_publisher(actor: Actor, namespace: Namespace) -> None:
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


def _verify_signatures(namespace: Namespace, signed: Signed) -> tuple[str, ...]:
    """The keys that validly sign the manifest now, by the one trust rule (raises otherwise)."""
    now = timezone.now()
    trusted = namespace_trusted_keys(namespace=namespace, registered_by=now)
    return trusted.verify_or_raise(signed.manifest_bytes, signed.signatures, at=now).valid


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


def admit(actor: Actor, signed: Signed) -> Namespace:
    """Role and scope, signatures, a new version: the checks before any blob is looked at."""
    namespace = namespace_get(name=signed.manifest.namespace)
    require_publisher(actor, namespace)
    _verify_signatures(namespace, signed)
    _check_new_version(
        Pack.objects.filter(namespace=namespace, name=signed.manifest.short_name).first(),
        signed.manifest.version,
    )
    return namespace


# --------------------------------------------------------------------------- commit


def _base_models(manifest: Manifest) -> list[str]:
    return sorted({c.model.model_id for c in manifest.cubes if c.model is not None})


def commit_version(
    *,
    actor: Actor,
    namespace: Namespace,
    signed: Signed,
    blob_shas: list[str],
    private: bool,
    price: Price,
    scan: ScanReport | None = None,
) -> PackVersion:
    manifest = signed.manifest
    with transaction.atomic():
        locked = set(
            Blob.objects.select_for_update(no_key=True)
            .filter(sha256__in=blob_shas)
            .values_list("sha256", flat=True)
        )
        if locked != set(blob_shas):  # released by a concurrent failed publish: retry
            raise ConflictError(
                "a blob vanished during publish; retry",
                code="registry.conflict",
                missing=sorted(set(blob_shas) - locked),
            )
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
                    manifest_bytes=signed.manifest_bytes,
                    manifest=manifest.to_dict(),
                    manifest_sha256=hashlib.sha256(signed.manifest_bytes).hexdigest(),
                    title=manifest.title,
                    description=manifest.description,
                    license=manifest.license,
                    price_amount_minor=price.amount_minor,
                    price_currency=price.currency_or_blank,
                    tags=list(manifest.keywords),
                    memory_types=manifest.memory_types,
                    base_models=_base_models(manifest),
                    file_sha256=signed.file_sha256,
                    file_size=signed.file_size,
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
            for sig in signed.signatures
        )
        if scan is not None:
            findings_save(version=version, report=scan)
        for subscriber in _on_published:
            subscriber(version=version)
    return version


# --------------------------------------------------------------------------- from a file


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
    limits = ReadLimits(max_pack_bytes=max_bytes, max_total_bytes=max(max_bytes * 4, 1))
    # Who may publish, before a byte is inflated (publish_gate): then the full read.
    require_publisher_somewhere(actor)
    claimed = manifest_namespace(pack_file, max_manifest_bytes=limits.max_manifest_bytes)
    if claimed is not None:
        require_publisher(actor, namespace_get(name=claimed))
    with tempfile.TemporaryDirectory(prefix="memstore-publish-") as tmp:
        pack = read_pack(pack_file, target=Path(tmp) / "pack", limits=limits)
        signed = Signed(
            manifest=pack.manifest,
            manifest_bytes=pack.manifest_bytes,
            signatures=tuple(pack.signatures),
            file_sha256=pack.file_sha256,
            file_size=pack.file_size,
        )
        namespace = admit(actor, signed)
        scan = scan_manifest(pack.manifest, lambda ref: pack.payload_path(ref).open("rb"))
        scan_policy_check(scan)  # before any blob is stored
        blobs: dict[str, tuple[Path, int]] = {pack.file_sha256: (pack_file, pack.file_size)}
        for ref in pack.manifest.payloads():
            blobs.setdefault(ref.sha256, (pack.payload_path(ref), ref.size))
        stored: list[str] = []
        try:
            for sha, (path, blob_size) in blobs.items():
                stored.append(sha)
                blob_store(sha, path, blob_size, storage)
            for attempt in range(2):
                try:
                    return commit_version(
                        actor=actor,
                        namespace=namespace,
                        signed=signed,
                        blob_shas=list(blobs),
                        private=private,
                        price=price,
                        scan=scan,
                    )
                except ConflictError as exc:
                    if exc.code != "registry.conflict" or attempt:
                        raise
                    for sha, (path, blob_size) in blobs.items():
                        blob_store(sha, path, blob_size, storage)
            raise AssertionError("unreachable")  # pragma: no cover
        except BaseException:
            blobs_release(shas=stored, storage=storage)
            raise
