"""Chunked KV caches (SPEC 4.2.2) install blob by blob: a shared prefix is fetched once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from protocol import KV_INPUT_IDS, SigningKey, kv_tensor_name, read_pack
from protocol.kv_chunks import KV_CHUNK_ROOT, kv_chunk_key
from runtime.engine.engine import Engine
from runtime.install import Installer
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import (
    _safetensors_bytes,
    build_pack,
    fingerprint_digest_of,
    tiny_fingerprint,
)

REG = "http://registry.test"
CHUNK = 16


def chunked_kv_cube(
    tokens: list[int], cube_id: str = "kv"
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A chunked activation cube for the tiny model; a chunk's tensors depend on its key only
    (as a real cache's depend on the tokens up to the chunk's end)."""
    fp = tiny_fingerprint()
    digest = fingerprint_digest_of(fp)
    parent, payloads, files = KV_CHUNK_ROOT, [], {}
    for n, start in enumerate(range(0, len(tokens), CHUNK)):
        ids = np.array(tokens[start : start + CHUNK], dtype=np.int64)
        key = kv_chunk_key(parent, digest, "raw", ids.tobytes())
        rng = np.random.default_rng(int(key[:8], 16))
        shape = (1, fp["num_kv_heads"], len(ids), fp["head_dim"])
        tensors = {KV_INPUT_IDS: ids}
        for layer in range(fp["num_layers"]):
            for part in ("key", "value"):
                tensors[kv_tensor_name(layer, part)] = rng.standard_normal(shape).astype("float32")
        meta = {"mip.kind": "kv-cache", "mip.fingerprint": digest, "mip.kv.chunk.key": key,
                "mip.kv.chunk.parent": parent, "mip.kv.positions": f"rope:{start}"}  # fmt: skip
        path = f"payloads/{cube_id}/kv.{n:04d}.safetensors"
        files[path] = _safetensors_bytes(tensors, meta)
        chunk = {"key": key, "parent": parent, "start": start, "tokens": len(ids)}
        payloads.append({"path": path, "media_type": "application/vnd.mip.kv-cache+safetensors",
                         "kv_chunk": chunk})  # fmt: skip
        parent = key
    cube = {"id": cube_id, "memory_type": "activation", "title": "chunked KV cache",
            "payloads": payloads, "created_at": "2026-01-01T00:00:00Z",
            "lifecycle": "generated", "version": 1, "model": fp}  # fmt: skip
    return cube, files


def _kv_digests(path: Path) -> list[str]:
    (cube,) = [c for c in read_pack(path).manifest.cubes if c.id == "kv"]
    return [ref.sha256 for ref in cube.payloads]


def test_the_second_pack_fetches_only_the_chunks_it_does_not_share(
    home: Path, engine: Engine, registry: FakeRegistry, key: SigningKey, tmp_path: Path
) -> None:
    registry.blob_urls = True
    shared = list(range(2 * CHUNK))  # a system header and a first document, same model
    packs = {}
    for name, tail in (("acme/a", range(100, 120)), ("acme/b", range(200, 210))):
        packs[name] = build_pack(tmp_path, name=name, keys=[key], memories=["a fact"],
                                 extra_cubes=[chunked_kv_cube([*shared, *tail])],
                                 mip_version="2.0")  # fmt: skip
        registry.publish(packs[name])
    a, b = _kv_digests(packs["acme/a"]), _kv_digests(packs["acme/b"])
    assert a[:2] == b[:2] and a[2:] != b[2:] and len(set(a + b)) == 5

    fp = fingerprint_digest_of(tiny_fingerprint())
    installer = Installer(home, engine, transport=registry.as_transport(), model_fingerprint=fp)
    installer.install("acme/a", registry=REG)
    registry.blob_bytes.clear()
    result = installer.install("acme/b", registry=REG)

    assert set(registry.blob_bytes) == set(b[2:])  # the shared chunks (and memories) not again
    assert set(result.fetched) == set(b[2:])
    assert set(b) <= set(installer.cache.digests())
    memory = engine.get("acme/b/kv")
    assert memory.token_count == 2 * CHUNK + 10
