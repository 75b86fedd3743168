"""Hybrid retrieval: semantic (vectors) + keyword (BM25) + symbolic filters, fused by RRF.

:func:`hybrid` ranks memories for a query without looking at who asks:
access control, expiry and recording the use are the callers' (the engine's
``search``, the scheduler's ``plan``). Semantic matches below the embedder's
relevance floor are dropped, keyword matches are kept; the two rankings are
fused by reciprocal rank fusion (``1 / (RRF_K + rank)`` summed). With
neither, a symbolic query (filters only, or no text) returns the matching
memories by priority.

:func:`ranked` is the same ranking before any memory is read: the search reads
(and JSON-decodes) only the rows it shows, a page at a time, through
:func:`visible_ranked` — at 10k memories a query fuses about 90 candidates for
10 hits, and decoding all of them was a tenth of the search's time.

:class:`LiveVectors` caches which vector rows belong to memories in which
states, until the store's generation changes.

At many memories the semantic leg scores a smaller copy of the vectors first
(:mod:`runtime.engine.coarse`) and the keyword leg ranks only memories holding
a rarer word (:mod:`runtime.engine.keyword`); the scores fused are exact.

Not here: SQL (:class:`runtime.engine.store.Store`) or the vector file
itself (:mod:`runtime.engine.vectors`).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from .coarse import Coarse
from .lifecycle import State
from .store import Store
from .types import Filters, Memory
from .vectors import VectorFile

__all__ = [
    "RRF_K",
    "Candidate",
    "LiveVectors",
    "Ranked",
    "fts_query",
    "fts_terms",
    "hybrid",
    "ranked",
    "visible",
    "visible_ranked",
]

RRF_K = 60
_WORD = re.compile(r"\w+", re.UNICODE)

_embed_pool: ThreadPoolExecutor | None = None
_embed_pool_lock = threading.Lock()


def _query_embedding_pool() -> ThreadPoolExecutor:
    """The threads that embed a query while the keyword leg runs; made on first use (no
    thread at import), a few at most: each runs one short forward pass at a time."""
    global _embed_pool
    with _embed_pool_lock:
        if _embed_pool is None:
            _embed_pool = ThreadPoolExecutor(
                max_workers=max(1, min(4, os.cpu_count() or 1)),
                thread_name_prefix="memos-query-embed",
            )
        return _embed_pool

_STOPWORDS = frozenset(
    [
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for",
        "from", "has", "have", "how", "i", "if", "in", "is", "it", "its", "me", "my", "no",
        "not", "of", "on", "or", "our", "should", "so", "than", "that", "the", "their", "them",
        "then", "there", "these", "they", "this", "to", "was", "we", "were", "what", "when",
        "where", "which", "who", "why", "will", "with", "would", "you", "your",
    ]
)


@dataclass(frozen=True)
class Ranked:
    """A place in the ranking, before the memory itself is read."""

    rowid: int
    rrf: float
    semantic_rank: int | None
    keyword_rank: int | None
    similarity: float | None


@dataclass(frozen=True)
class Candidate:
    """A retrieval result before access control and scheduling."""

    rowid: int
    memory: Memory
    rrf: float
    semantic_rank: int | None
    keyword_rank: int | None
    similarity: float | None


def fts_terms(text: str) -> list[str]:
    """User text -> safe FTS5 phrases: its content words, quoted, each once (at most 32).

    Stop words are dropped (they would make BM25 favour memories that merely
    share "the" or "is"); the index stems with Porter, so "backup" finds
    "backups".
    """
    words = [
        w for w in _WORD.findall(text.lower())
        if (len(w) > 1 or w.isdigit()) and w not in _STOPWORDS
    ]
    unique = list(dict.fromkeys(words))[:32]
    return ['"' + w.replace('"', '""') + '"' for w in unique]


def fts_query(text: str) -> str | None:
    """User text -> a safe FTS5 query: :func:`fts_terms` OR-ed (BM25 ranks the rest)."""
    return " OR ".join(fts_terms(text)) or None


class LiveVectors:
    """(vec_rows, rowids) of the memories in some states, cached per store generation.

    A use that activates a generated memory does not bump the generation (it
    changes no row's content or vector, and searching all retrievable states
    sees the same rows); it bumps ``activations``, which only the cache of a
    state set holding one of generated/activated without the other looks at.
    ``coarse``: the engine's first pass over many vectors (:mod:`runtime.engine.coarse`).
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.coarse = Coarse()
        self._key: tuple[str | None, str | None, tuple[str, ...]] | None = None
        self._live: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None

    def reset(self) -> None:
        self._live = None

    def rows(self, states: Sequence[State]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        wanted = frozenset(states)
        split = (State.GENERATED in wanted) != (State.ACTIVATED in wanted)
        key = (
            self._store.meta("generation"),
            self._store.meta("activations") if split else None,
            tuple(sorted(s.value for s in wanted)),
        )
        if self._live is None or self._key != key:
            pairs = self._store.live_vectors([s.value for s in states])
            arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
            self._live = (arr[:, 0].copy(), arr[:, 1].copy())
            self._key = key
        return self._live


def _semantic(
    query: str,
    *,
    store: Store,
    live: LiveVectors,
    vectors: Callable[[], VectorFile],
    embed_query: Callable[[str], npt.NDArray[np.float32]],
    filters: Filters,
    states: Sequence[State],
    candidates: int,
    floor: float,
) -> list[tuple[int, float]]:
    vec_rows, rowids = live.rows(states)
    if filters.symbolic and vec_rows.size:
        allowed = store.matching_rowids(filters, states)
        keep = np.fromiter((r in allowed for r in rowids.tolist()), dtype=bool, count=rowids.size)
        vec_rows, rowids = vec_rows[keep], rowids[keep]
    if not vec_rows.size:
        return []
    qv = embed_query(query)
    try:
        positions, scores = live.coarse.top(vectors(), qv, vec_rows, candidates)
    except (FileNotFoundError, IndexError):  # compacted meanwhile: read the new state
        live.reset()
        vec_rows, rowids = live.rows(states)
        positions, scores = live.coarse.top(vectors(), qv, vec_rows, candidates)
    return [
        (rowid, score)
        for rowid, score in zip(rowids[positions].tolist(), scores.tolist(), strict=True)
        if floor <= 0 or score >= floor
    ]


def ranked(
    query: str,
    *,
    store: Store,
    live: LiveVectors,
    vectors: Callable[[], VectorFile] | None,
    embed_query: Callable[[str], npt.NDArray[np.float32]],
    filters: Filters,
    states: Sequence[State],
    candidates: int,
    keyword: bool,
    floor: float,
) -> list[Ranked]:
    """Rank memories for ``query`` (see the module docstring), best first.

    ``vectors`` opens the vector file when semantic search needs it; ``None``: no semantic part.
    ``embed_query`` is the query's vector (the engine's, through its query cache).
    Ties on the fused score go to the higher priority, then the smaller id.
    """
    phrases = fts_terms(query) if keyword else []
    semantic = vectors is not None and bool(query.strip())
    embed = embed_query
    if semantic and phrases:
        # The query's embedding (most of a search's time, and all of it the model's:
        # ONNX Runtime and torch run without the interpreter lock) runs on another core
        # while this thread runs the keyword leg (SQLite, also without the lock), so the
        # search waits for the longer of the two instead of their sum. On a busy machine
        # it costs nothing: the same work, in the same process.
        pending = _query_embedding_pool().submit(embed_query, query)
        embed = lambda _query: pending.result()  # noqa: E731
    kw = store.keyword_in(phrases, filters, states, candidates) if phrases else []
    sem: list[tuple[int, float]] = []
    if semantic and vectors is not None:
        sem = _semantic(
            query, store=store, live=live, vectors=vectors, embed_query=embed,
            filters=filters, states=states, candidates=candidates, floor=floor,
        )
    if not sem and not kw and (filters.symbolic or not query.strip()):
        ordered = store.by_priority(filters, states, candidates)
        return [Ranked(r, 1.0 / (RRF_K + i + 1), None, None, None) for i, r in enumerate(ordered)]
    fused: dict[int, float] = {}
    sem_rank = {rowid: i + 1 for i, (rowid, _) in enumerate(sem)}
    kw_rank = {rowid: i + 1 for i, (rowid, _) in enumerate(kw)}
    sims = dict(sem)
    for ranks in (sem_rank, kw_rank):
        for rowid, rank in ranks.items():
            fused[rowid] = fused.get(rowid, 0.0) + 1.0 / (RRF_K + rank)
    keys = store.rank_keys(list(fused))
    out = [
        Ranked(rowid, score, sem_rank.get(rowid), kw_rank.get(rowid), sims.get(rowid))
        for rowid, score in fused.items()
        if rowid in keys
    ]
    out.sort(key=lambda c: (-c.rrf, -keys[c.rowid][0], keys[c.rowid][1]))
    return out


def hybrid(query: str, *, store: Store, **options: Any) -> list[Candidate]:
    """:func:`ranked`, every memory read (the scheduler weighs them all)."""
    order = ranked(query, store=store, **options)
    memories = store.by_rowids([r.rowid for r in order])
    return [_candidate(r, memories[r.rowid]) for r in order if r.rowid in memories]


def _candidate(r: Ranked, memory: Memory) -> Candidate:
    return Candidate(r.rowid, memory, r.rrf, r.semantic_rank, r.keyword_rank, r.similarity)


def visible_ranked(
    order: Sequence[Ranked], *, store: Store, principal: str | None, now: datetime, k: int
) -> tuple[list[Candidate], int]:
    """:func:`visible` over a ranking, reading the memories a page at a time until ``k``
    are chosen: the same choice and count as :func:`visible` over all of them."""
    chosen: list[Candidate] = []
    denied = 0
    page = max(k, 16)
    for start in range(0, len(order), page):
        part = order[start : start + page]
        memories = store.by_rowids([r.rowid for r in part])
        found = [_candidate(r, memories[r.rowid]) for r in part if r.rowid in memories]
        more, no = visible(found, principal=principal, now=now, k=k - len(chosen))
        chosen.extend(more)
        denied += no
        if len(chosen) >= k:
            break
    return chosen, denied


def visible(
    found: Sequence[Candidate], *, principal: str | None, now: datetime, k: int
) -> tuple[list[Candidate], int]:
    """The first ``k`` unexpired candidates ``principal`` may read, and how many it may not."""
    chosen: list[Candidate] = []
    denied = 0
    for cand in found:
        m = cand.memory
        if m.expires_at is not None and m.expires_at <= now:
            continue
        if not m.access.allows(principal):
            denied += 1
            continue
        chosen.append(cand)
        if len(chosen) >= k:
            break
    return chosen, denied
