"""The runtime's one exception tree: every coded error, models' included, is a MemosError."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runtime.cli.errors import render
from runtime.errors import MemosError
from runtime.models import (
    AdapterError,
    FingerprintMismatchError,
    KVCacheError,
    KVCombineRefusedError,
    ModelError,
    ModelLoadError,
)


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (ModelError, "model.error"),
        (ModelLoadError, "model.load_failed"),
        (KVCacheError, "model.kv_invalid"),
        (KVCombineRefusedError, "model.kv_combine_refused"),
        (AdapterError, "model.adapter_invalid"),
    ],
)
def test_model_errors_sit_under_memos_error_and_keep_their_codes(
    cls: type[ModelError], code: str
) -> None:
    exc = cls("it broke")
    assert isinstance(exc, MemosError)
    assert exc.code == code and str(exc) == "it broke"
    assert exc.to_dict() == {"code": code, "message": "it broke", "detail": {}}
    assert cls("x", code="model.not_found").code == "model.not_found"


def test_a_fingerprint_mismatch_keeps_its_fields_and_hint() -> None:
    exc = FingerprintMismatchError(
        "the cache", ["weights_sha256"], expected_model="a", running_model="b"
    )
    assert isinstance(exc, MemosError) and exc.code == "model.fingerprint_mismatch"
    assert exc.detail["fields"] == ["weights_sha256"] and exc.fields == ("weights_sha256",)
    code, message, hint, _ = render(exc)
    assert code == "model.fingerprint_mismatch" and "the cache" in message
    assert hint is not None and "memos kv info" in hint


def test_importing_the_model_errors_does_not_import_torch() -> None:
    probe = (
        "import sys, runtime.models, runtime.models.errors; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
