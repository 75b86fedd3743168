"""Where an installed activation cube's KV cache lies in the blob cache: one blob, or its chunks.

The engine records a cube's payload digests by media type, one digest per
type, so a cube stored as content-addressed KV chunks (SPEC 4.2.2: several
``kv-cache`` payloads) is recorded under one of them, and a scheduler plan
names that one blob. One chunk alone is not a cache (its keys start at
``rope:<start>``; :func:`.kv.load_kv` refuses it), so the plan path used to
fall back to plaintext. The order and chain of the chunks are in the pack's
signed manifest, which the engine keeps per installed pack: :func:`installed_kv_files`
reads the cube's chunk list from there and maps each digest to its blob, so
the plan loads the chunks with the manifest's ``kv_chunk`` entries checked
against every chunk's header (``declared``), exactly as a pack read from a file.

Not here: loading and checking the tensors (:mod:`.kv`, :mod:`.kv_chunks`),
planning (``runtime.engine.scheduler``), the blob cache itself (``runtime.cache``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol import Manifest, MediaType, MIPError
from protocol.kv_chunks import KVChunk, kv_chunk_of

from ..errors import MemosError
from .errors import KVCacheError

__all__ = ["InstalledKV", "KVFilesResolver", "installed_kv_files"]


@dataclass(frozen=True)
class InstalledKV:
    """An installed cube's KV files (one path, or its chunks in order), with their manifest
    entries (checked against each chunk's header when loaded)."""

    files: Path | tuple[Path, ...]
    declared: tuple[KVChunk, ...] | None = None  # the chunks' ``kv_chunk`` entries, in order


KVFilesResolver = Callable[[Any], InstalledKV | None]


def installed_kv_files(
    manifest_of: Callable[[str], str | None], blob_path: Callable[[str], Path]
) -> KVFilesResolver:
    """A resolver from an activation memory (``pack``, ``cube_id``) to its KV files.

    ``manifest_of``: pack name -> its signed manifest text (the engine store's
    ``pack_manifest``). ``blob_path``: sha256 -> blob file (``BlobCache.blob_path``,
    or ``BlobCache.checked_path`` to re-hash each chunk once per process). The
    resolver returns None for a memory that is not an installed cube with a
    chunked cache (its recorded payload is then the whole cache), and raises
    :class:`KVCacheError` (``model.kv_chunk_missing``) when a chunk's blob cannot
    be had, so the caller falls back to plaintext with a reason.
    """
    manifests: dict[str, Manifest | None] = {}

    def manifest(pack: str) -> Manifest | None:
        if pack not in manifests:
            text = manifest_of(pack)
            try:
                manifests[pack] = None if text is None else Manifest.from_bytes(text.encode())
            except MIPError as exc:
                raise KVCacheError(
                    f"the installed manifest of {pack} cannot be read: {exc}",
                    code="model.kv_chunk_missing",
                ) from exc
        return manifests[pack]

    def resolve(memory: Any) -> InstalledKV | None:
        pack, cube_id = getattr(memory, "pack", None), getattr(memory, "cube_id", None)
        if not pack or not cube_id:
            return None
        found = manifest(str(pack))
        cube = next((c for c in found.cubes if c.id == cube_id), None) if found else None
        if cube is None:
            return None
        refs = [r for r in cube.payloads if r.media_type == MediaType.KV_CACHE]
        chunks = [kv_chunk_of(r) for r in refs]
        if len(refs) < 2 and all(c is None for c in chunks):
            return None  # one blob: the plan's payload is the cache itself
        paths = []
        for ref in refs:
            try:
                path = Path(blob_path(ref.sha256))
            except MemosError as exc:
                raise KVCacheError(
                    f"chunk {ref.path} of {memory.id}: {exc}", code="model.kv_chunk_missing"
                ) from exc
            if not path.is_file():
                raise KVCacheError(
                    f"chunk {ref.path} of {memory.id} ({ref.sha256[:12]}…) was not fetched "
                    "(memos install PACK --all)",
                    code="model.kv_chunk_missing",
                )
            paths.append(path)
        declared = tuple(c for c in chunks if c is not None)
        return InstalledKV(tuple(paths), declared if len(declared) == len(refs) else None)

    return resolve
