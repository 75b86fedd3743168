"""Activation memory on tiny random models: build, check, load, inject, refuse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from protocol import fingerprint_digest, kv_tensor_name, read_safetensors_header
from runtime.models import FingerprintMismatchError, KVCacheError, KVCombineRefusedError
from runtime.models import kv as kvmod
from runtime.models.attention import SharedPrefixLayer, use_grouped_sdpa
from runtime.models.causal_lm import LoadedModel, greedy_generate
from runtime.models.kv import (
    build_kv,
    combine_kv,
    generate_with_kv,
    generate_with_prefix,
    load_kv,
    prompt_ids,
    read_kv_fingerprint,
)

MEMORIES = ["alice likes green tea in the morning", "bob repairs old bicycles on sundays"]
QUERIES = ["what does alice like", "who repairs bicycles", "the cat"]


@pytest.fixture(scope="module")
def kv_file(tiny_lm: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_kv(tiny_lm, MEMORIES, tmp_path_factory.mktemp("kv") / "kv.safetensors").path


def test_payload_follows_the_protocol_format(tiny_lm: LoadedModel, kv_file: Path) -> None:
    with open(kv_file, "rb") as fh:
        header = read_safetensors_header(fh, kv_file.stat().st_size)
    fp = tiny_lm.fingerprint
    assert header.metadata["mip.kind"] == "kv-cache"
    assert header.metadata["mip.fingerprint"] == fingerprint_digest(fp)
    prefix, _ = prompt_ids(tiny_lm, MEMORIES, "x")
    ids = header.tensors["input_ids"]
    assert (ids.dtype, ids.shape) == ("I64", (len(prefix),))
    key = header.tensors[kv_tensor_name(fp.num_layers - 1, "value")]
    assert (key.dtype, key.shape) == ("F32", (1, fp.num_kv_heads, len(prefix), fp.head_dim))
    assert len(header.tensors) == 1 + 2 * fp.num_layers
    assert read_kv_fingerprint(kv_file).mismatches(fp) == []


def test_loaded_cache_holds_the_exact_prefix_tokens(tiny_lm: LoadedModel, kv_file: Path) -> None:
    loaded = load_kv(kv_file, tiny_lm)
    prefix, _ = prompt_ids(tiny_lm, MEMORIES, "anything")
    assert list(loaded.input_ids) == prefix
    assert loaded.num_tokens == len(prefix)


@pytest.mark.parametrize("query", QUERIES)
def test_injected_cache_gives_the_same_greedy_tokens_as_plaintext(
    tiny_lm: LoadedModel, kv_file: Path, query: str
) -> None:
    loaded = load_kv(kv_file, tiny_lm)
    with_kv = generate_with_kv(tiny_lm, loaded, query, max_new_tokens=12)
    plain = generate_with_prefix(tiny_lm, MEMORIES, query, max_new_tokens=12)
    assert with_kv.tokens == plain.tokens
    assert with_kv.cached_tokens == loaded.num_tokens and plain.cached_tokens == 0


def test_loaded_tensors_are_not_changed_by_generation(tiny_lm: LoadedModel, kv_file: Path) -> None:
    loaded = load_kv(kv_file, tiny_lm)
    before = loaded.keys[0].clone()
    first = generate_with_kv(tiny_lm, loaded, QUERIES[0], max_new_tokens=5)
    second = generate_with_kv(tiny_lm, loaded, QUERIES[0], max_new_tokens=5)
    assert torch.equal(loaded.keys[0], before) and first.tokens == second.tokens


def test_cache_for_another_model_is_refused_before_touching_it(
    tiny_lm: LoadedModel, other_lm: LoadedModel, kv_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    handle = other_lm.model.register_forward_pre_hook(lambda *a: calls.append(a))

    def no_tensor_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("tensors were opened before the fingerprint check")

    monkeypatch.setattr(kvmod, "MappedTensors", no_tensor_read)
    try:
        with pytest.raises(FingerprintMismatchError) as info:
            load_kv(kv_file, other_lm)
    finally:
        handle.remove()
    assert info.value.code == "model.fingerprint_mismatch"
    assert {"num_layers", "config_sha256"} <= set(info.value.fields)
    assert calls == []


def test_loaded_cache_is_refused_by_another_model_at_injection(
    tiny_lm: LoadedModel, other_lm: LoadedModel, kv_file: Path
) -> None:
    loaded = load_kv(kv_file, tiny_lm)
    with pytest.raises(FingerprintMismatchError):
        generate_with_kv(other_lm, loaded, "hello")


def test_same_shapes_but_other_config_is_refused(
    make_lm: Callable[..., LoadedModel], kv_file: Path
) -> None:
    twin = make_lm(rope_theta=777.0)  # same tensor shapes, different model
    with pytest.raises(FingerprintMismatchError) as info:
        load_kv(kv_file, twin)
    assert info.value.fields == ("config_sha256",)


def test_manifest_fingerprint_must_match_the_header(
    tiny_lm: LoadedModel, other_lm: LoadedModel, kv_file: Path
) -> None:
    with pytest.raises(KVCacheError) as info:
        load_kv(kv_file, tiny_lm, expected=other_lm.fingerprint)
    assert info.value.code == "model.kv_fingerprint_digest"


def test_pickle_and_garbage_are_refused(tiny_lm: LoadedModel, tmp_path: Path) -> None:
    pickled = tmp_path / "kv.safetensors"
    pickled.write_bytes(b"\x80\x04\x95" + b"\0" * 64)
    with pytest.raises(KVCacheError, match="pickle"):
        load_kv(pickled, tiny_lm)


def test_payload_with_missing_layer_is_refused(tiny_lm: LoadedModel, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = build_kv(tiny_lm, MEMORIES, tmp_path / "a.safetensors").path
    with open(path, "rb") as fh:
        meta = read_safetensors_header(fh, path.stat().st_size).metadata
    tensors = load_file(str(path))
    del tensors[kv_tensor_name(1, "key")]
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(KVCacheError, match=r"layers\.1\.key"):
        load_kv(path, tiny_lm)


def test_combining_caches_is_refused_with_the_reason(tiny_lm: LoadedModel, tmp_path: Path) -> None:
    one = load_kv(build_kv(tiny_lm, MEMORIES[:1], tmp_path / "1.safetensors").path, tiny_lm)
    two = load_kv(build_kv(tiny_lm, MEMORIES[1:], tmp_path / "2.safetensors").path, tiny_lm)
    assert combine_kv([one]) is one
    with pytest.raises(KVCombineRefusedError) as info:
        combine_kv([one, two])
    assert info.value.code == "model.kv_combine_refused"
    assert "RoPE" in info.value.message and "one cache" in info.value.message


def test_naive_concatenation_would_change_the_output(tiny_lm: LoadedModel, tmp_path: Path) -> None:
    """Why combining is refused: two independent caches glued together != the joint prefix."""
    one = load_kv(build_kv(tiny_lm, MEMORIES[:1], tmp_path / "1.safetensors").path, tiny_lm)
    two = load_kv(build_kv(tiny_lm, MEMORIES[1:], tmp_path / "2.safetensors").path, tiny_lm)
    glued = DynamicCache(config=tiny_lm.config)
    for i in range(tiny_lm.fingerprint.num_layers):
        glued.update(
            torch.cat([one.keys[i], two.keys[i]], 2),
            torch.cat([one.values[i], two.values[i]], 2),
            i,
        )
    ids = [*one.input_ids, *two.input_ids]
    query = tiny_lm.encode(" who", add_special_tokens=False)
    with torch.no_grad():
        wrong = tiny_lm.model(input_ids=torch.tensor([query]), cache=glued).logits[0, -1]
        right = tiny_lm.model(input_ids=torch.tensor([ids + query])).logits[0, -1]
    assert not torch.allclose(wrong, right, atol=1e-4)


def test_one_cache_from_several_cubes_texts_matches_plaintext(
    tiny_lm: LoadedModel, tmp_path: Path
) -> None:
    cube_a, cube_b = ["the cat sat on the mat"], MEMORIES
    joint = load_kv(build_kv(tiny_lm, [*cube_a, *cube_b], tmp_path / "j.safetensors").path, tiny_lm)
    got = generate_with_kv(tiny_lm, joint, "where is the cat", max_new_tokens=8)
    want = generate_with_prefix(tiny_lm, [*cube_a, *cube_b], "where is the cat", max_new_tokens=8)
    assert got.tokens == want.tokens


def test_build_refuses_empty_memories(tiny_lm: LoadedModel, tmp_path: Path) -> None:
    with pytest.raises(KVCacheError) as info:
        build_kv(tiny_lm, [], tmp_path / "x.safetensors")
    assert info.value.code == "model.kv_empty"
    assert not (tmp_path / "x.safetensors").exists()


def test_unknown_template_is_refused(tiny_lm: LoadedModel, tmp_path: Path) -> None:
    with pytest.raises(KVCacheError, match="unknown prompt template"):
        build_kv(tiny_lm, MEMORIES, tmp_path / "x.safetensors", template="nope")


def test_greedy_generate_needs_a_token_beyond_the_cache(
    tiny_lm: LoadedModel, kv_file: Path
) -> None:
    loaded = load_kv(kv_file, tiny_lm)
    with pytest.raises(ValueError, match="extend the cached prefix"):
        greedy_generate(tiny_lm, list(loaded.input_ids), cache=loaded.to_cache(tiny_lm))


def test_injection_is_zero_copy_on_cpu(tiny_lm: LoadedModel, kv_file: Path) -> None:
    loaded = load_kv(kv_file, tiny_lm)
    before = [k.clone() for k in loaded.keys]
    cache = loaded.to_cache(tiny_lm)
    assert cache.get_seq_length() == loaded.num_tokens
    for i, layer in enumerate(cache.layers):
        assert isinstance(layer, SharedPrefixLayer)
        assert layer.prefix_keys.data_ptr() == loaded.keys[i].data_ptr()
        assert layer.prefix_values.data_ptr() == loaded.values[i].data_ptr()
    query = tiny_lm.encode("who likes tea", add_special_tokens=False)
    greedy_generate(tiny_lm, [*loaded.input_ids, *query], cache=cache, max_new_tokens=3)
    # The query and the new tokens went beside the prefix, which was neither copied nor written.
    layer = cache.layers[0]
    assert layer.prefix_keys.data_ptr() == loaded.keys[0].data_ptr()
    assert layer.keys.shape[-2] == cache.get_seq_length() - loaded.num_tokens >= len(query)
    assert all(torch.equal(a, b) for a, b in zip(before, loaded.keys, strict=True))


def test_models_without_the_shared_prefix_attention_get_a_plain_cache(
    tiny_lm: LoadedModel, kv_file: Path
) -> None:
    loaded = load_kv(kv_file, tiny_lm)
    tiny_lm.model.set_attn_implementation("sdpa")
    try:
        cache = loaded.to_cache(tiny_lm)
        assert type(cache.layers[0]) is DynamicLayer
        assert cache.layers[0].keys.data_ptr() == loaded.keys[0].data_ptr()
        query = tiny_lm.encode("who likes tea", add_special_tokens=False)
        plain = greedy_generate(tiny_lm, [*loaded.input_ids, *query], cache=cache, max_new_tokens=4)
    finally:
        use_grouped_sdpa(tiny_lm.model)
    shared = greedy_generate(
        tiny_lm, [*loaded.input_ids, *query], cache=loaded.to_cache(tiny_lm), max_new_tokens=4
    )
    assert shared.tokens == plain.tokens
