"""Celery tasks of the registry's packs: thin wrappers over :mod:`.services`.

The periodic blob garbage collection (``CELERY_BEAT_SCHEDULE``'s
``collect-unreferenced-blobs``) removes blobs left by publishes that crashed.
Not here: ingestion tasks (``memstore.ingest.tasks``).
"""

from __future__ import annotations

from celery import shared_task

from . import services

__all__ = ["collect_garbage"]


@shared_task(name="memstore.packs.collect_garbage")  # type: ignore[untyped-decorator]
def collect_garbage() -> list[str]:
    return services.blobs_collect_garbage()
