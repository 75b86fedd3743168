"""SmolLM2 end to end: fingerprint, KV cache in a signed pack, refusal, LoRA (model tier)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from protocol import MemoryRecord, SigningKey, pack_directory, read_pack, weights_digest
from runtime.models import FingerprintMismatchError
from runtime.models.causal_lm import (
    LoadedModel,
    compute_fingerprint,
    greedy_generate,
    smollm2_location,
)
from runtime.models.kv import (
    build_kv,
    default_template,
    generate_with_kv,
    generate_with_prefix,
    load_kv,
    prompt_ids,
)
from runtime.models.lora import attach_adapter, detach_adapter
from runtime.models.packs import build_model_pack_source, open_model_memory

pytestmark = pytest.mark.model

MEMORIES = [
    "The MemStore project codename is Bluefin.",
    "Alice's favourite drink is green tea with mint.",
    "The staging server restarts every Sunday at 03:00 UTC.",
]
QUERY = "What is the project codename?"

# Pinned: a change means caches made earlier no longer load (new transformers GGUF mapping?).
SMOLLM2_CONFIG_SHA256 = "2a9571d841fd98070bde4dcbff90ac27308d1331b675102cc72a86c57130bf8e"
SMOLLM2_TOKENIZER_SHA256 = "8524afe46ff294f25a8c17fb54f397c49fa0c77649258e62105a6b9c1fe95a4e"


def test_smollm2_fingerprint_is_stable(smollm2: LoadedModel) -> None:
    fp = smollm2.fingerprint
    assert (fp.architecture, fp.dtype, fp.num_layers, fp.num_kv_heads, fp.head_dim) == (
        "LlamaForCausalLM",
        "float32",
        30,
        3,
        64,
    )
    assert fp.config_sha256 == SMOLLM2_CONFIG_SHA256
    assert fp.tokenizer_sha256 == SMOLLM2_TOKENIZER_SHA256
    # Bound to the GGUF file the package ships (MIP 1.1 weights_sha256).
    folder, name = smollm2_location()
    gguf_sha256 = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    assert fp.weights_sha256 == weights_digest({name: gguf_sha256})
    again = compute_fingerprint(
        smollm2.model, smollm2.tokenizer, fp.model_id, weights_sha256=fp.weights_sha256
    )
    assert again == fp


def test_chat_template_prompt_tokenizes_the_same_split_or_whole(smollm2: LoadedModel) -> None:
    tpl = default_template(smollm2)
    assert tpl.name == "chatml"
    prefix, query = prompt_ids(smollm2, MEMORIES, QUERY)
    assert smollm2.encode(tpl.prefix(MEMORIES) + tpl.query_text(QUERY)) == prefix + query


def test_signed_pack_kv_injection_gives_identical_greedy_tokens(
    smollm2: LoadedModel, tmp_path: Path
) -> None:
    records = [MemoryRecord(id=f"m{i}", text=t) for i, t in enumerate(MEMORIES)]
    source = build_model_pack_source(
        smollm2, records, tmp_path / "src", name="acme/smollm2-notes", with_lora=False
    )
    pack = pack_directory(source, tmp_path / "p.memcube", keys=[SigningKey.generate()])
    assert pack.manifest.memory_types == ["activation", "plaintext"]
    memory = open_model_memory(read_pack(tmp_path / "p.memcube", target=tmp_path / "installed"))
    ((cube, path),) = memory.kv
    loaded = load_kv(path, smollm2, expected=cube.model)
    with_kv = generate_with_kv(smollm2, loaded, QUERY, max_new_tokens=8)
    plain = generate_with_prefix(smollm2, memory.texts, QUERY, max_new_tokens=8)
    assert with_kv.tokens == plain.tokens
    assert "Bluefin" in with_kv.text


def test_cache_from_another_model_is_refused_before_touching_smollm2(
    smollm2: LoadedModel, tmp_path: Path
) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(smollm2.tokenizer),
        hidden_size=192,
        intermediate_size=256,
        num_hidden_layers=30,
        num_attention_heads=3,
        num_key_value_heads=3,  # same cache shapes as SmolLM2: 30 x 3 x 64
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    impostor = LoadedModel.from_parts(LlamaForCausalLM(config), smollm2.tokenizer, "impostor")
    path = build_kv(impostor, MEMORIES[:1], tmp_path / "kv.safetensors").path
    calls: list[Any] = []
    handle = smollm2.model.register_forward_pre_hook(lambda *a: calls.append(a))
    try:
        with pytest.raises(FingerprintMismatchError) as info:
            load_kv(path, smollm2)
    finally:
        handle.remove()
    assert info.value.fields == ("config_sha256",)
    assert calls == []


def test_consolidated_adapter_attaches_and_detach_restores_outputs(
    smollm2: LoadedModel, tmp_path: Path
) -> None:
    import torch

    from runtime.models.lora import consolidate

    ids = torch.tensor([smollm2.encode("The project codename is")])
    with torch.no_grad():
        before = smollm2.model(input_ids=ids).logits
    result = consolidate(smollm2, MEMORIES, tmp_path / "lora", steps=30)
    question = prompt_ids(smollm2, [], QUERY)[1]
    bare = greedy_generate(smollm2, smollm2.encode("") + question, max_new_tokens=12)
    attach_adapter(smollm2, result.config_path, result.weights_path)
    try:
        with torch.no_grad():
            attached = smollm2.model(input_ids=ids).logits
        # Mem-training: the fact is in the weights now, with no memory in the prompt.
        learned = greedy_generate(smollm2, smollm2.encode("") + question, max_new_tokens=12)
    finally:
        detach_adapter(smollm2)
    with torch.no_grad():
        after = smollm2.model(input_ids=ids).logits
    assert not torch.equal(attached, before)
    assert torch.equal(after, before)
    assert "Bluefin" in learned.text and "Bluefin" not in bare.text
