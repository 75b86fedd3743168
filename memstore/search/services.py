"""Every write to the search index: a version's memories, its pack document, which is current.

Ingestion (``memstore.ingest``) extracts and embeds, then calls these; the
pack lifecycle (yank, unyank, delete in ``memstore.packs``) reaches
:func:`pack_document_refresh` through the subscription made in
``apps.SearchConfig.ready``. Not here: reads and ranking (``selectors``),
the embedder (``embedding``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from django.db import DatabaseError, connection, transaction

from protocol import Version

from ..packs.cards import card_parse, preview_records
from ..packs.models import PackVersion
from .models import IndexedMemory, PackDocument

__all__ = [
    "memories_index_replace",
    "memories_index_write",
    "pack_document_refresh",
    "pack_document_replace",
    "pack_document_text",
]

BATCH = 1000
#: The full-text index of the memories (``models.IndexedMemory``), flushed after each write.
TEXT_INDEX = "memory_search_vector_gin"

logger = logging.getLogger(__name__)


def _text_index_flush() -> None:
    """Move the full-text index's pending list into the index proper.

    Why: GIN buffers new entries in an unsorted pending list (``fastupdate``, up to
    ``gin_pending_list_limit``, 4 MB) that every full-text query scans from end to end
    until a vacuum or a later insert flushes it. Measured at 100k memories, a pack just
    ingested left the text leg at 10.3 / 29.7 ms p50 / p95; flushed, 0.19 / 0.50 ms
    (``bench/registry_bench.py``). Autovacuum would get there only after ~20% of the
    table is new. Best effort: a failure (a role that does not own the index) costs
    speed, never the write, which has already committed.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [TEXT_INDEX])
    except DatabaseError as exc:
        logger.warning("could not flush the full-text index's pending list: %s", exc)


def memories_index_replace(
    *, version: PackVersion, rows: Sequence[tuple[str, str, list[str], str]], vectors: np.ndarray
) -> int:
    """Replace the indexed memories of ``version`` (idempotent); return how many.

    One batch of :func:`memories_index_write` (the callers that have every row at hand).
    """
    return memories_index_write(version=version, batches=[(rows, vectors)])


def memories_index_write(
    *,
    version: PackVersion,
    batches: Iterable[tuple[Sequence[tuple[str, str, list[str], str]], np.ndarray]],
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Replace the indexed memories of ``version`` with ``batches`` (rows, vectors), all or
    nothing; return how many. The batched form of :func:`memories_index_replace`.

    One transaction (a savepoint inside the caller's): the old rows stay visible until
    it commits and no one ever sees half a version, while only one batch is alive in
    memory. ``on_batch`` gets the running count after each insert (progress).
    """
    card = card_parse(version.description)
    count = 0
    with transaction.atomic():
        IndexedMemory.objects.filter(version=version).delete()
        for rows, vectors in batches:
            # The card's named previews, else the first few in index order (the first batch).
            previews = (
                preview_records(card, [row[1] for row in rows])
                if card.preview or count == 0
                else set()
            )
            IndexedMemory.objects.bulk_create(
                [
                    IndexedMemory(
                        version=version,
                        cube_id=cube_id,
                        record_id=record_id,
                        tags=tags,
                        text=text,
                        embedding=vectors[i],
                        preview=record_id in previews,
                    )
                    for i, (cube_id, record_id, tags, text) in enumerate(rows)
                ],
                batch_size=BATCH,
            )
            count += len(rows)
            if on_batch is not None:
                on_batch(count)
        transaction.on_commit(_text_index_flush)
    return count


def pack_document_text(version: PackVersion) -> str:
    """What a version's pack document says (and is embedded from): title, description, tags."""
    return "\n".join(
        [version.title, version.description, " ".join(version.tags), version.pack.full_name]
    )


def pack_document_replace(*, version: PackVersion, text: str, vector: np.ndarray) -> PackDocument:
    """Create or replace the pack document of ``version`` (idempotent); ``current`` is kept."""
    document, _ = PackDocument.objects.update_or_create(
        version=version, defaults={"pack": version.pack, "text": text, "embedding": vector}
    )
    return document


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
