"""Celery tasks of the registry's packs: thin wrappers over the services.

The periodic blob garbage collection (``CELERY_BEAT_SCHEDULE``'s
``collect-unreferenced-blobs``) removes blobs that no version and no upload in
force references: left by publishes that crashed, or uploaded and never published
(:func:`memstore.packs.blob_refs.blobs_collect_garbage`).
``purge-expired-uploads`` closes expired upload sessions of both kinds and
deletes their part files and stale S3 multipart uploads
(:func:`memstore.packs.upload_limits.uploads_purge_expired`).
Not here: ingestion tasks (``memstore.ingest.tasks``).
"""

from __future__ import annotations

from celery import shared_task

from . import blob_refs, upload_limits

__all__ = ["collect_garbage", "purge_expired_uploads"]


@shared_task(name="memstore.packs.collect_garbage")  # type: ignore[untyped-decorator]
def collect_garbage() -> list[str]:
    return blob_refs.blobs_collect_garbage()


@shared_task(name="memstore.packs.purge_expired_uploads")  # type: ignore[untyped-decorator]
def purge_expired_uploads() -> dict[str, object]:
    return upload_limits.uploads_purge_expired().to_dict()
