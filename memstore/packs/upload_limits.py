"""Limits on upload sessions: a per-user cap on open ones, and purging expired ones.

Both kinds of resumable upload keep a part file under ``MEMSTORE_UPLOAD_DIR``
until they complete: the whole-pack sessions (:mod:`memstore.packs.uploads`,
``<id>.part``) and the MIP 2 per-blob uploads
(:mod:`memstore.packs.blob_uploads`, ``blob-<id>.part``). Without limits one
account could hold any number of sessions and abandoned parts stayed on disk
for ever.

* :func:`require_upload_room` refuses a new session once the user holds
  ``MEMSTORE_MAX_OPEN_UPLOADS`` open, unexpired sessions of that kind (429,
  ``registry.too_many_uploads``; resuming an open blob upload opens nothing).
* :func:`uploads_purge_expired` (the hourly beat task) marks every open
  session past its expiry ``cancelled`` (an expired session already refuses
  chunks, ``*.closed``), deletes the part files of every session that is no
  longer open, and, on S3, aborts multipart uploads left
  by a crashed ``put_file``. Idempotent: a second run finds nothing.

Not here: the sessions themselves (``uploads``, ``blob_uploads``), blobs no
version references (:func:`memstore.packs.blob_refs.blobs_collect_garbage`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from ..accounts.models import User
from ..errors import TooManyRequestsError
from ..storage.backends import BlobStorage
from ..storage.models import BlobUpload
from ..storage.services import get_blob_storage
from .models import UploadSession

__all__ = ["PurgeReport", "require_upload_room", "uploads_purge_expired"]

#: S3 multipart uploads older than this are abandoned (no put_file runs that long).
MULTIPART_STALE_AFTER = timedelta(hours=24)


def require_upload_room(*, user: User, kind: str) -> None:
    """Refuse a new ``kind`` ("pack" or "blob") session for a user at the cap."""
    limit: int = settings.MEMSTORE_MAX_OPEN_UPLOADS
    now = timezone.now()
    if kind == "pack":
        open_now = UploadSession.objects.filter(
            user=user, status=UploadSession.Status.OPEN, expires_at__gt=now
        ).count()
    else:
        open_now = BlobUpload.objects.filter(
            user=user, status=BlobUpload.Status.OPEN, expires_at__gt=now
        ).count()
    if open_now >= limit:
        raise TooManyRequestsError(
            f"you have {open_now} open {kind} upload sessions, the most one account may hold; "
            "complete or cancel one (DELETE its URL), or wait for one to expire",
            code="registry.too_many_uploads",
            kind=kind,
            limit=limit,
        )


@dataclass
class PurgeReport:
    expired_sessions: int = 0
    expired_blob_uploads: int = 0
    parts_deleted: list[str] = field(default_factory=list)
    multipart_aborted: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "expired_sessions": self.expired_sessions,
            "expired_blob_uploads": self.expired_blob_uploads,
            "parts_deleted": self.parts_deleted,
            "multipart_aborted": self.multipart_aborted,
        }


def _live_parts() -> set[str]:
    """Part-file names of sessions still open (and unexpired): the only ones to keep."""
    now = timezone.now()
    packs = UploadSession.objects.filter(status=UploadSession.Status.OPEN, expires_at__gt=now)
    blobs = BlobUpload.objects.filter(status=BlobUpload.Status.OPEN, expires_at__gt=now)
    names = {f"{pk}.part" for pk in packs.values_list("pk", flat=True)}
    names |= {f"blob-{pk}.part" for pk in blobs.values_list("pk", flat=True)}
    return names


def _has_row(name: str) -> bool:
    """Whether a part file belongs to a session row (of either kind) at all."""
    stem = name.removesuffix(".part")
    model: type[UploadSession] | type[BlobUpload] = UploadSession
    if stem.startswith("blob-"):
        stem, model = stem.removeprefix("blob-"), BlobUpload
    try:
        key = uuid.UUID(stem)
    except ValueError:
        return False
    return model.objects.filter(pk=key).exists()


def uploads_purge_expired(
    *,
    storage: BlobStorage | None = None,
    grace: timedelta = timedelta(minutes=10),
    multipart_older_than: timedelta = MULTIPART_STALE_AFTER,
) -> PurgeReport:
    """Close expired sessions of both kinds and delete every part file no open session owns.

    The part of a closed session goes at once; a part file with no row at all only
    once it is older than ``grace`` (its session may be in the transaction that
    creates it).
    """
    now = timezone.now()
    report = PurgeReport()
    report.expired_sessions = UploadSession.objects.filter(
        status=UploadSession.Status.OPEN, expires_at__lte=now
    ).update(status=UploadSession.Status.CANCELLED)
    report.expired_blob_uploads = BlobUpload.objects.filter(
        status=BlobUpload.Status.OPEN, expires_at__lte=now
    ).update(status=BlobUpload.Status.CANCELLED)
    root = Path(settings.MEMSTORE_UPLOAD_DIR)
    if root.is_dir():
        keep = _live_parts()
        young = (now - grace).timestamp()
        for part in sorted(root.glob("*.part")):
            if part.name in keep:
                continue
            try:
                if not _has_row(part.name) and part.stat().st_mtime > young:
                    continue
                part.unlink()
            except FileNotFoundError:  # removed meanwhile (a cancel, another run)
                continue
            report.parts_deleted.append(part.name)
    backend = storage or get_blob_storage()
    report.multipart_aborted = backend.abort_stale_uploads(older_than=multipart_older_than)
    return report
