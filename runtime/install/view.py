"""Installed packs seen from the cache: as a ``protocol.Pack``, verified, and locked.

:func:`installed_view` lays out links named like the pack's payload paths
under a folder of the caller's, each pointing at the cached blob itself (no
copy): readers open the cache files. Every blob is checked on the way
(:meth:`runtime.cache.BlobCache.checked_path`: re-hashed once per process; a
mismatch is ``cache.blob_corrupt``). Blobs that were not fetched (another
model's KV caches or adapters) have no link.

:func:`verify_cached` re-hashes every cached blob of installed packs
(``memos verify --installed``); :func:`registry_lock_entry` is the
``memos.lock`` entry of a registry install.

Not here: installing (:mod:`.installer`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from protocol import Manifest, Pack, TrustedKeys, manifest_blobs

from .._wire import Resolution
from ..cache import BlobCache, BlobProblem
from ..engine.store import Store
from ..errors import InstallError
from ..lockfile import LockEntry
from .results import InstallResult
from .trust import manifest_sha256

__all__ = ["installed_view", "registry_lock_entry", "verify_cached"]


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


def verify_cached(
    store: Store, cache: BlobCache, names: Sequence[str] = ()
) -> list[tuple[str, BlobProblem]]:
    """Re-hash the cached blobs of installed packs ``names`` (default: all); the bad ones."""
    installed = {p.name for p in store.installed_packs()}
    for name in names:
        if name not in installed:
            raise InstallError(f"{name} is not installed", code="install.not_installed")
    problems = []
    for name in sorted(names or installed):
        text = store.pack_manifest(name) or ""
        digests = [e.sha256 for e in manifest_blobs(Manifest.from_bytes(text.encode()))]
        digests.append(store.pack_manifest_sha256(name) or "")
        problems += [(name, p) for p in cache.verify(d for d in digests if d)]
    return problems


def registry_lock_entry(
    res: Resolution, keys: TrustedKeys, result: InstallResult, registry: str
) -> LockEntry:
    """The ``memos.lock`` entry of ``result``, installed from ``registry`` as resolved."""
    signer_keys = {k.keyid: k for k in keys.in_force()}
    return LockEntry(
        name=res.name,
        version=res.version,
        sha256=res.pack.sha256,
        size=res.pack.size,
        manifest_sha256=manifest_sha256(res.manifest_bytes),
        signed_by=result.signed_by,
        keys=tuple(signer_keys[k].to_text() for k in result.signed_by if k in signer_keys),
        registry=registry,
        blobs=result.blobs,
    )
