"""int8 KV caches are dequantized layer by layer when attention reads them, not at load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from protocol.payloads import kv_tensor_name
from runtime.models import kv_codec
from runtime.models.causal_lm import LoadedModel, greedy_generate
from runtime.models.kv import build_kv, cache_from_tensors, load_kv
from runtime.models.kv_codec import (
    DequantizedLayers,
    Int8Rows,
    MappedTensors,
    decode_int8_layers,
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


def test_consecutive_layers_are_dequantized_together_and_never_served_stale(
    lm: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = build_kv(lm, TEXTS, tmp_path / "c.safetensors", encoding="int8").path
    kv = load_kv(path, lm)
    assert kv.int8 is not None and len(kv.int8) == 3
    group = kv.int8[0][0].group  # a small cache: all three layers in one group
    assert group is not None and all(r.group is group for pair in kv.int8 for r in pair)
    for i, (key, value) in enumerate(kv.int8):
        assert (key.index, value.index) == ((i, 0), (i, 1))
        assert torch.equal(group.q[i, 1], value.q) and torch.equal(group.scale[i, 0], key.scale)
        assert torch.equal(value.dense("value"), value.dequantize())
    monkeypatch.setattr(kv_codec, "_GROUP_BYTES", 1)  # one layer a group
    kv = load_kv(path, lm)
    assert kv.int8 is not None
    (k0, v0), (k1, v1) = kv.int8[0], kv.int8[1]
    assert k0.group is not None and k0.group is v0.group and k0.group is not k1.group
    # keys of layer 0, then of layer 1 (same buffer), then layer 0's values: made again
    assert torch.equal(k0.dense("key"), k0.dequantize())
    assert torch.equal(k1.dense("key"), k1.dequantize())
    assert torch.equal(v0.dense("value"), v0.dequantize())
    assert torch.equal(v1.dense("value"), v1.dequantize())


def test_int8_tensors_not_at_even_steps_are_dequantized_one_by_one(
    lm: LoadedModel, tmp_path: Path
) -> None:
    path = build_kv(lm, TEXTS, tmp_path / "c.safetensors", encoding="int8").path
    header = _read_header(path, None)
    mapped = MappedTensors(path, header.tensors, header.data_offset)
    k0, k1 = kv_tensor_name(0, "key"), kv_tensor_name(1, "key")
    v0, v1 = kv_tensor_name(0, "value"), kv_tensor_name(1, "value")
    assert mapped.get_grid([(k0, v1)]) is None  # not side by side
    assert mapped.get_grid([(v0, k0)]) is None  # in the wrong order
    assert mapped.get_grid([(k1, v1), (k0, v0)]) is None  # a step back
    grid = mapped.get_grid([(k0, v0), (k1, v1)])
    assert grid is not None and torch.equal(grid[1, 1], mapped.get_tensor(v1))
    # even_run says, from the offsets alone, what get_grid would take
    assert mapped.even_run([(k0, v1)], 3) == 0
    assert mapped.even_run([(v0, k0)], 3) == 0
    assert mapped.even_run([(k1, v1), (k0, v0)], 3) == 1
    assert mapped.even_run([(k0, v0), (k1, v1)], 3) == 2
    assert mapped.even_run([(k0, v0), (k1, v1)], 1) == 1

    class Plain:  # a handle with no grid view (e.g. safetensors' own)
        def get_tensor(self, name: str) -> torch.Tensor:
            return mapped.get_tensor(name)

    one_by_one = decode_int8_layers(Plain(), 3, torch.float32)
    grouped = decode_int8_layers(mapped, 3, torch.float32)
    assert all(r.group is None for pair in one_by_one for r in pair)
    for (k, v), (gk, gv) in zip(one_by_one, grouped, strict=True):
        assert gk.group is not None
        assert torch.equal(k.dense("key"), gk.dense("key"))
        assert torch.equal(v.dense("value"), gv.dense("value"))
