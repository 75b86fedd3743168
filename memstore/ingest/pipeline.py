"""Records of a version, streamed from storage and embedded in batches, ahead of the writer.

:func:`embedded_batches` reads each memories payload as a stream (never the whole
version in memory), cuts it into batches of :func:`batch_size` records and embeds
them in a thread of its own, so that batch n+1 is embedded while the caller
inserts batch n. The hand-over queue holds one batch: at most three batches are
alive at once (one being embedded, one waiting, one being written), whatever the
size of the version. The thread touches no database (the caller passes the
payloads it read). Not here: the writes (``search.services``), the job (``services``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from protocol import iter_memory_records

from ..search.embedding import embed
from ..storage.backends import BlobStorage

__all__ = ["Batch", "Row", "batch_size", "embedded_batches"]

Row = tuple[str, str, list[str], str]  # cube id, record id, tags, text


@dataclass(frozen=True)
class Batch:
    rows: list[Row]
    vectors: np.ndarray


def batch_size() -> int:
    """Records embedded and inserted together (``MEMSTORE_INGEST_BATCH``, 512)."""
    return int(getattr(settings, "MEMSTORE_INGEST_BATCH", 512))


_END = object()


def _rows(
    storage: BlobStorage, payloads: Sequence[tuple[str, str]], size: int
) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for cube_id, sha256 in payloads:
        with storage.open(sha256) as stream:
            for record in iter_memory_records(stream):
                batch.append((cube_id, record.id, list(record.tags), record.text))
                if len(batch) >= size:
                    yield batch
                    batch = []
    if batch:
        yield batch


def embedded_batches(
    storage: BlobStorage, payloads: Sequence[tuple[str, str]], *, size: int | None = None
) -> Generator[Batch]:
    """Embedded batches of the records of ``payloads`` ((cube id, sha256), in order).

    An error of the reader or the embedder is raised here, in the caller's thread;
    closing the iterator early stops the thread.
    """
    handover: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handover.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for rows in _rows(storage, payloads, size or batch_size()):
                vectors = embed([text for _, _, _, text in rows])
                if not put(Batch(rows=rows, vectors=vectors)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
            return
        put(_END)

    thread = threading.Thread(target=produce, name="ingest-embed", daemon=True)
    thread.start()
    try:
        while True:
            item = handover.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Batch)
            yield item
    finally:
        stop.set()
        thread.join()
