"""Every payload blob of an installed cube, read from the pack's signed manifest.

The store records a cube's payloads as one digest per media type, which is
all a cube has, except one whose KV cache is stored as content-addressed
chunks (SPEC 4.2.2): several ``kv-cache`` payloads, of which the store keeps
the last. The scheduler must check *every* chunk is in the cache and intact
before it plans the cube, and size the load by all of them, or a plan
promises a cache the model then cannot load. The chunk list is in the
installed pack's manifest, which the store keeps.

:func:`kv_cost` is the scheduler's estimate of loading such a cache (all its
chunks' bytes) and recomputing some of its tokens.

Not here: loading the chunks (``runtime.models.kv_installed``), planning.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from protocol import Manifest, MIPError

from .interfaces import LatencyProfile
from .types import Memory

__all__ = ["CubePayloads", "kv_cost"]


class CubePayloads:
    """(media type, sha256, size) of each payload of a memory's cube; manifests parsed once."""

    def __init__(self, manifest_of: Callable[[str], str | None]) -> None:
        self._manifest_of = manifest_of
        self._parsed: dict[str, Manifest | None] = {}

    def _manifest(self, pack: str) -> Manifest | None:
        if pack not in self._parsed:
            text = self._manifest_of(pack)
            try:
                self._parsed[pack] = None if text is None else Manifest.from_bytes(text.encode())
            except MIPError:  # checked at install; unreadable now: use what the store has
                self._parsed[pack] = None
        return self._parsed[pack]

    def of(self, memory: Memory) -> list[tuple[str, str, int | None]]:
        """The cube's payloads from its manifest, else the store's one digest per media type."""
        found = self._manifest(memory.pack) if memory.pack and memory.cube_id else None
        cube = next((c for c in found.cubes if c.id == memory.cube_id), None) if found else None
        if cube is None:
            return [(media, sha, None) for media, sha in sorted(memory.payloads.items())]
        return [(str(r.media_type), r.sha256, r.size) for r in cube.payloads]


def kv_cost(
    payload: str | None, recompute_tokens: int, profile: LatencyProfile | None,
    *, size: int | None = None,
) -> tuple[float | None, str]:
    """(estimated seconds, how) to load a cache (``size`` bytes, all its chunks; else
    ``payload``'s file size) and recompute some of its tokens."""
    if profile is None or payload is None:
        return None, ""
    try:
        size = size if size is not None else os.path.getsize(payload)
    except OSError:
        return None, ""
    load = size / profile.kv_load_bytes_per_s + profile.kv_fixed_overhead_s
    redo = recompute_tokens / profile.prefill_tokens_per_s
    return load + redo, f"load ~{load * 1000:.1f} ms + recompute ~{redo * 1000:.1f} ms"
