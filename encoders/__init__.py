"""Fast local text encoders, shared by the runtime (``memos``) and the registry.

Why a package of its own: both sides embed search queries with the same
all-MiniLM-L6-v2, and neither may import the other (``protocol`` ← ``runtime``;
``protocol`` ← ``memstore``). This package imports nothing of ours and no web
framework, so both can use one implementation.

What it offers: :func:`onnx_encoder` turns a sentence-transformers model folder
(mean pooling, L2 normalisation) into an ONNX Runtime encoder, built locally
from the shipped weights with torch's exporter, checked against the torch model
(cosine >= :data:`MIN_COSINE` on fixed probes) and cached, content-addressed, so
later processes load it in a fraction of a second. Nothing is downloaded.

Not here: choosing between this and the torch path (the callers' settings), the
model itself (a PyPI package), storing vectors.
"""

from __future__ import annotations

from ._errors import EncoderError
from .onnx_build import MIN_COSINE, default_cache_dir, onnx_encoder
from .onnx_session import OnnxSentenceEncoder

__all__ = [
    "MIN_COSINE",
    "EncoderError",
    "OnnxSentenceEncoder",
    "default_cache_dir",
    "onnx_encoder",
]
