"""Several KV caches in one prompt, and compressed encodings, on a tiny random model."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from protocol import read_safetensors_header
from runtime.models import KVCacheError, KVCombineRefusedError
from runtime.models.causal_lm import LoadedModel
from runtime.models.kv import build_kv, load_kv
from runtime.models.kv_codec import dequantize_int8, int8_error_bound, quantize_int8
from runtime.models.kv_compose import compose_kv, rerotate_keys

PACKS = [
    ["alice likes green tea in the morning"],
    ["bob repairs old bicycles on sundays", "the cat sat on the mat"],
    ["the capital of france is paris"],
]
QUERY = "who repairs bicycles"


@pytest.fixture(scope="module")
def lm(make_lm: Callable[..., LoadedModel]) -> LoadedModel:
    return make_lm(seed=3, layers=3)


def _caches(lm: LoadedModel, tmp: Path, encoding: str = "raw") -> list:  # type: ignore[type-arg]
    return [
        load_kv(build_kv(lm, texts, tmp / f"{i}.safetensors", encoding=encoding).path, lm)
        for i, texts in enumerate(PACKS)
    ]


def _logits(lm: LoadedModel, ids: list[int], cache: object = None) -> torch.Tensor:
    with torch.no_grad():
        return lm.model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True).logits[0, -1]


def test_full_recompute_equals_full_prefill_of_the_same_tokens(
    lm: LoadedModel, tmp_path: Path
) -> None:
    composed = compose_kv(lm, _caches(lm, tmp_path), recompute=1.0)
    query = lm.encode(" " + QUERY, add_special_tokens=False)
    suffix = [*composed.closing_ids, *query]
    full = _logits(lm, [*composed.input_ids, *suffix])
    got = _logits(lm, suffix, composed.to_cache(lm))
    assert composed.recomputed == composed.spans[-1][2] - composed.spans[0][2]
    torch.testing.assert_close(got, full, atol=1e-4, rtol=1e-4)
    # Without recompute the later caches never saw the earlier ones: not the same.
    bare = compose_kv(lm, _caches(lm, tmp_path), recompute=0.0)
    assert not torch.allclose(_logits(lm, suffix, bare.to_cache(lm)), full, atol=1e-4)


def test_partial_recompute_moves_towards_full_prefill(lm: LoadedModel, tmp_path: Path) -> None:
    caches = _caches(lm, tmp_path)
    query = lm.encode(" " + QUERY, add_special_tokens=False)
    errors = []
    for budget in (0.0, 0.3, 1.0):
        composed = compose_kv(lm, caches, recompute=budget)
        suffix = [*composed.closing_ids, *query]
        full = _logits(lm, [*composed.input_ids, *suffix])
        errors.append(float((_logits(lm, suffix, composed.to_cache(lm)) - full).abs().max()))
    assert errors[2] < 1e-4 and errors[1] < errors[0]


def test_placement_is_a_rotation_exact_for_the_keys(lm: LoadedModel, tmp_path: Path) -> None:
    """A cache's keys moved by d positions equal the keys computed at those positions."""
    texts = PACKS[1]
    alone = load_kv(build_kv(lm, texts, tmp_path / "a.safetensors").path, lm)
    start = alone.shared_prefix
    # Layer 0's keys depend on token and position only: compute them 7 positions later.
    ids = list(alone.input_ids)
    padded = ids[:start] + ids[:7] + ids[start:]
    with torch.no_grad():
        out = lm.model(input_ids=torch.tensor([padded]), use_cache=True)
    want = out.cache.layers[0].keys[..., start + 7 :, :]
    moved = rerotate_keys(lm, alone.keys[0][..., start:, :], 7)
    torch.testing.assert_close(moved, want, atol=1e-5, rtol=1e-5)


def test_one_cache_is_used_as_it_is(lm: LoadedModel, tmp_path: Path) -> None:
    (one,) = _caches(lm, tmp_path)[:1]
    composed = compose_kv(lm, [one])
    assert composed.keys[0].data_ptr() == one.keys[0].data_ptr() and composed.closing_ids == ()


def test_offset_beyond_the_position_limit_is_refused_before_the_model(
    make_lm: Callable[..., LoadedModel], tmp_path: Path
) -> None:
    small = make_lm(seed=3, layers=3, max_position_embeddings=40)
    caches = _caches(small, tmp_path)
    calls: list[object] = []
    handle = small.model.register_forward_pre_hook(lambda *a: calls.append(a))
    try:
        with pytest.raises(KVCacheError) as info:
            compose_kv(small, caches * 2)
    finally:
        handle.remove()
    assert info.value.code == "model.kv_position_limit" and calls == []


