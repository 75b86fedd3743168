"""int8 KV caches are dequantized layer by layer when attention reads them, not at load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from runtime.models.causal_lm import LoadedModel, greedy_generate
from runtime.models.kv import build_kv, cache_from_tensors, load_kv
from runtime.models.kv_codec import DequantizedLayers, Int8Rows, int8_error_bound, quantize_int8
from runtime.models.kv_compose import compose_kv

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
