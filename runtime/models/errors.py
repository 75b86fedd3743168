"""The exception tree of runtime.models: every error carries a stable ``code``.

Tree::

    ModelError                      model.*
    ├── ModelLoadError              model.load_failed, model.not_found
    ├── FingerprintMismatchError    model.fingerprint_mismatch
    ├── KVCacheError                model.kv_invalid
    │   └── KVCombineRefusedError   model.kv_combine_refused
    └── AdapterError                model.adapter_invalid, model.adapter_state

The CLI maps codes to hints in ``runtime.cli.errors``. This module imports
neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AdapterError",
    "FingerprintMismatchError",
    "KVCacheError",
    "KVCombineRefusedError",
    "ModelError",
    "ModelLoadError",
]


class ModelError(Exception):
    """Root of runtime.models errors; ``code`` is stable, ``message`` is for people."""

    default_code = "model.error"

    def __init__(self, message: str, *, code: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": dict(self.detail)}


class ModelLoadError(ModelError):
    default_code = "model.load_failed"


class FingerprintMismatchError(ModelError):
    """A KV cache or adapter was made for another model; nothing was loaded into the model."""

    default_code = "model.fingerprint_mismatch"

    def __init__(
        self, what: str, fields: Sequence[str], *, expected_model: str, running_model: str
    ) -> None:
        names = ", ".join(fields)
        hint = ""
        if "weights_sha256" in fields:
            hint = (
                " (the weights differ: another checkpoint or fine-tune of this model, or one "
                "loaded without its checkpoint files; load the exact checkpoint it names)"
            )
        super().__init__(
            f"{what} was made for model {expected_model!r}, not the running model "
            f"{running_model!r}; fingerprint fields that differ: {names}{hint}",
            fields=list(fields),
            expected_model=expected_model,
            running_model=running_model,
        )
        self.fields = tuple(fields)


class KVCacheError(ModelError):
    default_code = "model.kv_invalid"


class KVCombineRefusedError(KVCacheError):
    default_code = "model.kv_combine_refused"


class AdapterError(ModelError):
    default_code = "model.adapter_invalid"
