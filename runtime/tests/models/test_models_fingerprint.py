"""Fingerprints: stable for the same model, sensitive to config, tokenizer, dtype and checkpoint."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from protocol import ModelFingerprint, config_digest, tokenizer_digest, weights_digest
from runtime.models import FingerprintMismatchError, check_fingerprint
from runtime.models.causal_lm import LoadedModel, compute_fingerprint, load_model
from runtime.models.fingerprint import checkpoint_files, checkpoint_weights_digest
from runtime.models.kv import build_kv, load_kv

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


# --------------------------------------------------------------------------- weights (MIP 1.1)


def test_a_model_from_a_folder_is_bound_to_its_checkpoint(tiny_model_dir: Path) -> None:
    lm = load_model(tiny_model_dir, device="cpu")
    (weights,) = sorted(Path(tiny_model_dir).glob("*.safetensors"))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert lm.fingerprint.weights_sha256 == weights_digest({weights.name: digest})
    assert load_model(tiny_model_dir, device="cpu").fingerprint == lm.fingerprint


def test_a_cache_bound_to_weights_is_refused_by_a_fine_tune_with_the_same_config(
    tiny_model_dir: Path, make_lm: Callable[..., LoadedModel], tmp_path: Path
) -> None:
    tuned = make_lm(seed=11)  # same config and tokenizer, other weights: a "fine-tune"
    tuned.model.save_pretrained(tmp_path / "tuned")
    tuned.tokenizer.save_pretrained(tmp_path / "tuned")
    base = load_model(tiny_model_dir, device="cpu")
    other = load_model(tmp_path / "tuned", device="cpu")
    assert base.fingerprint.mismatches(other.fingerprint) == ["weights_sha256"]
    kv = build_kv(base, ["alice likes green tea"], tmp_path / "kv.safetensors").path
    with pytest.raises(FingerprintMismatchError) as info:
        load_kv(kv, other)
    assert info.value.fields == ("weights_sha256",)
    assert load_kv(kv, base).num_tokens > 0


def test_unbound_artefacts_still_load_and_unknown_weights_refuse_bound_ones(
    tiny_lm: LoadedModel, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from_folder = load_model(tiny_model_dir, device="cpu")
    assert tiny_lm.fingerprint.weights_sha256 is None  # built in memory: no checkpoint
    unbound = build_kv(tiny_lm, ["bob repairs bicycles"], tmp_path / "a.safetensors").path
    assert load_kv(unbound, from_folder).num_tokens > 0  # a MIP 1.0 artefact: config + shapes
    bound = build_kv(from_folder, ["bob repairs bicycles"], tmp_path / "b.safetensors").path
    with pytest.raises(FingerprintMismatchError) as info:
        load_kv(bound, tiny_lm)
    assert info.value.fields == ("weights_sha256",)


def test_checkpoint_files_prefer_the_named_gguf_then_safetensors(tmp_path: Path) -> None:
    assert checkpoint_weights_digest(tmp_path) is None
    (tmp_path / "pytorch_model.bin").write_bytes(b"b")
    assert [p.name for p in checkpoint_files(tmp_path)] == ["pytorch_model.bin"]
    for name in ("model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors"):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "model.gguf").write_bytes(b"g")
    assert [p.name for p in checkpoint_files(tmp_path)] == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    assert [p.name for p in checkpoint_files(tmp_path, "model.gguf")] == ["model.gguf"]
    assert checkpoint_weights_digest(tmp_path, "model.gguf") == weights_digest(
        {"model.gguf": hashlib.sha256(b"g").hexdigest()}
    )
