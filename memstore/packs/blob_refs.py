"""Blob rows and their references: store a blob once, release it when nothing refers to it.

A blob is referenced by every version whose pack file or payload it is, and by
every upload of it that is open or completed and not yet expired
(``storage.BlobUpload``): a publisher may upload blobs first and publish the
manifest that names them later. :func:`blobs_release` removes a blob only under
its row lock and only when nothing references it, so a blob shared with a
concurrent publish is never removed from under it; the periodic
:func:`blobs_collect_garbage` does the same for blobs older than an hour.

Not here: the publish itself (:mod:`memstore.packs.publishing`), uploads
(:mod:`memstore.packs.blob_uploads`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from ..storage.backends import BlobStorage
from ..storage.models import Blob, BlobUpload
from ..storage.services import get_blob_storage
from .models import PackVersion, VersionPayload

__all__ = ["blob_referenced", "blob_store", "blobs_collect_garbage", "blobs_release"]

log = logging.getLogger(__name__)

_HOLDING = (BlobUpload.Status.OPEN, BlobUpload.Status.COMPLETED)


def blob_store(sha256: str, path: Path, size: int, storage: BlobStorage) -> None:
    """Put one blob and commit its row; the row lock keeps a concurrent release away."""
    with transaction.atomic():
        Blob.objects.get_or_create(sha256=sha256, defaults={"size": size})
        Blob.objects.select_for_update().get(sha256=sha256)
        if not storage.exists(sha256):
            storage.put_file(sha256, path)


def blob_referenced(sha256: str) -> bool:
    """Whether a version, or an upload still in force, refers to the blob."""
    return (
        PackVersion.objects.filter(file_sha256=sha256).exists()
        or VersionPayload.objects.filter(sha256=sha256).exists()
        or BlobUpload.objects.filter(
            sha256=sha256, status__in=_HOLDING, expires_at__gt=timezone.now()
        ).exists()
    )


def blobs_release(*, shas: list[str], storage: BlobStorage | None = None) -> list[str]:
    """Remove the blobs among ``shas`` that nothing references; return those removed."""
    storage = storage or get_blob_storage()
    removed: list[str] = []
    for sha in dict.fromkeys(shas):
        try:
            with transaction.atomic():
                row = Blob.objects.select_for_update().filter(sha256=sha).first()
                if blob_referenced(sha):
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
    """Remove unreferenced blobs left by crashed publishes or abandoned uploads (periodic)."""
    cutoff = timezone.now() - older_than
    candidates = list(Blob.objects.filter(created_at__lt=cutoff).values_list("sha256", flat=True))
    return blobs_release(shas=candidates, storage=storage)
