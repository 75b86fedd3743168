"""Embed a fresh install's memories while the rest of the pack is still downloading.

A pack's text blobs are small and fetched first; its tensors (LoRA weights,
KV caches) are most of the bytes and take most of the fetch. The model's time
over the memories (~200 memories/s for MiniLM on a CPU) used to start only
after the last byte had arrived. :class:`EarlyEmbedding` is handed each
memories blob as soon as it is in the cache (``fetch_blobs``'s ``on_ready``),
parses it on one background thread and embeds the texts that carry no vector
of their own; :meth:`vectors` then gives the commit step what is done.

Nothing here decides anything. The blob was hashed against the signed
manifest before ``on_ready`` is called, and the commit step parses every
record again with the reader's full checks (:mod:`.items`): a record this
thread refuses is simply not embedded early, and the commit raises the
stable ``payload.*`` error. A text is looked up by its exact string, so an
early vector is only ever used for the text it was computed from.

Used on fresh installs only: an upgrade reuses the installed vectors of
unchanged texts (:func:`.commit._reused_vector`), which this thread cannot
know about without reading the store. Not here: fetching, committing.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all

import numpy as np
import numpy.typing as npt

from protocol import Manifest, MediaType, iter_memory_records

from ..cache import BlobCache
from ..engine.interfaces import Embedder
from .blobs import BlobEntry

__all__ = ["EarlyEmbedding"]


class EarlyEmbedding:
    """Background embedding of the memories blobs of one install (see the module docstring)."""

    def __init__(self, manifest: Manifest, cache: BlobCache, embedder: Embedder) -> None:
        self._cache = cache
        self._embedder = embedder
        self._dimensions = {
            cube.id: cube.embedding.dimension if cube.embedding else None for cube in manifest.cubes
        }
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memos-early-embed")
        self._jobs: list[Future[dict[str, npt.NDArray[np.float32]]]] = []

    def on_ready(self, entry: BlobEntry) -> None:
        """Called from a fetch thread when ``entry`` is verified in the cache."""
        if entry.media_type == MediaType.MEMORIES_JSONL.value:
            self._jobs.append(self._pool.submit(self._embed, entry))

    def _embed(self, entry: BlobEntry) -> dict[str, npt.NDArray[np.float32]]:
        dim = self._dimensions.get(entry.cubes[0]) if entry.cubes else None
        try:
            with open(self._cache.get(entry.sha256), "rb") as fh:
                texts = [r.text for r in iter_memory_records(fh, expected_dimension=dim)
                         if r.embedding is None]  # fmt: skip
        except Exception:  # refused here means refused, with its code, at commit
            return {}
        texts = list(dict.fromkeys(texts))
        if not texts:
            return {}
        rows = self._embedder.embed(texts)
        return dict(zip(texts, rows, strict=True))

    def vectors(self) -> dict[str, npt.NDArray[np.float32]]:
        """Every vector computed so far or still being computed (waits for them)."""
        out: dict[str, npt.NDArray[np.float32]] = {}
        wait_all(self._jobs)
        for job in self._jobs:
            if job.exception() is None:
                out.update(job.result())
        return out

    def close(self) -> None:
        """Stop: jobs not started are dropped, a running one finishes in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)
