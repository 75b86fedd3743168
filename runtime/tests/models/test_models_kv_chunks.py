"""Content-addressed KV chunks (SPEC 4.2.2) on a tiny random model: sharing, loading, refusing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from protocol import MemoryRecord, SigningKey, build_manifest, pack_directory, read_pack
from protocol.errors import ArchiveError, PayloadError
from runtime.models import KVCacheError
from runtime.models.causal_lm import LoadedModel
from runtime.models.kv import build_kv, generate_with_kv, load_kv
from runtime.models.kv_chunks import _write_sorted, split_kv
from runtime.models.kv_compose import compose_kv
from runtime.models.packs import build_model_pack_source, open_model_memory

CHUNK = 16
SHARED_DOC = [
    "memories are stored in cubes and packs",
    "the capital of france is paris",
    "alice likes green tea in the morning",
    "bob repairs old bicycles on sundays",
    "the cat sat on the mat",
]


@pytest.fixture(scope="module")
def lm(make_lm: Callable[..., LoadedModel]) -> LoadedModel:
    return make_lm(seed=5, layers=2)


def _chunked(lm: LoadedModel, texts: list[str], tmp: Path, encoding: str = "raw") -> list[Path]:
    whole = build_kv(lm, texts, tmp / "whole.safetensors", encoding=encoding, prefill_chunk=CHUNK)
    return [c.path for c in split_kv(whole.path, tmp / "chunks", chunk_tokens=CHUNK)]


def _source(lm: LoadedModel, tmp: Path, name: str, last: str) -> Path:
    records = [MemoryRecord(id=f"m{i}", text=t) for i, t in enumerate([*SHARED_DOC, last])]
    return build_model_pack_source(lm, records, tmp / name, name=f"acme/{name}",
                                   with_lora=False, kv_chunk_tokens=CHUNK)  # fmt: skip


def _kv_digests(source: Path) -> list[str]:
    manifest, _files = build_manifest(source)
    (cube,) = [c for c in manifest.cubes if c.id == "memories-kv"]
    return [ref.sha256 for ref in cube.payloads]


def test_two_packs_sharing_a_prefix_share_their_leading_chunk_blobs(
    lm: LoadedModel, tmp_path: Path
) -> None:
    a = _kv_digests(_source(lm, tmp_path, "a", "question answer what where who is"))
    b = _kv_digests(_source(lm, tmp_path, "b", "the cat sat on the mat again"))
    assert len(a) >= 3 and len(b) >= 3
    shared = [x for x, y in zip(a, b, strict=False) if x == y]
    assert shared and shared == a[: len(shared)]  # a common prefix of chunks, then not
    assert a[-1] != b[-1]


def test_chunked_cache_loads_the_same_tensors_and_generates_the_same_tokens(
    lm: LoadedModel, tmp_path: Path
) -> None:
    paths = _chunked(lm, SHARED_DOC, tmp_path)
    whole = load_kv(tmp_path / "whole.safetensors", lm)
    chunked = load_kv(tuple(paths), lm)
    assert len(paths) > 1 and chunked.input_ids == whole.input_ids
    assert (chunked.shared_prefix, chunked.closing) == (whole.shared_prefix, whole.closing)
    for k1, k2 in zip(whole.keys + whole.values, chunked.keys + chunked.values, strict=True):
        assert torch.equal(k1, k2)
    one = generate_with_kv(lm, whole, "who repairs bicycles", max_new_tokens=6)
    two = generate_with_kv(lm, chunked, "who repairs bicycles", max_new_tokens=6)
    assert one.tokens == two.tokens


@pytest.mark.parametrize("encoding", ["raw", "int8"])
def test_composition_of_chunked_caches_equals_the_unchunked_path(
    lm: LoadedModel, tmp_path: Path, encoding: str
) -> None:
    packs = [SHARED_DOC, ["bob repairs old bicycles on sundays"]]
    whole, chunked = [], []
    for i, texts in enumerate(packs):
        paths = _chunked(lm, texts, tmp_path / str(i), encoding)
        whole.append(load_kv(tmp_path / str(i) / "whole.safetensors", lm))
        chunked.append(load_kv(tuple(paths), lm))
    one = compose_kv(lm, whole, recompute=0.25)
    two = compose_kv(lm, chunked, recompute=0.25)
    assert one.input_ids == two.input_ids and one.recomputed == two.recomputed
    for k1, k2 in zip(one.keys + one.values, two.keys + two.values, strict=True):
        assert torch.equal(k1, k2)


def test_a_broken_chain_is_refused_before_the_model(lm: LoadedModel, tmp_path: Path) -> None:
    paths = _chunked(lm, SHARED_DOC, tmp_path)
    with pytest.raises(KVCacheError) as swapped:
        load_kv((paths[1], paths[0], *paths[2:]), lm)
    assert swapped.value.code == "model.kv_chunk_chain"
    with pytest.raises(KVCacheError) as dropped:
        load_kv((paths[0], *paths[2:]), lm)
    assert dropped.value.code == "model.kv_chunk_chain"
    with pytest.raises(KVCacheError) as alone:
        load_kv(paths[1], lm)  # a later chunk is not a cache of its own
    assert alone.value.code == "model.kv_chunk_chain"

    # Other tokens under the same key (a chunk forged to look like another prefix's).
    with safe_open(str(paths[1]), framework="pt") as fh:
        meta = dict(fh.metadata() or {})
        tensors = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118
    tensors["input_ids"] = tensors["input_ids"].flip(0).contiguous()
    _write_sorted(paths[1], tensors, meta)
    with pytest.raises(KVCacheError) as forged:
        load_kv(tuple(paths), lm)
    assert forged.value.code == "model.kv_chunk_chain"
    assert forged.value.detail["chunk"] == paths[1].name


def test_declared_chunks_must_match_the_manifest(lm: LoadedModel, tmp_path: Path) -> None:
    whole = build_kv(lm, SHARED_DOC, tmp_path / "w.safetensors", prefill_chunk=CHUNK)
    chunks = split_kv(whole.path, tmp_path / "c", chunk_tokens=CHUNK)
    paths = [c.path for c in chunks]
    declared = [c.chunk for c in chunks]
    assert load_kv(tuple(paths), lm, declared=declared).num_tokens == whole.num_tokens
    with pytest.raises(KVCacheError) as info:
        load_kv(tuple(paths), lm, declared=[declared[1], *declared[1:]])
    assert info.value.code == "model.kv_chunk_chain"


def test_a_chunked_pack_passes_the_protocol_checks_and_opens_as_one_cache(
    lm: LoadedModel, tmp_path: Path
) -> None:
    source = _source(lm, tmp_path, "p", "the cat sat on the mat again")
    pack_directory(source, tmp_path / "p.memcube", keys=[SigningKey.generate()], mip_version="2.0")
    memory = open_model_memory(read_pack(tmp_path / "p.memcube", target=tmp_path / "x"))
    ((cube, files),) = memory.kv
    assert isinstance(files, tuple) and len(files) == len(cube.payloads) > 1
    kv = load_kv(files, lm, expected=cube.model)
    assert kv.num_tokens == sum(ref.extra["kv_chunk"]["tokens"] for ref in cube.payloads)


def test_a_chunk_whose_header_disagrees_with_the_manifest_is_refused(
    lm: LoadedModel, tmp_path: Path
) -> None:
    source = _source(lm, tmp_path, "q", "the cat sat on the mat again")
    first = source / "payloads" / "memories-kv" / "kv.0001.safetensors"
    with safe_open(str(first), framework="pt") as fh:
        meta = dict(fh.metadata() or {})
        tensors = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118
    tensors["input_ids"] = tensors["input_ids"].flip(0).contiguous()  # key no longer matches
    _write_sorted(first, tensors, meta)
    with pytest.raises((PayloadError, ArchiveError)) as info:
        pack_directory(source, tmp_path / "q.memcube", keys=[SigningKey.generate()])
    assert info.value.code == "payload.kv_chunk"


def test_read_ahead_reads_every_uncached_block_once_and_skips_cached_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.models import kv_read

    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (kv_read._BLOCK * 2 + 123))
    reads: list[tuple[int, int]] = []
    monkeypatch.setattr(kv_read, "_read_block", lambda fd, a, b: reads.append((a, b)))
    monkeypatch.setattr(kv_read, "_cached", lambda fd, a, b, page: a == kv_read._BLOCK)
    kv_read.read_ahead(path)
    assert sorted(reads) == [(0, kv_read._BLOCK), (2 * kv_read._BLOCK, path.stat().st_size)]
    reads.clear()
    monkeypatch.setattr(kv_read, "_cached", lambda fd, a, b, page: True)
    kv_read.read_ahead(path)  # warm: nothing read
    assert reads == []
    monkeypatch.undo()
    kv_read.read_ahead(path)  # the real readers, on a real file
    (tmp_path / "empty.bin").write_bytes(b"")
    kv_read.read_ahead(tmp_path / "empty.bin")
