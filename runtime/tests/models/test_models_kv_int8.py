"""int8 KV caches are dequantized layer by layer when attention reads them, not at load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from runtime.models.causal_lm import LoadedModel, greedy_generate
from runtime.models.errors import KVCacheError
from runtime.models.kv import build_kv, cache_from_tensors, load_kv
from runtime.models.kv_codec import (
    DequantizedLayers,
    Int8Rows,
    int8_error_bound,
    quantize_int8,
    transcode_kv,
)
from runtime.models.kv_compose import compose_kv

TEXTS = ["bob repairs old bicycles on sundays", "the cat sat on the mat"]


@pytest.fixture(scope="module")
def lm(make_lm: Callable[..., LoadedModel]) -> LoadedModel:
    return make_lm(seed=4, layers=3)


@pytest.mark.parametrize("dim", [-1, -2])  # per-token (rows) and per-channel scales
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dense_rows_equal_the_dequantized_ones_and_stay_within_the_declared_error(
    dtype: torch.dtype, dim: int
) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 2, 37, 16) * 3 * torch.logspace(-1, 1, 16)  # unequal channels
    q, scale = quantize_int8(x, dim)
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


def test_keys_are_scaled_per_channel_and_per_token_caches_still_read(
    lm: LoadedModel, tmp_path: Path
) -> None:
    from safetensors import safe_open

    raw = build_kv(lm, TEXTS, tmp_path / "raw.safetensors")
    new = build_kv(lm, TEXTS, tmp_path / "new.safetensors", encoding="int8").path
    old = tmp_path / "old.safetensors"
    transcode_kv(raw.path, old, "int8", "per-token")  # the layout of packs built before
    fp = lm.fingerprint
    for path, layout, key_scale in (
        (new, "per-channel-keys", (1, fp.num_kv_heads, 1, fp.head_dim)),
        (old, "per-token", (1, fp.num_kv_heads, raw.num_tokens, 1)),
    ):
        with safe_open(str(path), framework="pt") as fh:
            assert fh.metadata()["mip.kv.scales"] == layout
            assert tuple(fh.get_tensor("layers.0.key_scale").shape) == key_scale
            assert tuple(fh.get_tensor("layers.0.value_scale").shape) == (
                1, fp.num_kv_heads, raw.num_tokens, 1,
            )  # fmt: skip
    dense, a, b = load_kv(raw.path, lm), load_kv(new, lm), load_kv(old, lm)
    ids = [*dense.input_ids, *lm.encode(" who repairs bicycles", add_special_tokens=False)]
    for kv in (a, b):
        assert kv.encoding == "int8" and kv.int8 is not None
        for x, y in zip(dense.keys + dense.values, kv.keys + kv.values, strict=True):
            torch.testing.assert_close(y, x, atol=0.02 * float(x.abs().max()), rtol=0)
        got = greedy_generate(lm, ids, cache=compose_kv(lm, [kv]).to_cache(lm), max_new_tokens=6)
        eager = greedy_generate(lm, ids, cache=cache_from_tensors(lm, list(kv.keys),
                                list(kv.values)), max_new_tokens=6)  # fmt: skip
        assert got.tokens == eager.tokens


def test_a_header_declaring_the_other_scales_layout_is_refused(
    lm: LoadedModel, tmp_path: Path
) -> None:
    import json
    import struct

    path = build_kv(lm, TEXTS, tmp_path / "c.safetensors", encoding="int8").path
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["mip.kv.scales"] = "per-token"  # key scales are per channel
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n :])
    with pytest.raises(KVCacheError) as info:
        load_kv(path, lm)
    assert info.value.code == "model.kv_encoding_mismatch"