def test_caches_of_different_templates_are_refused(lm: LoadedModel, tmp_path: Path) -> None:
    a = load_kv(build_kv(lm, PACKS[0], tmp_path / "a.safetensors").path, lm)
    b = load_kv(build_kv(lm, PACKS[1], tmp_path / "b.safetensors", template="chatml").path, lm)
    with pytest.raises(KVCombineRefusedError):
        compose_kv(lm, [a, b])


@pytest.mark.parametrize("shape", [(1, 2, 5, 16), (1, 3, 40, 64)])
def test_int8_round_trip_is_within_the_declared_error(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    x = torch.randn(shape) * torch.logspace(-3, 2, shape[2]).view(1, 1, -1, 1)
    q, scale = quantize_int8(x)
    assert q.dtype == torch.int8 and scale.dtype == torch.float16 and scale.shape[-1] == 1
    back = dequantize_int8(q, scale, torch.float32)
    assert bool(((back - x).abs() <= int8_error_bound(scale) + 1e-12).all())


@pytest.mark.parametrize(("encoding", "ratio"), [("fp16", 2.0), ("int8", 3.5)])
def test_compressed_caches_are_smaller_and_close(
    lm: LoadedModel, tmp_path: Path, encoding: str, ratio: float
) -> None:
    raw = build_kv(lm, PACKS[1], tmp_path / "raw.safetensors")
    small = build_kv(lm, PACKS[1], tmp_path / f"{encoding}.safetensors", encoding=encoding)
    assert _tensor_bytes(raw.path) / _tensor_bytes(small.path) >= ratio  # fp16: exactly 2x
    a, b = load_kv(raw.path, lm), load_kv(small.path, lm)
    assert b.encoding == encoding and b.keys[0].dtype == torch.float32
    for x, y in zip(a.keys + a.values, b.keys + b.values, strict=True):
        torch.testing.assert_close(y, x, atol=0.05 * float(x.abs().max()), rtol=0)


def _tensor_bytes(path: Path) -> int:
    """Bytes of the keys and values (and int8 scales): everything but ``input_ids``."""
    with open(path, "rb") as fh:
        header = read_safetensors_header(fh, path.stat().st_size)
    return sum(t.end - t.start for t in header.tensors.values() if t.name != "input_ids")


def _rewrite_header(path: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    change(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


def test_declared_encoding_that_does_not_match_the_tensors_is_refused(
    lm: LoadedModel, tmp_path: Path
) -> None:
    path = build_kv(lm, PACKS[0], tmp_path / "x.safetensors", encoding="fp16").path

    def claim_int8(header: dict) -> None:  # type: ignore[type-arg]
        header["__metadata__"]["mip.kv.encoding"] = "int8"
        header["__metadata__"]["mip.kv.scales"] = "per-token"

    _rewrite_header(path, claim_int8)
    with pytest.raises(KVCacheError) as info:
        load_kv(path, lm)
    assert info.value.code == "model.kv_encoding_mismatch"

    def unknown(header: dict) -> None:  # type: ignore[type-arg]
        header["__metadata__"]["mip.kv.encoding"] = "int4"

    _rewrite_header(path, unknown)
    with pytest.raises(KVCacheError) as info:
        load_kv(path, lm)
    assert info.value.code == "model.kv_encoding_mismatch"


def test_int8_pack_records_its_quality_and_passes_the_protocol_checks(
    lm: LoadedModel, tmp_path: Path
) -> None:
    from protocol import MemoryRecord, SigningKey, pack_directory, read_pack
    from runtime.models.packs import build_model_pack_source, open_model_memory

    records = [MemoryRecord(id=f"m{i}", text=t) for i, t in enumerate(PACKS[1])]
    source = build_model_pack_source(
        lm, records, tmp_path / "src", name="acme/int8", with_lora=False, kv_encoding="int8"
    )
    pack_directory(source, tmp_path / "p.memcube", keys=[SigningKey.generate()])
    memory = open_model_memory(read_pack(tmp_path / "p.memcube", target=tmp_path / "x"))
    ((cube, path),) = memory.kv
    field = cube.extra["kv"]
    assert field["encoding"] == "int8" and field["scales"] == "per-token"
    assert field["quality"]["probes"] == 3 and 0 <= field["quality"]["identical"] <= 3
    assert load_kv(path, lm, expected=cube.model).encoding == "int8"
