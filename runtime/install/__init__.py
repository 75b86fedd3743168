"""Install, upgrade and remove packs: resolve, download, verify, then commit atomically.

Order of operations for ``memos install NS/NAME[@SPEC]``:

1. **Resolve** with the registry (:class:`runtime.client.RegistryClient`).
2. **Trust** (:mod:`.trust`, pure): the signed manifest bytes from the
   resolve answer are verified with :class:`protocol.TrustedKeys` built from
   the namespace's keys, which knows the revoked ones (a signature by a
   revoked or unknown key is refused), and, when keys are pinned in
   ``$MEMOS_HOME/trusted-keys/*.pub``, against those too. With ``--locked``
   the keys pinned in ``memos.lock`` are used instead (minus any the registry
   has revoked since). Nothing is downloaded before the manifest is trusted.
3. **Download** into the content-addressed cache, resumable, sha256 checked
   while streaming (:mod:`runtime.download`).
4. **Read** the pack with ``protocol.read_pack`` into a private staging
   folder (every limit, every payload digest), and check that its manifest is
   byte-for-byte the one that was verified and its signatures verify too
   (:func:`.trust.check_pack`); its cubes become engine memories (:mod:`.items`).
5. **Commit** (:mod:`.commit`): payload blobs move into the cache
   (content-addressed, shared by versions); the memories are embedded; then
   one SQLite transaction replaces the pack's memories (new versions for
   changed memories, tombstones for dropped ones). Until that transaction
   commits, the previous state is intact; if anything fails before, nothing
   changed.
6. ``memos.lock`` is updated (atomic rename) when a lockfile path is given.

Local files (``memos install ./FILE.memcube``) skip 1-3 and need trusted keys
(``--trusted-key`` or pinned keys).

Modules: :mod:`.installer` (the :class:`Installer` orchestrator),
:mod:`.trust`, :mod:`.items`, :mod:`.commit`, :mod:`.results`.

Not here: the trust rule itself (:mod:`protocol.trust`), SQL (the engine's
store), HTTP (:mod:`runtime.client`).
"""

from __future__ import annotations

from .installer import Installer
from .results import InstalledPack, InstallResult
from .trust import manifest_sha256

__all__ = ["InstallResult", "InstalledPack", "Installer", "canonical_sha256_bytes"]

#: The name this digest had when the installer was one module.
canonical_sha256_bytes = manifest_sha256
