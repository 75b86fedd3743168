"""Writes to the search index (called by the ingestion pipeline and pack lifecycle)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import transaction

from protocol import Version

from ..packs.models import PackVersion
from .models import IndexedMemory, PackDocument

BATCH = 1000


def memories_index_replace(
    *, version: PackVersion, rows: Sequence[tuple[str, str, list[str], str]], vectors: np.ndarray
) -> int:
    """Replace the indexed memories of ``version`` (idempotent); return how many."""
    with transaction.atomic():
        IndexedMemory.objects.filter(version=version).delete()
        objects = [
            IndexedMemory(
                version=version,
                cube_id=cube_id,
                record_id=record_id,
                tags=tags,
                text=text,
                embedding=vectors[i],
            )
            for i, (cube_id, record_id, tags, text) in enumerate(rows)
        ]
        for start in range(0, len(objects), BATCH):
            IndexedMemory.objects.bulk_create(objects[start : start + BATCH])
    return len(objects)


def pack_document_refresh(*, pack_id: int) -> PackDocument | None:
    """Mark as current the highest ingested version that is not yanked or deleted."""
    with transaction.atomic():
        docs = list(
            PackDocument.objects.select_for_update()
            .filter(pack_id=pack_id)
            .select_related("version")
        )
        live = [d for d in docs if d.version.deleted_at is None and not d.version.yanked]
        best = max(live, key=lambda d: Version.parse(d.version.version), default=None)
        stale = PackDocument.objects.filter(pack_id=pack_id, current=True)
        if best is not None:
            stale = stale.exclude(pk=best.pk)
        stale.update(current=False)
        if best is not None and not best.current:
            PackDocument.objects.filter(pk=best.pk).update(current=True)
        return best
