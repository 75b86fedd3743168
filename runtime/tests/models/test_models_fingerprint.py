"""Fingerprints: stable for the same model, sensitive to config, tokenizer and dtype."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from protocol import ModelFingerprint, config_digest, tokenizer_digest
from runtime.models import FingerprintMismatchError, check_fingerprint
from runtime.models.backend import LoadedModel, compute_fingerprint

ROOT = Path(__file__).resolve().parents[3]


def test_fingerprint_is_stable_for_the_same_model(tiny_lm: LoadedModel) -> None:
    again = compute_fingerprint(tiny_lm.model, tiny_lm.tokenizer, "another label")
    assert again.mismatches(tiny_lm.fingerprint) == []
    assert again.config_sha256 == tiny_lm.fingerprint.config_sha256
    assert again.model_id == "another label"  # a label, not part of the identity


def test_fingerprint_does_not_depend_on_weights_or_build(
    make_lm: Callable[..., LoadedModel], tiny_lm: LoadedModel
) -> None:
    rebuilt = make_lm(seed=7)
    assert rebuilt.fingerprint.to_dict() | {"model_id": "x"} == tiny_lm.fingerprint.to_dict() | {
        "model_id": "x"
    }


def test_fingerprint_fields_follow_the_model(tiny_lm: LoadedModel) -> None:
    fp = tiny_lm.fingerprint
    assert (fp.architecture, fp.dtype, fp.num_layers, fp.num_kv_heads, fp.head_dim) == (
        "LlamaForCausalLM",
        "float32",
        2,
        2,
        16,
    )
    assert len(fp.config_sha256) == 64 and len(fp.tokenizer_sha256) == 64


def test_config_change_changes_config_digest(
    make_lm: Callable[..., LoadedModel], tiny_lm: LoadedModel
) -> None:
    other = make_lm(rope_theta=1234.0)
    assert other.fingerprint.mismatches(tiny_lm.fingerprint) == ["config_sha256"]


def test_tokenizer_change_changes_tokenizer_digest(
    make_lm: Callable[..., LoadedModel], make_tokenizer: Callable[..., Any], tiny_lm: LoadedModel
) -> None:
    other = make_lm(tokenizer=make_tokenizer(("<extra>",)))
    assert "tokenizer_sha256" in other.fingerprint.mismatches(tiny_lm.fingerprint)


def test_dtype_is_part_of_the_identity(make_lm: Callable[..., LoadedModel]) -> None:
    import torch

    lm = make_lm()
    lm.model.to(torch.bfloat16)
    half = compute_fingerprint(lm.model, lm.tokenizer, lm.model_id)
    assert half.dtype == "bfloat16"
    assert half.mismatches(lm.fingerprint) == ["dtype"]


def test_check_fingerprint_names_the_fields(tiny_lm: LoadedModel, other_lm: LoadedModel) -> None:
    with pytest.raises(FingerprintMismatchError) as info:
        check_fingerprint(other_lm.fingerprint, tiny_lm.fingerprint, what="KV cache x")
    assert info.value.code == "model.fingerprint_mismatch"
    assert set(info.value.fields) == {"config_sha256", "num_layers"}
    assert "num_layers" in info.value.message


def test_digests_follow_the_protocol_definition() -> None:
    assert config_digest(
        {"a": 1, "transformers_version": "9", "x": {"dtype": "f"}}
    ) == config_digest({"a": 1, "x": {}})
    one = tokenizer_digest({"a": 0, "b": 1}, {"bos_token": "a", "pad_token": None})
    assert one != tokenizer_digest({"a": 0, "b": 2}, {"bos_token": "a", "pad_token": None})
    fp = ModelFingerprint("A", "m", "0" * 64, "1" * 64, "float32", 1, 1, 1)
    assert fp.is_compatible(ModelFingerprint.from_dict(fp.to_dict() | {"model_id": "other"}))


def test_importing_runtime_and_models_does_not_import_torch() -> None:
    code = (
        "import sys, runtime, runtime.models, runtime.models.fingerprint;"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
