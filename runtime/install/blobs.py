"""Which blobs of a manifest the installer fetches: protocol's ``BlobEntry``/``select_blobs``.

The rule is the protocol's (MIP 2 design: every plaintext blob; activation and
parameter blobs only for the running model's fingerprint digest, or all with
``everything``). Until ``protocol`` exports ``BlobEntry``, ``manifest_blobs``
and ``select_blobs``, this module holds a stand-in with the same names and
signatures (swap the definitions below for ``from protocol import ...``
when it lands; nothing else changes).

Not here: fetching (:mod:`runtime.install.fetch`), trust (:mod:`.trust`).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import Manifest, MemoryType, fingerprint_digest

__all__ = ["BlobEntry", "manifest_blobs", "select_blobs"]


@dataclass(frozen=True)
class BlobEntry:
    """One distinct blob of a manifest: its digest, size, media type, cubes, model digest."""

    sha256: str
    size: int
    media_type: str
    cubes: tuple[str, ...]
    fingerprint: str | None


def manifest_blobs(manifest: Manifest) -> tuple[BlobEntry, ...]:
    """Every distinct blob of ``manifest``, sorted by digest."""
    found: dict[str, BlobEntry] = {}
    for cube in manifest.cubes:
        fp = None
        if cube.memory_type is not MemoryType.PLAINTEXT and cube.model is not None:
            fp = fingerprint_digest(cube.model)
        for ref in cube.payloads:
            old = found.get(ref.sha256)
            cubes = old.cubes if old else ()
            cubes = cubes if cube.id in cubes else (*cubes, cube.id)
            # a blob shared with a plaintext cube is needed whatever the model
            keep_fp = fp if old is None else (old.fingerprint if old.fingerprint == fp else None)
            found[ref.sha256] = BlobEntry(ref.sha256, ref.size, ref.media_type, cubes, keep_fp)
    return tuple(found[d] for d in sorted(found))


def select_blobs(
    manifest: Manifest, *, fingerprint: str | None, everything: bool = False
) -> tuple[BlobEntry, ...]:
    """The blobs an engine running model ``fingerprint`` (a fingerprint digest) can use."""
    return tuple(
        b
        for b in manifest_blobs(manifest)
        if everything or b.fingerprint is None or b.fingerprint == fingerprint
    )

