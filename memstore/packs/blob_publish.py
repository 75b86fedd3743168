"""Publish a signed manifest over blobs the publisher uploaded before (``publish-manifest``).

Only the blobs the registry lacks travel (``POST /api/v1/blobs/missing``, then one
resumable upload per blob, :mod:`memstore.packs.blob_uploads`); this publishes the
manifest once every blob is there, with the same checks as a ``.memcube`` upload
and in the same code (:func:`memstore.packs.publishing.admit`, ``commit_version``):
role and scope, signatures by the namespace's ``TrustedKeys``, a new version, then
every blob must be present *for this publisher* (stored, and uploaded by them or
readable by them through a version), so a manifest that names someone else's
private blob is refused exactly like one naming a blob nobody uploaded
(``blob.missing``, ``detail.missing``). The protocol's payload validators read the
stored blobs. The commit locks the blob rows, so garbage collection cannot remove
one from under it. Such a version has no container file: its ``file_sha256`` is
empty and resolve answers ``pack: null`` for it (clients fetch the ``blobs``).

Not here: the publish of a ``.memcube`` file (:mod:`memstore.packs.publishing`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from django.conf import settings

from protocol import (
    Manifest,
    ManifestError,
    PayloadError,
    PayloadRef,
    Signature,
    canonical_bytes,
    manifest_blobs,
    parse_json,
    validate_payload,
)

from ..accounts.actor import Actor
from ..accounts.models import Namespace
from ..errors import ConflictError, InvalidRequestError, NotAuthenticatedError, TooLargeError
from ..storage.backends import BlobStorage
from ..storage.models import Blob
from ..storage.services import get_blob_storage
from .blob_uploads import blobs_present
from .models import PackVersion
from .publishing import FREE, Price, Signed, admit, commit_version
from .scanning import ScanReport, scan_manifest, scan_policy_check

__all__ = ["pack_check_manifest", "pack_publish_manifest"]


class _RawReader(io.RawIOBase):
    """A ``read()``-only stream (S3's body) as raw I/O, so it can be buffered for readline."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _parse_manifest(manifest_bytes: bytes) -> Manifest:
    value = parse_json(manifest_bytes, what="manifest")
    manifest = Manifest.from_dict(value)
    if canonical_bytes(value) != manifest_bytes:  # the signatures cover these exact bytes
        raise ManifestError(
            "the manifest is not in RFC 8785 canonical form", code="manifest.not_canonical"
        )
    return manifest


def _declared_blobs(manifest: Manifest) -> dict[str, int]:
    """Each distinct blob digest with its size (``manifest.blob_conflict`` for two sizes)."""
    return {entry.sha256: entry.size for entry in manifest_blobs(manifest)}


def _check_blobs(actor: Actor, declared: dict[str, int]) -> None:
    limit: int = settings.MEMSTORE_MAX_PACK_BYTES
    for sha, size in declared.items():
        if size > limit:
            raise TooLargeError(
                f"blob {sha} is {size} bytes; the limit is {limit}",
                code="blob.too_large",
                limit=limit,
            )
    present = blobs_present(actor=actor, digests=list(declared))
    missing = sorted(set(declared) - present)
    if missing:
        raise ConflictError(
            f"{len(missing)} blob(s) of the manifest are not uploaded yet",
            code="blob.missing",
            missing=missing,
        )
    for row in Blob.objects.filter(sha256__in=list(declared)):
        if row.size != declared[row.sha256]:
            raise InvalidRequestError(
                f"blob {row.sha256} is {row.size} bytes; the manifest says {declared[row.sha256]}",
                code="blob.size_mismatch",
                sha256=row.sha256,
            )


def _validate_content(manifest: Manifest, storage: BlobStorage) -> None:
    """The protocol's payload validators, reading the stored blobs."""
    for cube in manifest.cubes:
        for ref in cube.payloads:
            with storage.open(ref.sha256) as raw:
                stream = io.BufferedReader(_RawReader(raw), 1024 * 1024)
                try:
                    validate_payload(cube, ref, stream)
                except PayloadError as exc:
                    exc.detail.setdefault("path", ref.path)
                    raise


@contextmanager
def _open_buffered(storage: BlobStorage, ref: PayloadRef) -> Iterator[IO[bytes]]:
    with storage.open(ref.sha256) as raw:
        yield io.BufferedReader(_RawReader(raw), 1024 * 1024)


def _checked(
    actor: Actor, manifest_bytes: bytes, signatures: Sequence[Signature], storage: BlobStorage
) -> tuple[Namespace, Signed, dict[str, int], ScanReport]:
    """Every check a publish makes, in its order; nothing is written."""
    if actor.user is None:
        raise NotAuthenticatedError("publishing needs an account and a token")
    manifest = _parse_manifest(manifest_bytes)
    signed = Signed(manifest=manifest, manifest_bytes=manifest_bytes, signatures=tuple(signatures))
    namespace = admit(actor, signed)
    declared = _declared_blobs(manifest)
    _check_blobs(actor, declared)
    _validate_content(manifest, storage)
    scan = scan_manifest(manifest, lambda ref: _open_buffered(storage, ref))
    scan_policy_check(scan)
    return namespace, signed, declared, scan


def pack_check_manifest(
    *,
    actor: Actor,
    manifest_bytes: bytes,
    signatures: Sequence[Signature],
    storage: BlobStorage | None = None,
) -> tuple[Manifest, ScanReport]:
    """A publish's checks and scan without the publish (``memos publish --dry-run``).

    Raises exactly what :func:`pack_publish_manifest` would (a pack with
    secrets: ``registry.secrets_found`` with the findings); otherwise returns
    the manifest and the scan's findings, so the publisher sees them before anything is public.
    Nothing is stored: the blobs uploaded for it stay unreferenced (a real
    publish uses them; garbage collection removes them otherwise).
    """
    _, signed, _, scan = _checked(actor, manifest_bytes, signatures, storage or get_blob_storage())
    return signed.manifest, scan


def pack_publish_manifest(
    *,
    actor: Actor,
    manifest_bytes: bytes,
    signatures: Sequence[Signature],
    private: bool = False,
    price: Price = FREE,
    storage: BlobStorage | None = None,
) -> PackVersion:
    """Publish a signed manifest whose blobs are all present for ``actor`` (module docstring)."""
    storage = storage or get_blob_storage()
    namespace, signed, declared, scan = _checked(actor, manifest_bytes, signatures, storage)
    try:
        return commit_version(
            actor=actor,
            namespace=namespace,
            signed=signed,
            blob_shas=list(declared),
            private=private,
            price=price,
            scan=scan,
        )
    except ConflictError as exc:
        if exc.code != "registry.conflict":
            raise
        raise ConflictError(
            "a blob of the manifest was removed meanwhile; upload it again",
            code="blob.missing",
            missing=exc.detail.get("missing", []),
        ) from exc
