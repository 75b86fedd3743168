"""Content-addressed KV chunks (SPEC 4.2.2): split a cache into chained chunk blobs, load them.

:func:`split_kv` cuts a KV payload into chunks of ``chunk_tokens`` tokens
(the last one shorter), each a KV payload of its own whose header carries its
chain key (:func:`protocol.kv_chunks.kv_chunk_key`), its parent's and its
start (``mip.kv.positions = rope:<start>``). A chunk's bytes depend only on the
tokens up to its end, the model and the encoding: the cache-wide fields that
differ between packs (the prefix text's sha256) are left out, the shared
header length goes in the first chunk only and the closing length in the last
only, and the file is written with a sorted header (``safetensors.save`` orders
``__metadata__`` at random). Built with ``build_kv(prefill_chunk=n)`` the
states themselves are bit-identical across packs, so two packs sharing a system
header and a first document hold the same chunk blobs: one digest, stored and
fetched once by the content-addressed client cache.

:func:`read_kv_chunks` (:func:`.kv.load_kv` given a tuple of paths) checks
every chunk's header like a single cache's, then the chain (parent = previous
key, start = tokens so far, key = hash of its tokens), and refuses a break with
``model.kv_chunk_chain`` before any tensor reaches the model; the chunks'
tensors are concatenated along the sequence (one copy: separate blobs cannot
be one mapping). Not here: the manifest rules (:mod:`protocol.kv_chunks`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from protocol import KV_INPUT_IDS, ModelFingerprint, fingerprint_digest
from protocol.kv_chunks import (
    KV_CHUNK_ROOT,
    KV_CHUNK_TOKENS,
    KV_META_CHUNK_KEY,
    KV_META_CHUNK_PARENT,
    KVChunk,
    kv_chunk_key,
    kv_chunk_positions,
)
from protocol.payloads import KV_META_ENCODING, KV_META_POSITIONS, KV_META_SHARED_PREFIX

from .causal_lm import LoadedModel
from .errors import KVCacheError
from .fingerprint import check_fingerprint
from .kv_codec import decode_layer
from .kv_read import (
    META_CLOSING,
    META_PREFIX_SHA256,
    _Header,
    _read_header,
    check_position_limit,
    read_ahead,
)

__all__ = ["ChunkFile", "ChunkedKV", "read_kv_chunks", "split_kv"]

_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.int8: "I8", torch.int64: "I64"}  # fmt: skip


@dataclass(frozen=True)
class ChunkFile:
    """One written chunk: its file and its place in the chain (the manifest's ``kv_chunk``)."""

    path: Path
    chunk: KVChunk


def split_kv(src: Path, out_dir: Path, *, stem: str = "kv", chunk_tokens: int = KV_CHUNK_TOKENS,
             fingerprint: ModelFingerprint | None = None) -> list[ChunkFile]:  # fmt: skip
    """Write ``src`` (a checked single-blob KV payload) as ``<stem>.<nnnn>.safetensors`` chunks."""
    if chunk_tokens < 1:
        raise ValueError("chunk_tokens must be at least 1")
    header = _read_header(Path(src), fingerprint)
    meta = dict(header.metadata)
    shared = meta.pop(KV_META_SHARED_PREFIX, None)
    closing = meta.pop(META_CLOSING, None)
    meta.pop(META_PREFIX_SHA256, None)
    if shared is not None and int(shared) > chunk_tokens:
        raise ValueError(f"the shared header ({shared} tokens) must fit in the first chunk")
    encoding = meta.get(KV_META_ENCODING, "raw")
    fp_digest = fingerprint_digest(header.fingerprint)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[ChunkFile] = []
    parent = KV_CHUNK_ROOT
    with safe_open(str(src), framework="pt", device="cpu") as fh:
        names = sorted(fh.keys())
        ids = fh.get_tensor(KV_INPUT_IDS)
        seq_len = int(ids.shape[0])
        for n, start in enumerate(range(0, seq_len, chunk_tokens)):
            end = min(start + chunk_tokens, seq_len)
            part_ids = ids[start:end].contiguous()
            key = kv_chunk_key(parent, fp_digest, encoding, part_ids.numpy().tobytes())
            chunk_meta = {**meta, KV_META_CHUNK_KEY: key, KV_META_CHUNK_PARENT: parent,
                          KV_META_POSITIONS: kv_chunk_positions(start)}  # fmt: skip
            if start == 0 and shared is not None:
                chunk_meta[KV_META_SHARED_PREFIX] = shared
            if end == seq_len and closing is not None:
                chunk_meta[META_CLOSING] = closing
            tensors = {
                name: part_ids if name == KV_INPUT_IDS else fh.get_slice(name)[:, :, start:end]
                for name in names
            }
            path = out_dir / f"{stem}.{n:04d}.safetensors"
            _write_sorted(path, tensors, chunk_meta)
            written.append(ChunkFile(path, KVChunk(key, parent, start, end - start)))
            parent = key
    return written


def _write_sorted(path: Path, tensors: Mapping[str, torch.Tensor], meta: dict[str, str]) -> None:
    """Safetensors with a sorted header, tensors in name order: same input, same bytes."""
    header: dict[str, object] = {"__metadata__": dict(sorted(meta.items()))}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        raw = tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": _DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(raw)]}  # fmt: skip
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(len(text).to_bytes(8, "little") + text)
            for raw in blobs:
                fh.write(raw)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _chain_error(path: Path, why: str) -> KVCacheError:  # the one refusal of a broken chain
    return KVCacheError(f"{path.name}: {why}", code="model.kv_chunk_chain", chunk=path.name)


@dataclass(frozen=True)
class ChunkedKV:
    """A chunked cache's checked, concatenated states (:func:`.kv.load_kv` makes it a LoadedKV).

    ``metadata``: the first chunk's header fields, with the last chunk's closing length.
    """

    fingerprint: ModelFingerprint
    input_ids: tuple[int, ...]
    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    metadata: dict[str, str]
    size: int


def _check_chain(
    paths: Sequence[Path], expected: ModelFingerprint | None, declared: Sequence[KVChunk] | None
) -> list[_Header]:
    """Every chunk's header, checked alone (as a cache) and as the next link of the chain."""
    if not paths:
        raise KVCacheError("no KV chunk given", code="model.kv_empty")
    if declared is not None and len(declared) != len(paths):
        raise KVCacheError("the chunk list and the manifest's chunks differ in length",
                           code="model.kv_chunk_chain")  # fmt: skip
    headers: list[_Header] = []
    parent, start = KV_CHUNK_ROOT, 0
    for i, path in enumerate(paths):
        header = _read_header(Path(path), expected)
        meta = header.metadata
        key = meta.get(KV_META_CHUNK_KEY)
        if key is None or meta.get(KV_META_CHUNK_PARENT) != parent:
            raise _chain_error(path, f"chunk {i} does not follow chunk {i - 1} (parent key)")
        if meta.get(KV_META_POSITIONS) != kv_chunk_positions(start):
            raise _chain_error(path, f"chunk {i} does not start at token {start}")
        if headers and meta.get(KV_META_ENCODING, "raw") != headers[0].metadata.get(
            KV_META_ENCODING, "raw"
        ):
            raise _chain_error(path, "chunks of one cache must share one encoding")
        if declared is not None and declared[i] != KVChunk(key, parent, start, header.seq_len):
            raise _chain_error(path, f"chunk {i}'s header differs from its manifest entry")
        headers.append(header)
        parent, start = key, start + header.seq_len
    return headers


def read_kv_chunks(
    paths: Sequence[Path],
    lm: LoadedModel,
    *,
    expected: ModelFingerprint | None = None,
    declared: Sequence[KVChunk] | None = None,
) -> ChunkedKV:
    """Check a chunked cache's chunks and their chain against ``lm``, then concatenate them.

    ``declared``: the manifest's ``kv_chunk`` entries, when known.
    """
    paths = [Path(p) for p in paths]
    headers = _check_chain(paths, expected, declared)
    first = headers[0]
    check_fingerprint(first.fingerprint, lm.fingerprint, what=f"KV cache {paths[0].name}")
    total = sum(h.seq_len for h in headers)
    check_position_limit(lm, total, what=f"KV cache {paths[0].name}")
    encoding = first.metadata.get(KV_META_ENCODING, "raw")
    fp_digest = fingerprint_digest(first.fingerprint)
    dtype = getattr(torch, first.fingerprint.dtype)
    layers = first.fingerprint.num_layers
    ids: list[int] = []
    keys: list[list[torch.Tensor]] = [[] for _ in range(layers)]
    values: list[list[torch.Tensor]] = [[] for _ in range(layers)]
    for path, header in zip(paths, headers, strict=True):
        read_ahead(path)
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            chunk_ids = fh.get_tensor(KV_INPUT_IDS)
            parent = header.metadata[KV_META_CHUNK_PARENT]
            key = kv_chunk_key(parent, fp_digest, encoding, chunk_ids.numpy().tobytes())
            if key != header.metadata[KV_META_CHUNK_KEY]:
                raise _chain_error(path, "its tokens and parent do not hash to its key")
            ids.extend(int(t) for t in chunk_ids.tolist())
            for layer in range(layers):
                key_t, value_t = decode_layer(fh, layer, encoding, dtype)
                keys[layer].append(key_t)
                values[layer].append(value_t)

    def joined(parts: list[torch.Tensor]) -> torch.Tensor:
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)

    meta = dict(first.metadata)
    meta.pop(META_CLOSING, None)
    if META_CLOSING in headers[-1].metadata:
        meta[META_CLOSING] = headers[-1].metadata[META_CLOSING]
    return ChunkedKV(
        fingerprint=first.fingerprint,
        input_ids=tuple(ids),
        keys=tuple(joined(k) for k in keys),
        values=tuple(joined(v) for v in values),
        metadata=meta,
        size=sum(p.stat().st_size for p in paths),
    )
