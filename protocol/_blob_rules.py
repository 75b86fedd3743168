"""The one rule that makes payloads blobs: one digest, one size, one media type, one check.

A MIP 2 pack stores each distinct content once, named by its sha256, however
many payloads carry it. That is only sound when every payload naming a digest
agrees on what the bytes are: the same size, the same media type, and the same
*check context* (the inputs :func:`protocol.payloads.validate_payload` reads
besides the bytes: a memories payload's embedding dimension, a KV cache's
fingerprint digest), so that checking the blob once checks every payload.
:func:`blob_conflicts` finds the digests that break it; the manifest parser
refuses a 2.x manifest with any (``manifest.blob_conflict``), and
:func:`protocol.blobs.manifest_blobs` refuses them for any version.

Not here: the public blob list (:mod:`protocol.blobs`), reading blobs
(:mod:`protocol._pack2_reader`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ._cube import MediaType, MemCube, PayloadRef
from .errors import ManifestError
from .kv_chunks import kv_chunk_of

__all__ = ["blob_conflicts", "check_blob_conflicts", "check_context", "iter_payloads"]


def iter_payloads(cubes: Iterable[MemCube]) -> Iterator[tuple[MemCube, PayloadRef]]:
    for cube in cubes:
        for ref in cube.payloads:
            yield cube, ref


def check_context(cube: MemCube, ref: PayloadRef) -> object:
    """What a content check of ``ref`` depends on besides its bytes (see the module doc)."""
    if ref.media_type == MediaType.MEMORIES_JSONL:
        return cube.embedding.dimension if cube.embedding is not None else None
    if ref.media_type == MediaType.KV_CACHE and cube.model is not None:
        chunk = kv_chunk_of(ref)  # a chunk's header is checked against its kv_chunk
        return (cube.model.digest(), chunk)
    return None


def blob_conflicts(cubes: Iterable[MemCube]) -> list[str]:
    """The digests named with two sizes, two media types or two check contexts, sorted."""
    seen: dict[str, tuple[int, str, object]] = {}
    bad: set[str] = set()
    for cube, ref in iter_payloads(cubes):
        key = (ref.size, ref.media_type, check_context(cube, ref))
        if seen.setdefault(ref.sha256, key) != key:
            bad.add(ref.sha256)
    return sorted(bad)


def check_blob_conflicts(cubes: Iterable[MemCube]) -> None:
    """Raise ``manifest.blob_conflict`` naming the first conflicting digest, if any."""
    bad = blob_conflicts(cubes)
    if bad:
        raise ManifestError(
            f"blob sha256:{bad[0]} is named with two sizes, media types or check contexts"
            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
            code="manifest.blob_conflict",
            digests=bad,
        )
