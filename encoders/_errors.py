"""The one exception of :mod:`encoders`, with a stable code for each way it fails."""

from __future__ import annotations

__all__ = ["EncoderError"]


class EncoderError(Exception):
    """An encoder could not be built or loaded; callers fall back to the torch path.

    Codes: ``encoder.unavailable`` (onnxruntime or the exporter is not installed),
    ``encoder.model`` (the model folder is not a sentence-transformers BERT folder),
    ``encoder.export`` (torch's exporter failed), ``encoder.mismatch`` (the ONNX
    model's vectors differ from the reference beyond the allowed cosine).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
