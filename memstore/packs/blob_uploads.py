"""Upload only the blobs the registry lacks: ask which are missing, then upload each, resumably.

* :func:`blobs_missing` answers which of a publisher's digests they still have to
  upload. A digest counts as present *for this publisher* only when the registry
  stores it and either some version the publisher may download references it, or
  the publisher uploaded it; otherwise it is "missing", whether or not someone
  else stored it, so the answer tells nothing about other people's blobs.
* :func:`blob_upload_create` opens a per-blob upload session ``{sha256, size}``.
  For a blob present for the publisher it answers a session that is already
  ``completed`` (a retry is a no-op, no byte travels); the publisher's open session
  for the same blob is answered again, with its offset, so a client that lost its
  state resumes where the bytes stopped. A user holds at most
  ``MEMSTORE_MAX_OPEN_UPLOADS`` open blob uploads (429 ``registry.too_many_uploads``,
  :mod:`memstore.packs.upload_limits`, which also purges expired ones).
* :func:`blob_upload_append` writes a chunk at the session's offset (another offset
  is refused with the current one, ``upload.offset_mismatch``). The chunk that
  reaches the announced size completes the upload: the registry hashes the bytes,
  refuses another digest (``blob.digest_mismatch``; the session fails), and stores
  the blob once, content-addressed (a blob someone else stored is not stored twice).

Not here: publishing the manifest (:mod:`memstore.packs.publishing`), the rows
(:mod:`memstore.storage.models`), part files (:mod:`memstore.storage.parts`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..accounts.actor import Actor
from ..errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotAuthenticatedError,
    NotFoundError,
    TooLargeError,
)
from ..storage.backends import BlobStorage
from ..storage.models import Blob, BlobUpload
from ..storage.parts import (
    ChunkCodes,
    check_chunk,
    check_chunk_size,
    part_append,
    part_path,
    part_sha256,
)
from ..storage.services import get_blob_storage
from .blob_refs import blob_store
from .selectors import blobs_readable
from .upload_limits import require_upload_room

__all__ = [
    "MAX_DIGESTS",
    "blob_upload_cancel",
    "blob_upload_complete",
    "blob_upload_create",
    "blob_upload_get",
    "blobs_missing",
    "blobs_present",
]

SESSION_TTL = timedelta(hours=24)
#: The most digests one ``blobs/missing`` request may ask about.
MAX_DIGESTS = 10_000
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


def _require_uploader(actor: Actor) -> None:
    if actor.user is None:
        raise NotAuthenticatedError("uploading needs an account and a token")
    if actor.scopes is not None and not any(s.startswith("publish:") for s in actor.scopes):
        raise ForbiddenError("this token has no publish scope")


def _check_digest(sha256: str) -> None:
    if not isinstance(sha256, str) or not _HEX64.match(sha256):
        raise InvalidRequestError(
            "a blob digest is 64 lower-case hex digits", code="blob.bad_digest", sha256=sha256
        )


def blobs_present(*, actor: Actor, digests: Sequence[str]) -> set[str]:
    """The digests stored by the registry that ``actor`` may read or uploaded themselves."""
    wanted = set(digests)
    stored = set(Blob.objects.filter(sha256__in=wanted).values_list("sha256", flat=True))
    if not stored or actor.user is None:
        return set()
    mine = set(
        BlobUpload.objects.filter(
            user=actor.user, sha256__in=stored, status=BlobUpload.Status.COMPLETED
        ).values_list("sha256", flat=True)
    )
    return mine | blobs_readable(actor=actor, digests=stored - mine)


def blobs_missing(*, actor: Actor, digests: Sequence[str]) -> list[str]:
    """The digests (distinct, in the order asked) ``actor`` still has to upload."""
    _require_uploader(actor)
    if len(digests) > MAX_DIGESTS:
        raise InvalidRequestError(
            f"ask about at most {MAX_DIGESTS} digests at once",
            code="blob.too_many",
            limit=MAX_DIGESTS,
        )
    for sha in digests:
        _check_digest(sha)
    present = blobs_present(actor=actor, digests=digests)
    return [sha for sha in dict.fromkeys(digests) if sha not in present]


def _part(upload: BlobUpload) -> str:
    return f"blob-{upload.id}.part"


def blob_upload_create(*, actor: Actor, sha256: str, size: int) -> tuple[BlobUpload, bool]:
    """Open (or find) the upload of one blob; returns it and whether it is new."""
    _require_uploader(actor)
    _check_digest(sha256)
    limit: int = settings.MEMSTORE_MAX_PACK_BYTES
    if size < 0:
        raise InvalidRequestError("size cannot be negative", code="blob.bad_size")
    if size > limit:
        raise TooLargeError(
            f"the blob is {size} bytes; the limit is {limit}", code="blob.too_large", limit=limit
        )
    assert actor.user is not None
    now = timezone.now()
    if sha256 in blobs_present(actor=actor, digests=[sha256]):
        stored = Blob.objects.get(sha256=sha256).size
        if stored != size:
            raise InvalidRequestError(
                f"blob {sha256} is {stored} bytes, not {size}",
                code="blob.size_mismatch",
                sha256=sha256,
                size=stored,
            )
        done = BlobUpload.objects.create(
            user=actor.user,
            sha256=sha256,
            size=size,
            offset=size,
            status=BlobUpload.Status.COMPLETED,
            expires_at=now + SESSION_TTL,
        )
        return done, False
    existing = (
        BlobUpload.objects.filter(
            user=actor.user,
            sha256=sha256,
            size=size,
            status=BlobUpload.Status.OPEN,
            expires_at__gt=now,
        )
        .order_by("-created_at")
        .first()
    )
    if existing is not None:
        return existing, False
    require_upload_room(user=actor.user, kind="blob")
    upload = BlobUpload.objects.create(
        user=actor.user, sha256=sha256, size=size, expires_at=now + SESSION_TTL
    )
    part_path(_part(upload)).touch()
    return upload, True


def blob_upload_get(*, actor: Actor, upload_id: uuid.UUID) -> BlobUpload:
    found = BlobUpload.objects.filter(id=upload_id, user=actor.user).first() if actor.user else None
    if found is None:
        raise NotFoundError("no such blob upload", code="upload.not_found")
    return found


_CHUNK_CODES = ChunkCodes(
    too_large="upload.chunk_too_large",
    offset_mismatch="upload.offset_mismatch",
    too_long="upload.too_long",
)


def _require_open(upload: BlobUpload) -> None:
    if upload.status != BlobUpload.Status.OPEN:
        raise ConflictError(
            f"the upload is {upload.status}", code="upload.closed", status=upload.status
        )
    if upload.expires_at <= timezone.now():
        raise ConflictError("the upload expired", code="upload.closed", status="expired")


def blob_upload_append(
    *,
    actor: Actor,
    upload_id: uuid.UUID,
    offset: int,
    data: bytes,
    storage: BlobStorage | None = None,
) -> BlobUpload:
    """Write ``data`` at ``offset`` (the upload's current offset); the last chunk completes it."""
    check_chunk_size(len(data), _CHUNK_CODES)
    with transaction.atomic():
        found = blob_upload_get(actor=actor, upload_id=upload_id)
        upload = BlobUpload.objects.select_for_update().get(pk=found.pk)
        _require_open(upload)
        check_chunk(offset=offset, current=upload.offset, size=upload.size,
                    length=len(data), codes=_CHUNK_CODES)  # fmt: skip
        part_append(part_path(_part(upload)), upload.offset, data)
        upload.offset += len(data)
        upload.received += len(data)
        upload.save(update_fields=["offset", "received"])
    if upload.offset == upload.size:
        return _finish(upload, storage or get_blob_storage())
    return upload


def _finish(upload: BlobUpload, storage: BlobStorage) -> BlobUpload:
    """Check the bytes against the announced digest and store the blob (idempotent)."""
    path = part_path(_part(upload))
    with transaction.atomic():
        upload = BlobUpload.objects.select_for_update().get(pk=upload.pk)
        if upload.status == BlobUpload.Status.COMPLETED:
            return upload
        _require_open(upload)
        actual = part_sha256(path, upload.size) if path.exists() else ""
        matches = actual == upload.sha256 and path.stat().st_size == upload.size
        if matches:
            blob_store(upload.sha256, path, upload.size, storage)
        upload.status = BlobUpload.Status.COMPLETED if matches else BlobUpload.Status.FAILED
        upload.save(update_fields=["status"])
    path.unlink(missing_ok=True)
    if not matches:
        raise InvalidRequestError(
            "the uploaded bytes do not have the announced sha256; start a new upload",
            code="blob.digest_mismatch",
            expected=upload.sha256,
            actual=actual,
        )
    return upload


def blob_upload_complete(
    *, actor: Actor, upload_id: uuid.UUID, storage: BlobStorage | None = None
) -> BlobUpload:
    """Complete the upload (a completed one is answered as it is: retries are no-ops)."""
    upload = blob_upload_get(actor=actor, upload_id=upload_id)
    if upload.status == BlobUpload.Status.COMPLETED:
        return upload
    _require_open(upload)
    if upload.offset != upload.size:
        raise InvalidRequestError(
            f"{upload.offset} of {upload.size} bytes uploaded",
            code="upload.incomplete",
            offset=upload.offset,
        )
    return _finish(upload, storage or get_blob_storage())


def blob_upload_cancel(*, actor: Actor, upload_id: uuid.UUID) -> None:
    upload = blob_upload_get(actor=actor, upload_id=upload_id)
    BlobUpload.objects.filter(pk=upload.pk, status=BlobUpload.Status.OPEN).update(
        status=BlobUpload.Status.CANCELLED
    )
    part_path(_part(upload)).unlink(missing_ok=True)
