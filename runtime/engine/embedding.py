"""The torch-free embedder :class:`HashEmbedder`, and :class:`QueryCache` of query vectors.

:class:`HashEmbedder`: feature hashing of words and character trigrams,
L2-normalized. It is for unit tests and for ``MEMOS_EMBEDDER=hash``; its
vectors are not comparable with MiniLM's.

:class:`QueryCache`: search embeds its query with the model on every call
(MiniLM: tens of ms on a CPU, more than the search over 10k memories); agents
repeat queries, so the engine keeps the last vectors, keyed by the embedder's
fingerprint and the query with its whitespace normalized (every embedder here
splits on whitespace, so that changes no vector). Bounded, LRU, thread-safe.

Not here: the real model, all-MiniLM-L6-v2 (:mod:`runtime.models.embedding`,
which needs torch and transformers), or the choice between the two (made
where the engine is built, e.g. :class:`runtime.sdk.MemOS`). The engine never
imports torch.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .interfaces import Embedder

__all__ = ["HashEmbedder", "QueryCache", "embedder_fingerprint"]

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


def embedder_fingerprint(embedder: Embedder) -> str:
    """What identifies the vectors an embedder makes: its class, model name and dimension
    (or its own ``fingerprint`` attribute when it has one)."""
    own = getattr(embedder, "fingerprint", None)
    if isinstance(own, str) and own:
        return own
    kind = type(embedder)
    return f"{kind.__module__}.{kind.__qualname__}:{embedder.model_name}:{embedder.dimension}"


def _normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


class QueryCache:
    """The last ``size`` query vectors, keyed by (embedder fingerprint, normalized text)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._vectors: OrderedDict[tuple[str, str], npt.NDArray[np.float32]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._vectors)

    def vector(self, embedder: Embedder, query: str) -> npt.NDArray[np.float32]:
        """``embedder.embed([query])[0]``, from the cache when it was asked before (read-only)."""
        key = (embedder_fingerprint(embedder), _normalize(query))
        with self._lock:
            found = self._vectors.get(key)
            if found is not None:
                self._vectors.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        # The model runs outside the lock: other threads' hits need not wait for it.
        vec = np.array(embedder.embed([query])[0], dtype=np.float32)
        vec.setflags(write=False)
        if self.size > 0:
            with self._lock:
                self._vectors[key] = vec
                self._vectors.move_to_end(key)
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return vec
