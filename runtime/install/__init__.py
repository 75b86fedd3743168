"""Install, upgrade and remove packs: trust the signed manifest, fetch the blobs, commit.

Every install reads from a **pack source** (:mod:`.sources`:
:class:`PackSource`: the registry, a ``.memcube`` file, the cache, an OCI
registry), in one pass (:meth:`Installer.install_from_source`):

1. **Resolve** (registry: :class:`runtime.client.RegistryClient`; a file:
   ``protocol.read_pack`` into a private staging folder).
2. **Trust** (:mod:`.trust`, pure): the source's signed manifest bytes are
   verified with :class:`protocol.TrustedKeys` (the namespace's keys, which
   know the revoked ones; pinned ``$MEMOS_HOME/trusted-keys/*.pub`` keys must
   accept them too; ``--locked``: the keys in ``memos.lock``). **Nothing is
   fetched before the manifest is trusted.**
3. **Choose** (:mod:`.blobs`): every plaintext blob, and the KV caches and
   adapters of the running model (``model_fingerprint``; all with
   ``everything``/``--all``).
4. **Fetch** (:mod:`.fetch`): the chosen blobs not already cached and intact,
   several at once, each streamed into the content-addressed cache with its
   sha256 computed as the bytes arrive, resumable per blob, one fsync, one
   rename (:mod:`runtime.download`); verified staged files of a pack file are
   moved in. Then each non-text payload's content is checked.
5. **Commit** (:mod:`.commit`): the memories (:mod:`.items`, parsed from the
   cached blobs) are embedded, then one SQLite transaction replaces the pack's
   memories. Nothing is extracted or copied: the engine reads KV caches and
   adapters from the cache files. Until that transaction commits, the
   previous state is intact.
6. ``memos.lock`` is updated (atomic rename) when a lockfile path is given;
   it records the installed blobs' digests.

:meth:`Installer.verify_installed` re-hashes the cached blobs of installed
packs; installing again replaces a bad blob.

Not here: the trust rule itself (:mod:`protocol.trust`), SQL (the engine's
store), HTTP (:mod:`runtime.client`).
"""

from __future__ import annotations

from .blobs import BlobEntry, manifest_blobs, select_blobs
from .fetch import FetchReport
from .installer import Installer
from .results import InstalledPack, InstallResult
from .sources import CacheSource, FileSource, PackSource, RegistrySource, StagedSource
from .trust import manifest_sha256

__all__ = [
    "BlobEntry",
    "CacheSource",
    "FetchReport",
    "FileSource",
    "InstallResult",
    "InstalledPack",
    "Installer",
    "PackSource",
    "RegistrySource",
    "StagedSource",
    "canonical_sha256_bytes",
    "manifest_blobs",
    "select_blobs",
]

#: The name this digest had when the installer was one module.
canonical_sha256_bytes = manifest_sha256
