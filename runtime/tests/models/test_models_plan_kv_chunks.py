"""A scheduler plan over an installed cube stored as KV chunks (SPEC 4.2.2) uses its KV cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from protocol import MemoryRecord, SigningKey, pack_directory
from runtime.cache import BlobCache
from runtime.engine.embedding import HashEmbedder
from runtime.engine.engine import Engine
from runtime.engine.interfaces import LatencyProfile
from runtime.engine.scheduler import Budget, MemScheduler, Plan
from runtime.install import Installer
from runtime.models import KVCacheError
from runtime.models.causal_lm import LoadedModel
from runtime.models.engine_adapter import TransformersBackend
from runtime.models.generation import MemoryGeneration, generate_with_plan
from runtime.models.kv_installed import installed_kv_files
from runtime.models.packs import build_model_pack_source

CHUNK = 16
FACTS = [
    "memories are stored in cubes and packs",
    "the capital of france is paris",
    "alice likes green tea in the morning",
    "bob repairs old bicycles on sundays",
    "the cat sat on the mat",
]
QUERY = "what does alice like"
FAST_KV = LatencyProfile(prefill_tokens_per_s=50.0, kv_load_bytes_per_s=1e12)


@pytest.fixture(scope="module")
def lm(make_lm: Callable[..., LoadedModel]) -> LoadedModel:
    return make_lm(seed=5, layers=2)


@pytest.fixture
def first_logits(lm: LoadedModel) -> Iterator[list[torch.Tensor]]:
    """The logits of every forward pass of ``lm`` (the first one is the prompt's)."""
    seen: list[torch.Tensor] = []
    handle = lm.model.register_forward_hook(lambda _m, _a, out: seen.append(out.logits[0, -1]))
    yield seen
    handle.remove()


def _installed(lm: LoadedModel, tmp: Path, key: SigningKey, chunk: int | None) -> Engine:
    """An engine home with one pack (a plaintext and a KV cube) installed from its file."""
    name = "chunked" if chunk else "whole"
    records = [MemoryRecord(id=f"m{i}", text=t) for i, t in enumerate(FACTS)]
    source = build_model_pack_source(lm, records, tmp / name, name="acme/facts",
                                     with_lora=False, kv_chunk_tokens=chunk)  # fmt: skip
    pack = tmp / f"{name}.memcube"
    pack_directory(source, pack, keys=[key], mip_version="2.0")
    engine = Engine(tmp / f"home-{name}", embedder=HashEmbedder(), maintain_every=None)
    Installer(engine.home, engine).install_file(pack, trusted_keys=[key.public_key],
                                                everything=True)  # fmt: skip
    return engine


def _schedule(lm: LoadedModel, engine: Engine, profile: LatencyProfile = FAST_KV) -> Plan:
    return MemScheduler(engine, TransformersBackend(lm, profile=profile)).plan(
        "alice green tea", Budget(tokens=2000), dry_run=True
    )


def _plan(lm: LoadedModel, engine: Engine) -> Plan:
    plan = _schedule(lm, engine)
    assert "acme/facts/memories-kv" in {i.memory.id for i in plan.items if i.form == "activation"}
    return plan


def _generate(lm: LoadedModel, engine: Engine, plan: Plan, **kwargs: Any) -> MemoryGeneration:
    cache = BlobCache(engine.home)
    return generate_with_plan(lm, plan, QUERY, blob_path=cache.blob_path, max_new_tokens=4,
                              **kwargs)  # fmt: skip


def test_plan_composes_a_chunked_cube_like_an_unchunked_one(
    lm: LoadedModel, tmp_path: Path, key: SigningKey, first_logits: list[torch.Tensor]
) -> None:
    whole, chunked = _installed(lm, tmp_path, key, None), _installed(lm, tmp_path, key, CHUNK)
    try:
        plans = _plan(lm, whole), _plan(lm, chunked)
        assert [i.memory.id for i in plans[0].items] == [i.memory.id for i in plans[1].items]
        first_logits.clear()
        want = _generate(lm, whole, plans[0])
        want_logits = first_logits[0]
        # The plan names one chunk only (the engine records one digest per media type):
        # alone it is not a cache, so without the manifest's chunk list the plan falls back.
        alone = _generate(lm, chunked, plans[1])
        assert alone.form != "activation" and alone.cached_tokens == 0
        assert any("acme/facts/memories-kv not used" in note for note in alone.notes)
        resolver = installed_kv_files(
            chunked.store.pack_manifest, BlobCache(chunked.home).checked_path
        )
        first_logits.clear()
        got = _generate(lm, chunked, plans[1], kv_files=resolver)
    finally:
        whole.close()
        chunked.close()
    assert want.form == got.form == "activation", (want.reason, got.notes)
    assert got.cached_tokens == want.cached_tokens > 2 * CHUNK  # every chunk, not one
    assert got.prompt_tokens == want.prompt_tokens and got.tokens == want.tokens
    # Chunks are prefilled chunk by chunk (bit-identical across packs), the whole cache
    # in one pass: the same states up to float rounding, so the same first-token logits.
    torch.testing.assert_close(first_logits[0], want_logits, rtol=1e-4, atol=1e-5)


def test_a_missing_chunk_falls_back_with_a_reason(
    lm: LoadedModel, tmp_path: Path, key: SigningKey
) -> None:
    engine = _installed(lm, tmp_path, key, CHUNK)
    try:
        plan = _plan(lm, engine)
        cache = BlobCache(engine.home)
        resolver = installed_kv_files(engine.store.pack_manifest, cache.blob_path)
        (memory,) = [i.memory for i in plan.items if i.form == "activation"]
        found = resolver(memory)
        assert found is not None and isinstance(found.files, tuple) and len(found.files) > 2
        assert found.declared is not None and [c.start for c in found.declared][:2] == [0, CHUNK]
        found.files[0].unlink()
        with pytest.raises(KVCacheError) as info:
            resolver(memory)
        assert info.value.code == "model.kv_chunk_missing"
        result = _generate(lm, engine, plan, kv_files=resolver)
    finally:
        engine.close()
    assert result.form != "activation"
    assert any("model.kv_chunk_missing" in n or "was not fetched" in n for n in result.notes)


def test_the_sdk_composes_a_chunked_cube(lm: LoadedModel, tmp_path: Path, key: SigningKey) -> None:
    """``MemOS.generate`` (and ``memos generate``, which calls it) finds every chunk."""
    from runtime.sdk import MemOS

    engine = _installed(lm, tmp_path, key, CHUNK)
    home = engine.home
    engine.close()
    mem = MemOS(home, embedder=HashEmbedder(), backend=TransformersBackend(lm, profile=FAST_KV))
    try:
        result, plan = mem.generate("alice green tea", Budget(tokens=2000), max_new_tokens=2)
    finally:
        mem.close()
    assert "acme/facts/memories-kv" in {i.memory.id for i in plan.items if i.form == "activation"}
    assert result.form == "activation", (result.reason, result.notes)
    assert result.cached_tokens > 2 * CHUNK  # every chunk, not the one the plan names


def test_the_plan_checks_every_chunk_not_only_the_recorded_one(
    lm: LoadedModel, tmp_path: Path, key: SigningKey
) -> None:
    engine = _installed(lm, tmp_path, key, CHUNK)
    try:
        plan = _plan(lm, engine)
        (item,) = [i for i in plan.items if i.form == "activation"]
        cache = BlobCache(engine.home)
        found = installed_kv_files(engine.store.pack_manifest, cache.blob_path)(item.memory)
        assert found is not None and len(found.files) > 2
        # sized by all its chunks, not the one the store records: at 1 byte/s and no
        # fixed overhead, the load estimate is the chunks' total size in seconds
        slow = LatencyProfile(prefill_tokens_per_s=1e9, kv_load_bytes_per_s=1.0,
                              kv_fixed_overhead_s=0.0)  # fmt: skip
        sized = _schedule(lm, engine, slow)
        (kv,) = [i for i in sized.items if i.memory.id == item.memory.id]
        assert kv.est_latency_s == pytest.approx(sum(f.stat().st_size for f in found.files))
        found.files[0].unlink()  # the first chunk; the store records the last
        again = _schedule(lm, engine)
    finally:
        engine.close()
    assert item.memory.id not in {i.memory.id for i in again.items if i.form == "activation"}
    refused = {r.memory_id: r.code for r in again.rejected}
    assert refused.get("acme/facts/memories-kv") == "plan.blob_missing", again.rejected
