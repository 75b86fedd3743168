"""A first pass for semantic search over many vectors: a smaller copy of the matrix, in memory.

Exact search reads the whole float32 matrix for every query (153.6 MB at
100k memories of 384 floats: ~8 ms on this machine's memory bandwidth, the
largest part of a search once keyword ranking was bounded). :class:`Coarse`
keeps the rows projected onto the matrix's top :data:`DIMS` principal
directions (uncentred: the directions that best keep dot products), a third
of the bytes, scores every live row with that, and re-scores the best
:data:`RESCORE` (at least ``k``) exactly from the memory-mapped file: the
scores returned are exact dot products, only the choice of which rows to
re-score is approximate. At 100k real MiniLM vectors (200 held-out queries,
bench/runtime_search.py) recall@10 against exact search was 0.9995 and
recall@50 0.998; the semantic search took 2.8-3.3 / 4.3-7.6 ms p50 / p95
against 8.4-20 / 18-33 ms for exact search in the same conditions (four
runs, load average 4-6).

The copy is built in a background thread, started by the second search of a
process over a file of at least :data:`MIN_ROWS` rows (a process that
searches once, as ``memos search`` does, would not gain; 0.4-3 s at 100k on
the busy 2-core machine: a sample fixes the directions, then every row is
projected); searches until it is ready are exact. It is extended as rows
are appended and rebuilt when the file is replaced (compaction) or has
doubled since the directions were chosen. It costs ``DIMS * 4`` bytes of
memory per row (51 MB at 100k).
Smaller files, and searches restricted to few live rows, are searched
exactly (:meth:`runtime.engine.vectors.VectorFile.top`).

Not here: which rows are live (:class:`runtime.engine.retrieval.LiveVectors`),
the file itself (:mod:`runtime.engine.vectors`).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .vectors import VectorFile

__all__ = ["DIMS", "MIN_ROWS", "RESCORE", "Coarse"]

DIMS = 128
MIN_ROWS = 32_768
RESCORE = 1000
_SAMPLE = 8192
_START_AT = 2  # the first build waits for a process's second search: the CLI's one is exact
_BLOCK = 16_384


class Coarse:
    """The projected rows of one vector file (see the module docstring). Thread-safe."""

    def __init__(
        self,
        *,
        dims: int = DIMS,
        min_rows: int = MIN_ROWS,
        rescore: int = RESCORE,
        background: bool = True,
    ) -> None:
        self.dims, self.min_rows, self.rescore = dims, min_rows, rescore
        self.background = background
        self._lock = threading.Lock()
        self._current: _Projection | None = None
        self._building = False
        self._asked = 0

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Wait for a build under way (benchmarks measure the steady state); whether none is."""
        deadline = time.monotonic() + timeout_s
        while self._building and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._building

    def top(
        self,
        vectors: VectorFile,
        query: npt.NDArray[np.float32],
        live: npt.NDArray[np.int64],
        k: int,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """As :meth:`VectorFile.top <runtime.engine.vectors.VectorFile.top>`: the ``k`` best
        ``live`` rows (sorted, unique) as (positions in ``live``, exact scores), best first."""
        matrix = vectors.matrix()
        pool = max(self.rescore, k)
        if (
            k <= 0
            or matrix.shape[0] < self.min_rows
            or vectors.dimension <= self.dims
            or live.size <= 2 * pool
        ):
            return vectors.top(query, live, k)
        if int(live[-1]) >= matrix.shape[0]:
            raise IndexError("the live rows are beyond this vector file: it was replaced")
        projection = self.ready(vectors.path, matrix)
        if projection is None:
            return vectors.top(query, live, k)
        q = np.asarray(query, dtype=np.float32)
        # einsum, not BLAS: one thread at memory speed; OpenBLAS's threads cost more CPU
        # than they save on a product this size and wait for a core on a busy machine
        rough = np.einsum("ij,j->i", projection.rows[: matrix.shape[0]], q @ projection.basis)
        rough = rough if live.size == rough.size else rough[live]
        pool_at = np.argpartition(-rough, pool - 1)[:pool]
        pool_at.sort()  # ascending rows: the exact re-read walks the file forwards
        exact = np.einsum("ij,j->i", np.asarray(matrix[live[pool_at]], dtype=np.float32), q)
        k = min(k, exact.size)
        best = np.argpartition(-exact, k - 1)[:k]
        best = best[np.argsort(-exact[best], kind="stable")]
        return pool_at[best].astype(np.int64), exact[best].astype(np.float32)

    def ready(self, path: Path, matrix: npt.NDArray[np.float32]) -> _Projection | None:
        """The projection covering every row of ``matrix``, or None (search exactly) while it
        is built or another thread holds it. Never waits: a build of more than :data:`_BLOCK`
        rows runs in a background thread (or here, when ``background`` is false)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._building:
                return None
            current = self._current
            count = matrix.shape[0]
            if (
                current is not None
                and current.path == path
                and current.covers(count)
                and count - current.filled <= _BLOCK  # a few appended rows: project them now
            ):
                current.extend(matrix)
                return current
            self._asked += 1
            if current is None and self._asked < _START_AT:
                return None
            self._building = True
        finally:
            self._lock.release()
        if not self.background:
            self._build(path, matrix)
            return self._current
        threading.Thread(target=self._build, args=(path, matrix), daemon=True).start()
        return None

    def _build(self, path: Path, matrix: npt.NDArray[np.float32]) -> None:
        try:
            current = self._current
            if current is None or current.path != path or not current.covers(matrix.shape[0]):
                current = _Projection(path, _principal(matrix, self.dims), matrix.shape[0])
            current.extend(matrix)
            with self._lock:
                self._current = current
        finally:
            with self._lock:
                self._building = False


class _Projection:
    """The rows of one vector file times one basis, with room to grow."""

    def __init__(self, path: Path, basis: npt.NDArray[np.float32], basis_rows: int) -> None:
        self.path, self.basis, self.basis_rows = path, basis, basis_rows
        self.rows = np.empty((basis_rows, basis.shape[1]), dtype=np.float32)
        self.filled = 0

    def covers(self, count: int) -> bool:
        """Whether this basis may serve a file of ``count`` rows: not cut back (replaced),
        not doubled since the basis was chosen (its directions may have drifted)."""
        return self.filled <= count < 2 * self.basis_rows

    def extend(self, matrix: npt.NDArray[np.float32]) -> None:
        """Project the rows of ``matrix`` not projected yet (by one thread at a time: the
        lock's holder, or the build while no search may extend). A search using the
        projection meanwhile reads rows below ``filled`` only, which never change."""
        count = matrix.shape[0]
        if count > self.rows.shape[0]:  # room for growth, so appends copy rarely
            size = (max(count, self.rows.shape[0] * 5 // 4), self.basis.shape[1])
            grown = np.empty(size, dtype=np.float32)
            grown[: self.filled] = self.rows[: self.filled]
            self.rows = grown
        for start in range(self.filled, count, _BLOCK):
            stop = min(count, start + _BLOCK)
            self.rows[start:stop] = np.asarray(matrix[start:stop], np.float32) @ self.basis
        self.filled = max(self.filled, count)


def _principal(matrix: npt.NDArray[np.float32], dims: int) -> npt.NDArray[np.float32]:
    """The top ``dims`` eigenvectors of the rows' second-moment matrix, from a sample."""
    step = max(1, matrix.shape[0] // _SAMPLE)
    sample = np.asarray(matrix[::step], dtype=np.float64)
    _, vectors = np.linalg.eigh(sample.T @ sample)
    return np.ascontiguousarray(vectors[:, ::-1][:, :dims], dtype=np.float32)
