"""The seams of the local engine: what it needs from the outside, as typing.Protocols.

The engine (store, scheduler, lifecycle) never imports torch or transformers.
Anything model-specific comes in through these interfaces:

* :class:`Embedder` turns texts into normalized vectors for semantic search
  (the real one wraps all-MiniLM-L6-v2, see :mod:`runtime.models.embedding`,
  and is chosen where the engine is built; unit tests use the fast
  deterministic :class:`runtime.engine.embedding.HashEmbedder`).
* :class:`ActivationBackend` is the *running* causal LM as the engine sees it:
  its fingerprint, its tokenizer, and a way to turn plaintext memories into a
  KV-cache payload (``runtime/models/`` implements it with transformers). The
  engine uses it for dynamic transformation (hot plaintext -> KV cache, cold
  caches demoted) and for the scheduler's latency decisions.
* :data:`Clock` is injected wherever time matters (TTL, recency, schedules).

Not here: any implementation. This module only imports the standard library,
numpy typing and the protocol's data model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from protocol import ModelFingerprint

__all__ = [
    "ActivationBackend",
    "Clock",
    "Embedder",
    "KVBuild",
    "LatencyProfile",
]

#: Returns the current time as an aware UTC datetime. ``datetime.now(UTC)`` in production.
Clock = Callable[[], datetime]


@runtime_checkable
class Embedder(Protocol):
    """Texts -> L2-normalized float32 vectors, one row per text."""

    @property
    def model_name(self) -> str:
        """The embedding model's name as written in MIP records (e.g. ``all-MiniLM-L6-v2``)."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def relevance_floor(self) -> float:
        """Cosine similarity below which a semantic-only match is noise, not a hit (0: keep all).

        Without it a search returns its top k whatever the query, and the
        scheduler fills prompts with unrelated memories. Keyword matches are kept.
        """
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Shape ``(len(texts), dimension)``, each row of unit length (or zero for empty text)."""
        ...


@dataclass(frozen=True)
class KVBuild:
    """What :meth:`ActivationBackend.build_kv` produced.

    ``path`` is one MIP KV-cache payload (safetensors: per-layer keys and
    values plus the exact prefix ``input_ids``) written inside ``out_dir``;
    ``token_count`` is the number of prefix tokens it caches; ``fingerprint``
    is the model it was built for (equal to ``backend.fingerprint()``).
    """

    path: Path
    token_count: int
    fingerprint: ModelFingerprint


@dataclass(frozen=True)
class LatencyProfile:
    """How fast the running model prefills text and loads caches, for the scheduler.

    Measured or estimated by the backend on the current machine. The scheduler
    estimates time-to-first-token of a plaintext memory as
    ``tokens / prefill_tokens_per_s`` and of a KV cache as
    ``cache_bytes / kv_load_bytes_per_s`` (+ ``kv_fixed_overhead_s``).
    """

    prefill_tokens_per_s: float
    kv_load_bytes_per_s: float
    kv_fixed_overhead_s: float = 0.0


@runtime_checkable
class ActivationBackend(Protocol):
    """The running causal LM, as the engine needs it. Implemented in runtime/models/."""

    def fingerprint(self) -> ModelFingerprint:
        """The running model's identity, computed exactly as the protocol specifies."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes with this model's tokenizer (no special tokens)."""
        ...

    def build_kv(self, texts: Sequence[str], out_dir: Path) -> KVBuild:
        """Prefill ``texts`` (joined in order, as the plaintext prefix would be) and write
        one KV-cache payload under ``out_dir``. Must not write outside ``out_dir``."""
        ...

    def latency_profile(self) -> LatencyProfile:
        """Throughputs used to decide between a KV cache and plaintext under a latency budget."""
        ...
