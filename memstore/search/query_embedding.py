"""Query vectors off the critical path: a bounded cache, and concurrent queries in one batch.

Embedding the query is most of a search's time (issue 17: MiniLM on the CPU, tens of
milliseconds each, serialised behind one model). These take it off the path:

- **A bounded LRU cache in this process**, keyed by the model folder and the normalised
  query (Unicode NFC, whitespace collapsed, lower-cased when the model's tokenizer
  lower-cases anyway, as all-MiniLM-L6-v2's does), so "Rotate  keys" and "rotate keys"
  share one vector. Not Django's cache on Redis: a vector is 1.5 KB that the cache
  would pickle and send over the network for each hit, and a query string in a shared
  cache's keys is one more place user input lives; popular queries repeat within a
  process anyway.
- **Natural batching**: a query that finds the model busy waits, and the next thread to
  run the model takes every query that queued meanwhile in one forward pass. Nobody
  waits for a timer; under load the batch grows by itself.
- **A faster encoder**: the registry's model exported to ONNX on this machine and run by
  ONNX Runtime (``encoders``; about 2x faster than torch for one query, vectors within
  cosine 0.999 of torch's, checked at every load), unless ``MEMSTORE_ENCODER=torch``
  or it cannot be built (then torch, logged). Memories are embedded the same way
  (``embedding``), on all cores.
- **One thread per query pass** (:data:`QUERY_THREADS`, the process's count
  restored after): a few short queries gain nothing from intra-op parallelism, and on
  busy cores a parallel region waits for its descheduled thread (2 busy cores, load
  about 3: one query 132 ms p50 on 2 threads, 15 ms on 1). Ingestion's batches keep
  the process's threads; torch's setting is per process, so a batch embedded in another
  thread during a query pass would run on one thread for that moment.

Not here: the model itself (``embedding``), ranking (``selectors``).
"""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

__all__ = ["CACHE_SIZE", "QUERY_THREADS", "QueryEmbedder", "default_embedder", "normalise"]

#: Query vectors kept per process (384 float32 each: about 6 MB at this size).
CACHE_SIZE = 4096
#: Torch intra-op threads for a pass over queries (module docstring).
QUERY_THREADS = 1

Encode = Callable[[Sequence[str]], np.ndarray]


def normalise(text: str, *, lowercase: bool) -> str:
    """The cache key's form of a query: NFC, whitespace collapsed, lower-cased if asked."""
    text = " ".join(unicodedata.normalize("NFC", text).split())
    return text.lower() if lowercase else text


@dataclass
class _Job:
    text: str
    vector: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = field(default=False)


class QueryEmbedder:
    """Embeds queries through ``encode`` (a batch of texts -> an array of row vectors),
    with an LRU cache of ``size`` vectors and concurrent callers batched together.

    Thread-safe; vectors returned are read-only (shared by every caller of the query).
    """

    def __init__(self, encode: Encode, *, model: str, lowercase: bool, size: int = CACHE_SIZE):
        self._encode = encode
        self.model = model
        self.lowercase = lowercase
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cond = threading.Condition()
        self._pending: list[_Job] = []
        self._busy = False
        #: Forward passes run and queries they embedded (for tests and the benchmark).
        self.batches = 0
        self.embedded = 0

    def _cached(self, key: str) -> np.ndarray | None:
        with self._cond:
            vector = self._cache.get(key)
            if vector is not None:
                self._cache.move_to_end(key)
            return vector

    def _store(self, key: str, vector: np.ndarray) -> None:
        with self._cond:
            self._cache[key] = vector
            self._cache.move_to_end(key)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)

    def vector(self, text: str) -> np.ndarray:
        """The query's vector: from the cache, or embedded (batched with concurrent ones)."""
        key = normalise(text, lowercase=self.lowercase)
        vector = self._cached(key)
        if vector is not None:
            return vector
        job = _Job(key)
        with self._cond:
            self._pending.append(job)
            while not job.done and self._busy:
                self._cond.wait()
            if job.done:
                return self._result(job)
            self._busy = True  # this thread runs the model for everything queued
            batch, self._pending = self._pending, []
        try:
            self._run(batch)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
        return self._result(job)

    def _run(self, batch: list[_Job]) -> None:
        texts = list(dict.fromkeys(job.text for job in batch))  # one row per distinct query
        try:
            vectors = np.asarray(self._encode(texts), dtype=np.float32)
        except BaseException as e:  # every waiter learns of the failure, not only this one
            for job in batch:
                job.error, job.done = e, True
            return
        by_text = {}
        for text, row in zip(texts, vectors, strict=True):
            row = row.copy()
            row.setflags(write=False)
            by_text[text] = row
            self._store(text, row)
        for job in batch:
            job.vector, job.done = by_text[job.text], True
        self.batches += 1
        self.embedded += len(texts)

    @staticmethod
    def _result(job: _Job) -> np.ndarray:
        if job.error is not None:
            raise job.error
        assert job.vector is not None
        return job.vector


def _encode_queries(texts: Sequence[str]) -> np.ndarray:
    """The registry's torch model over a batch of queries, on :data:`QUERY_THREADS` threads."""
    import torch  # loaded already: the model is (``embedding.load``)

    from . import embedding

    threads = torch.get_num_threads()
    torch.set_num_threads(QUERY_THREADS)
    try:
        return embedding.embed(texts)
    finally:
        torch.set_num_threads(threads)


def _onnx_queries(model: str) -> QueryEmbedder | None:
    """The query embedder over the ONNX export of ``model`` (``encoders``), or None (logged)
    when it cannot be built here; queries then run on torch."""
    from . import embedding

    encoder = embedding.onnx_or_none(threads=QUERY_THREADS, what="search queries")
    if encoder is None:
        return None
    return QueryEmbedder(encoder.encode, model=model, lowercase=encoder.lowercase)


_default: QueryEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> QueryEmbedder:
    """The process's query embedder, made on first use: the ONNX export of the registry's
    model (``MEMSTORE_ENCODER=onnx``, the default), else torch (``embedding``)."""
    global _default
    from . import embedding

    with _default_lock:
        model = embedding.model_path()
        if _default is None or _default.model != model:
            made = None
            if settings.MEMSTORE_ENCODER == "onnx":
                made = _onnx_queries(model)
            if made is None:
                tokenizer = getattr(embedding.load(), "tokenizer", None)
                lowercase = bool(getattr(tokenizer, "do_lower_case", False))
                made = QueryEmbedder(_encode_queries, model=model, lowercase=lowercase)
            _default = made
        return _default
