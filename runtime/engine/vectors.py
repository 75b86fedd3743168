"""Exact vector search over a memory-mapped matrix of normalized float32 vectors.

``vectors.f32`` is a raw row-major float32 file, ``dimension`` floats per
row, only ever appended to (a changed memory gets a new row; old rows become
unreferenced). Rows are mapped to memories by the store (``memories.vec_row``).
Search is a brute-force dot product, so it is exact; at 100k x 384 that is
~40M multiply-adds, a few milliseconds (see bench/RESULTS.md). Appends happen
before the SQLite transaction that references them, so a crash leaves at most
unreferenced rows.

Not here: which rows are visible (the store decides) or embedding (embedders).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["VectorFile"]


class VectorFile:
    def __init__(self, path: Path, dimension: int) -> None:
        self.path = Path(path)
        self.dimension = dimension
        self._map: npt.NDArray[np.float32] | None = None
        self._rows = -1

    @property
    def row_bytes(self) -> int:
        return 4 * self.dimension

    def count(self) -> int:
        try:
            return self.path.stat().st_size // self.row_bytes
        except FileNotFoundError:
            if self._map is not None:  # replaced by a compaction: keep serving the mapping we have
                return self._rows
            return 0

    def append(self, vectors: npt.NDArray[np.float32]) -> int:
        """Append rows; return the index of the first. The caller holds the engine's write lock."""
        data = np.ascontiguousarray(vectors, dtype="<f4")
        if data.ndim != 2 or data.shape[1] != self.dimension:
            raise ValueError(f"vectors must have shape (n, {self.dimension})")
        with open(self.path, "ab") as fh:
            size = fh.tell()
            if size % self.row_bytes:  # a torn append from a crash: cut it off
                fh.truncate(size - size % self.row_bytes)
                size -= size % self.row_bytes
            first = size // self.row_bytes
            fh.write(data.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        return first

    def matrix(self) -> npt.NDArray[np.float32]:
        """All rows, memory-mapped (re-mapped when the file grew)."""
        rows = self.count()
        if rows == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._map is None or rows != self._rows:
            self._map = np.memmap(self.path, dtype="<f4", mode="r", shape=(rows, self.dimension))
            self._rows = rows
        return self._map

    def rows(self, indices: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        return np.asarray(self.matrix()[indices], dtype=np.float32)

    def top(
        self, query: npt.NDArray[np.float32], live: npt.NDArray[np.int64], k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The ``k`` best of the ``live`` rows (sorted, unique) by dot product.

        Returns (positions in ``live``, scores), best first.

        The product is taken over the whole matrix (one pass over contiguous
        memory, no copy) and then restricted to the live rows.
        """
        if live.size == 0 or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        matrix = self.matrix()
        if int(live[-1]) >= matrix.shape[0]:
            raise IndexError("the live rows are beyond this vector file: it was replaced")
        # einsum, not BLAS: one thread; OpenBLAS's threads made this 9 ms at 10k rows on a
        # busy machine (waiting for a core), einsum 0.7 ms (bench/runtime_search.py)
        all_scores = np.einsum("ij,j->i", matrix, np.asarray(query, dtype=np.float32))
        # ``live`` is sorted and unique, so same size means every row
        scores = all_scores if live.size == all_scores.size else all_scores[live]
        k = min(k, scores.size)
        part = np.argpartition(-scores, k - 1)[:k]
        order = part[np.argsort(-scores[part], kind="stable")]
        return order.astype(np.int64), scores[order].astype(np.float32)
