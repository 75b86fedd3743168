"""The engine's semantic index: which embedder and vector file a home uses, and its upkeep.

The first embedding fixes the home's model (``meta.embedding_model`` and
``embedding_dimension``); an engine opened later with another model is
refused (``engine.embedder_mismatch``), and one opened with no embedder can
read the vectors but not make new ones (``engine.no_embedder``). The vector
file is ``meta.vector_file`` (``vectors.f32`` until the first compaction);
another process may compact it, so the file is looked up again on each use.

Not here: choosing the embedder (done where the engine is built, see
:mod:`runtime.models.embedding`), searching (:mod:`runtime.engine.retrieval`),
SQL (:mod:`runtime.engine.store`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import EngineError
from .interfaces import Embedder
from .store import Store
from .types import NewMemory
from .vectors import VectorFile

__all__ = ["VectorIndex"]


class VectorIndex:
    """The embedder and the vector file of one engine folder (see the module docstring)."""

    def __init__(self, store: Store, folder: Path, embedder: Embedder | None) -> None:
        self._store = store
        self._dir = folder
        self._embedder = embedder
        self._file: VectorFile | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            raise EngineError(
                "this engine was opened without an embedder, so it cannot embed or search "
                "semantically",
                code="engine.no_embedder",
            )
        return self._embedder

    @property
    def indexed(self) -> bool:
        """Whether anything was ever embedded here (the model is fixed)."""
        return self._store.meta("embedding_model") is not None

    @property
    def file(self) -> VectorFile:
        store = self._store
        if self._file is None:
            name, dim = store.meta("embedding_model"), store.meta("embedding_dimension")
            if name is None:
                name, dim = self.embedder.model_name, str(self.embedder.dimension)
                store.set_meta("embedding_model", name)
                store.set_meta("embedding_dimension", dim)
            elif self._embedder is not None and name != self._embedder.model_name:
                raise EngineError(
                    f"this engine's vectors were made by {name}, not {self._embedder.model_name}",
                    code="engine.embedder_mismatch",
                )
            self._file = VectorFile(self._dir / self._file_name(), int(dim or 0))
        elif self._file.path.name != self._file_name():  # compacted by another process
            self._file = VectorFile(self._dir / self._file_name(), self._file.dimension)
        return self._file

    def _file_name(self) -> str:
        return self._store.meta("vector_file") or "vectors.f32"

    def embed_items(self, items: Sequence[NewMemory]) -> npt.NDArray[np.float32]:
        """Vectors for new memories: reuse a record's own embedding when it is from our model."""
        vectors = self.file
        out = np.zeros((len(items), vectors.dimension), dtype=np.float32)
        todo: list[int] = []
        model = self._store.meta("embedding_model") or ""
        for i, item in enumerate(items):
            if (
                item.embedding is not None
                and item.embedding_model is not None
                and item.embedding_model.rsplit("/", 1)[-1] == model
                and len(item.embedding) == vectors.dimension
            ):
                vec = np.asarray(item.embedding, dtype=np.float32)
                norm = float(np.linalg.norm(vec))
                out[i] = vec / norm if norm > 0 else vec
            else:
                todo.append(i)
        if todo:
            out[todo] = self.embedder.embed([items[i].text for i in todo])
        return out

    def compact(self) -> tuple[int, int, bool]:
        """Rewrite the vector file with only the rows memories refer to: (before, after, done).

        The caller holds the engine's write lock. Atomic: the new file is
        complete before one transaction renumbers the rows and names it; a
        crash before that leaves the old file in use.
        """
        if not self.indexed:
            return 0, 0, False
        old = self.file
        rows = self._store.vector_rows()
        total = old.count()
        if len(rows) == total:
            return total, total, False
        new = VectorFile(self._dir / f"vectors-{uuid.uuid4().hex[:12]}.f32", old.dimension)
        src = np.array([vec_row for _, vec_row in rows], dtype=np.int64)
        for start in range(0, len(src), 65536):
            new.append(old.rows(src[start : start + 65536]))
        if not rows:
            new.path.touch()
        self._store.renumber_vectors([rowid for rowid, _ in rows], new.path.name)
        for stale in self._dir.glob("vectors*.f32"):
            if stale.name != new.path.name:
                stale.unlink(missing_ok=True)
        self._file = new
        return total, len(rows), True
