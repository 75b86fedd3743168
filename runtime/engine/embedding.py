"""The torch-free embedder: :class:`HashEmbedder`, fast, deterministic, dependency-free.

Feature hashing of words and character trigrams, L2-normalized. It is for
unit tests and for ``MEMOS_EMBEDDER=hash``; its vectors are not comparable
with MiniLM's.

Not here: the real model, all-MiniLM-L6-v2 (:mod:`runtime.models.embedding`,
which needs torch and transformers), or the choice between the two (made
where the engine is built, e.g. :class:`runtime.sdk.MemOS`). The engine never
imports torch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["HashEmbedder"]

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Feature hashing of words and character trigrams; normalized. Fast and deterministic."""

    def __init__(
        self, dimension: int = 384, model_name: str = "memos-hash-v1", relevance_floor: float = 0.2
    ) -> None:
        self._dimension = dimension
        self._name = model_name
        self._floor = relevance_floor

    @property
    def relevance_floor(self) -> float:
        """Shared hashed features, not meaning: unrelated texts reach about 0.2."""
        return self._floor

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def _features(self, text: str) -> list[str]:
        words = [w.lower() for w in _WORD.findall(text)]
        feats = list(words)
        for w in words:
            padded = f"#{w}#"
            feats.extend(padded[i : i + 3] for i in range(len(padded) - 2))
        return feats

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                digest = hashlib.blake2b(feat.encode("utf-8"), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value & 1 else -1.0
                out[row, (value >> 1) % self._dimension] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out
