"""Parameter memory on tiny random models: consolidate, attach, detach, refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from protocol import read_safetensors_header
from runtime.models import AdapterError, FingerprintMismatchError
from runtime.models import lora as loramod
from runtime.models.causal_lm import LoadedModel
from runtime.models.kv import build_kv
from runtime.models.lora import attach_adapter, consolidate, detach_adapter, read_adapter

MEMORIES = ["alice likes green tea in the morning", "bob repairs old bicycles on sundays"]


def _logits(lm: LoadedModel, text: str = "alice likes") -> torch.Tensor:
    with torch.no_grad():
        return lm.model(input_ids=torch.tensor([lm.encode(text)])).logits


@pytest.fixture(scope="module")
def adapter(
    tiny_lm: LoadedModel, tmp_path_factory: pytest.TempPathFactory
) -> loramod.ConsolidateResult:
    return consolidate(
        tiny_lm, MEMORIES, tmp_path_factory.mktemp("lora"), steps=12, learning_rate=1e-2
    )


def test_consolidate_writes_a_valid_adapter_payload(
    tiny_lm: LoadedModel, adapter: loramod.ConsolidateResult
) -> None:
    config = json.loads(adapter.config_path.read_text("utf-8"))
    assert config["peft_type"] == "LORA" and config["r"] == 8
    assert config["target_modules"] == ["q_proj", "v_proj"]
    assert config["base_model_name_or_path"] == tiny_lm.model_id
    with open(adapter.weights_path, "rb") as fh:
        header = read_safetensors_header(fh, adapter.weights_path.stat().st_size)
    assert header.tensors and all("lora_" in name for name in header.tensors)
    assert len(header.tensors) == 2 * 2 * tiny_lm.fingerprint.num_layers  # A, B x q, v
    assert adapter.losses[-1] < adapter.losses[0]
    assert sorted(p.name for p in adapter.config_path.parent.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]


def test_consolidate_leaves_the_base_model_unchanged(tiny_lm: LoadedModel, tmp_path: Path) -> None:
    before = _logits(tiny_lm)
    consolidate(tiny_lm, MEMORIES, tmp_path, steps=2)
    assert torch.equal(_logits(tiny_lm), before)
    assert tiny_lm.adapter is None
    assert all(p.requires_grad for p in tiny_lm.model.parameters())


def test_attach_changes_outputs_and_detach_restores_them_exactly(
    tiny_lm: LoadedModel, adapter: loramod.ConsolidateResult
) -> None:
    before = _logits(tiny_lm)
    attach_adapter(tiny_lm, adapter.config_path, adapter.weights_path)
    try:
        assert tiny_lm.adapter == "memory"
        assert not torch.allclose(_logits(tiny_lm), before)
    finally:
        detach_adapter(tiny_lm)
    assert tiny_lm.adapter is None
    assert torch.equal(_logits(tiny_lm), before)
    assert all(p.requires_grad for p in tiny_lm.model.parameters())
    assert type(tiny_lm.model).__name__ == "LlamaForCausalLM"


def test_adapter_for_another_model_is_refused_before_touching_it(
    other_lm: LoadedModel, adapter: loramod.ConsolidateResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_before = other_lm.model
    logits = _logits(other_lm)

    def no_tensor_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("adapter tensors were read before the fingerprint check")

    monkeypatch.setattr(loramod, "safe_open", no_tensor_read)
    with pytest.raises(FingerprintMismatchError) as info:
        attach_adapter(other_lm, adapter.config_path, adapter.weights_path)
    assert "num_layers" in info.value.fields
    assert other_lm.model is model_before and other_lm.adapter is None
    assert torch.equal(_logits(other_lm), logits)


def test_pickled_weights_are_never_loaded(
    tiny_lm: LoadedModel, adapter: loramod.ConsolidateResult, tmp_path: Path
) -> None:
    binfile = tmp_path / "adapter_model.bin"
    binfile.write_bytes(b"\x80\x04\x95 not a safetensors file")
    with pytest.raises(AdapterError, match="safetensors"):
        attach_adapter(tiny_lm, adapter.config_path, binfile)
    disguised = tmp_path / "adapter_model.safetensors"
    disguised.write_bytes(b"\x80\x04\x95" + b"\0" * 64)
    with pytest.raises(AdapterError, match="pickle"):
        attach_adapter(tiny_lm, adapter.config_path, disguised)
    assert tiny_lm.adapter is None


def test_non_lora_config_and_tensors_are_refused(
    tiny_lm: LoadedModel, adapter: loramod.ConsolidateResult, tmp_path: Path
) -> None:
    from safetensors.torch import save_file

    bad_config = tmp_path / "adapter_config.json"
    bad_config.write_text(json.dumps({"peft_type": "PROMPT_TUNING"}), "utf-8")
    with pytest.raises(AdapterError, match="peft_type"):
        read_adapter(bad_config, adapter.weights_path)
    weights = tmp_path / "w.safetensors"
    save_file({"model.embed_tokens.weight": torch.zeros(2, 2)}, str(weights))
    with pytest.raises(AdapterError, match="lora_"):
        read_adapter(adapter.config_path, weights, expected=tiny_lm.fingerprint)


def test_attaching_twice_and_detaching_nothing_are_refused(
    tiny_lm: LoadedModel, adapter: loramod.ConsolidateResult
) -> None:
    with pytest.raises(AdapterError) as info:
        detach_adapter(tiny_lm)
    assert info.value.code == "model.adapter_state"
    attach_adapter(tiny_lm, adapter.config_path, adapter.weights_path)
    try:
        with pytest.raises(AdapterError, match="already attached"):
            attach_adapter(tiny_lm, adapter.config_path, adapter.weights_path)
    finally:
        detach_adapter(tiny_lm)


def test_kv_work_is_refused_while_an_adapter_is_attached(
    tiny_lm: LoadedModel, adapter: loramod.ConsolidateResult, tmp_path: Path
) -> None:
    attach_adapter(tiny_lm, adapter.config_path, adapter.weights_path)
    try:
        with pytest.raises(AdapterError) as info:
            build_kv(tiny_lm, MEMORIES, tmp_path / "kv.safetensors")
        assert info.value.code == "model.adapter_state"
    finally:
        detach_adapter(tiny_lm)


def test_consolidate_refuses_no_memories(tiny_lm: LoadedModel, tmp_path: Path) -> None:
    with pytest.raises(AdapterError):
        consolidate(tiny_lm, [], tmp_path)
