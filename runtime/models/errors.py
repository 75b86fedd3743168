"""The exception tree of runtime.models: every error carries a stable ``code``.

Tree (under the runtime's root, :class:`runtime.errors.MemosError`)::

    ModelError                      model.*
    ├── ModelLoadError              model.load_failed, model.not_found
    ├── FingerprintMismatchError    model.fingerprint_mismatch
    ├── KVCacheError                model.kv_invalid, model.kv_encoding_mismatch,
    │   │                           model.kv_position_limit, model.kv_unsupported, model.kv_empty
    │   └── KVCombineRefusedError   model.kv_combine_refused
    └── AdapterError                model.adapter_invalid, model.adapter_state

The CLI maps codes to hints in ``runtime.cli.errors``. This module imports
neither torch nor transformers. Not here: the rest of the runtime's errors
(:mod:`runtime.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import MemosError

__all__ = [
    "AdapterError",
    "FingerprintMismatchError",
    "KVCacheError",
    "KVCombineRefusedError",
    "ModelError",
    "ModelLoadError",
]


class ModelError(MemosError):
    """Root of runtime.models errors; ``code`` is stable, ``message`` is for people.

    ``str()`` is the message alone (notes and logs quote it), not ``[code] message``.
    """

    code = "model.error"

    def __str__(self) -> str:
        return self.message


class ModelLoadError(ModelError):
    code = "model.load_failed"


class FingerprintMismatchError(ModelError):
    """A KV cache or adapter was made for another model; nothing was loaded into the model."""

    code = "model.fingerprint_mismatch"

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
    code = "model.kv_invalid"


class KVCombineRefusedError(KVCacheError):
    code = "model.kv_combine_refused"


class AdapterError(ModelError):
    code = "model.adapter_invalid"
