"""MIP 2 conformance vectors for content-addressed KV chunks (SPEC 4.2.2).

A chunked activation cube: one KV-cache payload per chunk, each with
``kv_chunk`` (``key``, ``parent``, ``start``, ``tokens``) in the manifest and
the same fields in its header. Valid: a two-chunk cache. Invalid: a chunk
whose tokens do not hash to its key (``payload.kv_chunk``), a chain whose
second chunk names another parent, and several KV payloads without
``kv_chunk`` (both ``manifest.schema``). Not here: loading tensors.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from protocol.canonical import canonical_bytes
from protocol.conformance.fixtures import (
    FINGERPRINT,
    KEY_A,
    Vector,
    activation_cube,
    file_member,
    safetensors_bytes,
    tar_bytes,
)
from protocol.conformance.vectors2 import blob_pack_bytes, manifest2
from protocol.kv_chunks import KV_CHUNK_ROOT, kv_chunk_key
from protocol.manifest import ModelFingerprint
from protocol.payloads import KV_INPUT_IDS, fingerprint_digest, kv_tensor_name

MEDIA = "application/vnd.mip.kv-cache+safetensors"


def kv_chunk_bodies(tokens: list[list[int]], *, forge: int | None = None) -> list[bytes]:
    """One chunk blob per token list, chained; ``forge``: that chunk's ids are reversed after
    its key was computed (its header then names a key its tokens do not hash to)."""
    digest = fingerprint_digest(ModelFingerprint.from_dict(FINGERPRINT))
    heads, dim = FINGERPRINT["num_kv_heads"], FINGERPRINT["head_dim"]
    parent, start, out = KV_CHUNK_ROOT, 0, []
    for n, ids in enumerate(tokens):
        arr = np.array(ids, dtype=np.int64)
        key = kv_chunk_key(parent, digest, "raw", arr.tobytes())
        tensors: dict[str, Any] = {KV_INPUT_IDS: arr[::-1].copy() if n == forge else arr}
        shape = (1, heads, len(ids), dim)
        for layer in range(FINGERPRINT["num_layers"]):
            for m, part in enumerate(("key", "value")):
                values = np.arange(int(np.prod(shape)), dtype=np.float32) / 64.0 + start + m
                tensors[kv_tensor_name(layer, part)] = values.reshape(shape)
        meta = {"mip.kind": "kv-cache", "mip.fingerprint": digest, "mip.kv.chunk.key": key,
                "mip.kv.chunk.parent": parent, "mip.kv.positions": f"rope:{start}"}  # fmt: skip
        out.append(safetensors_bytes(tensors, meta))
        parent, start = key, start + len(ids)
    return out


def chunked_cube(bodies: list[bytes], tokens: list[list[int]]) -> dict[str, Any]:
    """The activation cube listing ``bodies`` as chunks (keys read back from the chain)."""
    digest = fingerprint_digest(ModelFingerprint.from_dict(FINGERPRINT))
    cube = activation_cube(bodies[0], "doc")
    parent, start, payloads = KV_CHUNK_ROOT, 0, []
    for n, (body, ids) in enumerate(zip(bodies, tokens, strict=True)):
        key = kv_chunk_key(parent, digest, "raw", np.array(ids, dtype=np.int64).tobytes())
        payloads.append({
            "path": f"payloads/doc/kv.{n:04d}.safetensors", "media_type": MEDIA,
            "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
            "kv_chunk": {"key": key, "parent": parent, "start": start, "tokens": len(ids)},
        })  # fmt: skip
        parent, start = key, start + len(ids)
    cube["payloads"] = payloads
    return cube


def _unsigned(manifest: dict[str, Any], bodies: list[bytes]) -> bytes:
    """A pack of a manifest the library would refuse to sign: members written by hand."""
    members = [file_member("manifest.json", canonical_bytes(manifest))]
    blobs = {hashlib.sha256(b).hexdigest(): b for b in bodies}
    members += [file_member(f"blobs/sha256/{d}", blobs[d]) for d in sorted(blobs)]
    return tar_bytes(members)


def kv_chunk_vectors() -> list[Vector]:
    tokens = [[1, 2, 3, 4], [5, 6]]
    bodies = kv_chunk_bodies(tokens)
    good = chunked_cube(bodies, tokens)
    forged = kv_chunk_bodies(tokens, forge=1)
    bad_parent = chunked_cube(bodies, tokens)
    bad_parent["payloads"][1]["kv_chunk"]["parent"] = KV_CHUNK_ROOT
    unchained = chunked_cube(bodies, tokens)
    for payload in unchained["payloads"]:
        del payload["kv_chunk"]
    return [
        Vector(
            "mip2-valid-kv-chunks",
            "A KV cache stored as two content-addressed chunks chained by key (SPEC 4.2.2)",
            blob_pack_bytes(manifest2(good), bodies),
            "ok",
            trusted=(KEY_A,),
        ),
        Vector(
            "mip2-invalid-kv-chunk-forged-tokens",
            "A KV chunk whose input_ids do not hash, with its parent, to the key it declares",
            blob_pack_bytes(manifest2(chunked_cube(forged, tokens)), forged),
            "payload.kv_chunk",
            trusted=(KEY_A,),
        ),
        Vector(
            "mip2-invalid-kv-chunk-broken-chain",
            "The second KV chunk names another parent than the first chunk's key",
            _unsigned(manifest2(bad_parent), bodies),
            "manifest.schema",
            trusted=(KEY_A,),
        ),
        Vector(
            "mip2-invalid-kv-several-unchained",
            "An activation cube with two KV payloads and no kv_chunk: not one cache",
            _unsigned(manifest2(unchained), bodies),
            "manifest.schema",
            trusted=(KEY_A,),
        ),
    ]
