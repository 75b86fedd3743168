"""An installed pack as a ``protocol.Pack`` over the cache, for readers that take a Pack.

:func:`installed_view` lays out links named like the pack's payload paths
under a folder of the caller's, each pointing at the cached blob itself (no
copy): readers open the cache files. Every blob is checked on the way
(:meth:`runtime.cache.BlobCache.checked_path`: re-hashed once per process; a
mismatch is ``cache.blob_corrupt``). Blobs that were not fetched (another
model's KV caches or adapters) have no link.

Not here: installing (:mod:`.installer`).
"""

from __future__ import annotations

import os
from pathlib import Path

from protocol import Manifest, Pack

from ..cache import BlobCache

__all__ = ["installed_view"]


def installed_view(
    manifest_bytes: bytes, identity: tuple[str, int], cache: BlobCache, target: Path
) -> Pack:
    """A Pack whose ``payload_path`` of each cached blob is a link to it under ``target``."""
    manifest = Manifest.from_bytes(manifest_bytes)
    target = Path(target)
    for cube in manifest.cubes:
        for ref in cube.payloads:
            if not cache.has(ref.sha256):
                continue
            link = target / ref.path
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(cache.checked_path(ref.sha256), link)
    return Pack(manifest, manifest_bytes, (), identity[0], identity[1], root=target)
