"""int8 KV caches are dequantized layer by layer when attention reads them, not at load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from protocol.payloads import kv_tensor_name
from runtime.models.causal_lm import LoadedModel, greedy_generate
from runtime.models.kv import build_kv, cache_from_tensors, load_kv
from runtime.models.kv_codec import (
    DequantizedLayers,
    Int8Rows,
    MappedTensors,
    decode_int8_layer,
    int8_error_bound,
    quantize_int8,
)
from runtime.models.kv_compose import compose_kv
from runtime.models.kv_read import _read_header

TEXTS = ["bob repairs old bicycles on sundays", "the cat sat on the mat"]


@pytest.fixture(scope="module")
def lm(make_lm: Callable[..., LoadedModel]) -> LoadedModel:
    return make_lm(seed=4, layers=3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dense_rows_equal_the_dequantized_ones_and_stay_within_the_declared_error(
    dtype: torch.dtype,
) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 2, 37, 16) * 3
    q, scale = quantize_int8(x)
    rows = Int8Rows(q, scale, dtype)
    dense = rows.dense("key")
    assert dense.dtype == dtype and torch.equal(dense, rows.dequantize())
    bound = int8_error_bound(scale) + (0 if dtype == torch.float32 else x.abs() / 128)
    assert bool(((dense.float() - x).abs() <= bound).all())
    assert rows.dense("key").data_ptr() == dense.data_ptr()  # one reused buffer per slot


def test_an_int8_cache_is_not_dequantized_at_load_and_generates_as_the_dense_one(
    lm: LoadedModel, tmp_path: Path
) -> None:
    kv = load_kv(build_kv(lm, TEXTS, tmp_path / "c.safetensors", encoding="int8").path, lm)
    assert kv.int8 is not None and isinstance(kv.keys, DequantizedLayers)
    ids = [*kv.input_ids, *lm.encode(" who repairs bicycles", add_special_tokens=False)]
    lazy = greedy_generate(lm, ids, cache=compose_kv(lm, [kv]).to_cache(lm), max_new_tokens=6)
    assert kv.keys._made == {} and kv.values._made == {}  # no float copy was made
    dense = cache_from_tensors(lm, list(kv.keys), list(kv.values))  # dequantized up front
    eager = greedy_generate(lm, ids, cache=dense, max_new_tokens=6)
    assert lazy.tokens == eager.tokens
    with torch.no_grad():
        logits = [
            lm.model(
                input_ids=torch.tensor([ids[kv.num_tokens :]]), cache=c, use_cache=True
            ).logits[0, -1]
            for c in (kv.to_cache(lm), cache_from_tensors(lm, list(kv.keys), list(kv.values)))
        ]
    assert torch.equal(logits[0], logits[1])


def test_a_layers_keys_and_values_are_dequantized_together_and_never_served_stale(
    lm: LoadedModel, tmp_path: Path
) -> None:
    kv = load_kv(build_kv(lm, TEXTS, tmp_path / "c.safetensors", encoding="int8").path, lm)
    assert kv.int8 is not None
    (k0, v0), (k1, v1) = kv.int8[0], kv.int8[1]
    assert k0.layer is not None and k0.layer is v0.layer and k0.layer is not k1.layer
    assert torch.equal(k0.layer.q[1], v0.q) and torch.equal(k0.layer.scale[1], v0.scale)
    # keys of layer 0, then of layer 1 (same buffer), then layer 0's values: made again
    key0 = k0.dense("key")
    assert torch.equal(key0, k0.dequantize())
    assert torch.equal(k1.dense("key"), k1.dequantize())
    assert torch.equal(v0.dense("value"), v0.dequantize())
    assert torch.equal(v1.dense("value"), v1.dequantize())
    assert torch.equal(k1.dense("key"), k1.dequantize())


def test_int8_tensors_not_side_by_side_are_dequantized_one_by_one(
    lm: LoadedModel, tmp_path: Path
) -> None:
    path = build_kv(lm, TEXTS, tmp_path / "c.safetensors", encoding="int8").path
    header = _read_header(path, None)
    mapped = MappedTensors(path, header.tensors, header.data_offset)
    # a key and a value of different layers are not one layer's pair
    assert mapped.get_stacked(kv_tensor_name(0, "key"), kv_tensor_name(1, "value")) is None
    assert mapped.get_stacked(kv_tensor_name(0, "key"), kv_tensor_name(0, "value")) is not None

    class Plain:  # a handle with no side-by-side view (e.g. safetensors' own)
        def get_tensor(self, name: str) -> torch.Tensor:
            return mapped.get_tensor(name)

    key, value = decode_int8_layer(Plain(), 0, torch.float32)
    paired = decode_int8_layer(mapped, 0, torch.float32)
    assert key.layer is None and value.layer is None and paired[0].layer is not None
    assert torch.equal(key.dense("key"), paired[0].dense("key"))
    assert torch.equal(value.dense("value"), paired[1].dense("value"))
