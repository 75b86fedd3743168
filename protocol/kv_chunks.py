"""Content-addressed KV chunks (SPEC 4.2.2): a KV cache stored as a chain of token chunks.

A chunked activation cube lists one KV-cache payload per chunk of (by default)
256 tokens, in order. Each payload carries ``kv_chunk`` in the manifest
(``key``, ``parent``, ``start``, ``tokens``) and the same fields in its
safetensors header (``mip.kv.chunk.key``, ``mip.kv.chunk.parent``,
``mip.kv.positions = rope:<start>``). The key is chained like vLLM's prefix
cache block hash::

    key = sha256(parent || fingerprint digest || 0x00 || encoding || 0x00 || token ids)

(``parent``: the previous chunk's key as 32 bytes, 32 zero bytes for the first;
token ids as int64 little-endian). A chunk's keys and values depend on every
token before it, which the chain binds, so two packs whose caches start with
the same tokens for the same model and encoding hold the *same* chunk blobs:
one digest, stored and fetched once (section 14.1).

This module checks what the manifest and one blob can say: the chain's shape
in the manifest (cross-field rules) and, in a blob's content check, that its
header declares the manifest's fields and that its ``input_ids`` hash to its
key. Not here: reading tensors, concatenating chunks (runtime.models).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ._cube import PayloadRef
from .errors import PayloadError, Violation

__all__ = [
    "KV_CHUNK_FIELD",
    "KV_CHUNK_ROOT",
    "KV_CHUNK_TOKENS",
    "KV_META_CHUNK_KEY",
    "KV_META_CHUNK_PARENT",
    "KVChunk",
    "kv_chunk_key",
    "kv_chunk_of",
    "kv_chunk_positions",
]

KV_CHUNK_FIELD = "kv_chunk"  # the payload's manifest member
KV_META_CHUNK_KEY = "mip.kv.chunk.key"
KV_META_CHUNK_PARENT = "mip.kv.chunk.parent"
KV_CHUNK_ROOT = "0" * 64  # the parent of a cache's first chunk
KV_CHUNK_TOKENS = 256  # the reference builder's chunk length (any length is valid)
_MEDIA = "application/vnd.mip.kv-cache+safetensors"


@dataclass(frozen=True)
class KVChunk:
    """One chunk's place in its cache's chain, as the manifest declares it."""

    key: str
    parent: str
    start: int
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "parent": self.parent, "start": self.start, "tokens": self.tokens}


def kv_chunk_key(
    parent: str, fingerprint_digest: str, encoding: str, token_ids: Sequence[int] | bytes
) -> str:
    """The chain key of a chunk holding ``token_ids`` after ``parent`` (hex digests)."""
    ids = (
        bytes(token_ids)
        if isinstance(token_ids, bytes)
        else struct.pack(f"<{len(token_ids)}q", *token_ids)
    )
    h = hashlib.sha256(bytes.fromhex(parent))
    h.update(fingerprint_digest.encode("ascii") + b"\0" + encoding.encode("ascii") + b"\0")
    h.update(ids)
    return h.hexdigest()


def kv_chunk_positions(start: int) -> str:
    """``mip.kv.positions`` of a chunk whose first token sits at ``start``."""
    return f"rope:{start}"


def kv_chunk_of(ref: PayloadRef) -> KVChunk | None:
    """The ``kv_chunk`` member of a (schema-checked) payload, or None."""
    raw = ref.extra.get(KV_CHUNK_FIELD)
    if not isinstance(raw, Mapping):
        return None
    return KVChunk(str(raw["key"]), str(raw["parent"]), int(raw["start"]), int(raw["tokens"]))


def chain_violations(cube: Mapping[str, Any], pointer: str) -> list[Violation]:
    """Cross-field rules of a cube's chunk chain (schema-shaped data; see _manifest_rules)."""
    payloads = cube.get("payloads")
    if not isinstance(payloads, list):
        return []
    chunks = [p.get(KV_CHUNK_FIELD) if isinstance(p, dict) else None for p in payloads]
    found: list[Violation] = []
    for j, (payload, chunk) in enumerate(zip(payloads, chunks, strict=True)):
        if chunk is not None and isinstance(payload, dict) and payload.get("media_type") != _MEDIA:
            found.append(Violation(f"{pointer}/payloads/{j}", "kv_chunk on a non-KV payload"))
    if cube.get("memory_type") != "activation" or (len(payloads) < 2 and not any(chunks)):
        return found
    parent, start = KV_CHUNK_ROOT, 0
    for j, chunk in enumerate(chunks):
        where = f"{pointer}/payloads/{j}/{KV_CHUNK_FIELD}"
        if not isinstance(chunk, dict):
            found.append(Violation(where, "an activation cube with several payloads is a chunk "
                                   "chain: every payload needs kv_chunk"))  # fmt: skip
            return found
        if chunk.get("parent") != parent or chunk.get("start") != start:
            found.append(Violation(where, f"chunk {j} must follow its predecessor (parent "
                                   f"{parent[:12]}…, start {start})"))  # fmt: skip
            return found
        tokens = chunk.get("tokens")
        if not isinstance(tokens, int) or not isinstance(chunk.get("key"), str):
            return found  # the schema reports it
        parent, start = chunk["key"], start + tokens
    return found


def check_chunk_header(
    metadata: Mapping[str, str],
    ids: tuple[int, int, int],
    ref: PayloadRef,
    fingerprint_digest: str,
    stream: IO[bytes],
) -> None:
    """A KV blob's header against its payload's ``kv_chunk``; reads ``input_ids`` to hash it.

    ``ids`` is ``(data start, data end, tokens)`` of ``input_ids`` within the
    data section, where ``stream`` stands at its start. Raises PayloadError
    ``payload.kv_chunk``.
    """
    chunk = kv_chunk_of(ref)
    key = metadata.get(KV_META_CHUNK_KEY)
    if chunk is None and key is None:
        return
    if chunk is None or key is None:
        raise PayloadError(
            "a KV chunk's header and its manifest entry must both declare the chunk "
            f"({'manifest' if chunk is None else 'header'} does not)",
            code="payload.kv_chunk",
        )
    declared = (key, metadata.get(KV_META_CHUNK_PARENT), metadata.get("mip.kv.positions"))
    if (
        declared != (chunk.key, chunk.parent, kv_chunk_positions(chunk.start))
        or ids[2] != chunk.tokens
    ):
        raise PayloadError(
            "the KV chunk's header declares another key, parent, start or token count than "
            "its manifest entry",
            code="payload.kv_chunk",
        )
    start, end, _ = ids
    _skip(stream, start)
    data = stream.read(end - start)
    encoding = metadata.get("mip.kv.encoding", "raw")
    if (
        len(data) != end - start
        or kv_chunk_key(chunk.parent, fingerprint_digest, encoding, data) != chunk.key
    ):
        raise PayloadError(
            "the KV chunk's tokens, parent and fingerprint do not hash to its key",
            code="payload.kv_chunk",
        )


def _skip(stream: IO[bytes], count: int) -> None:
    while count > 0:
        got = stream.read(min(count, 1 << 20))
        if not got:
            return
        count -= len(got)
