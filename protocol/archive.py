"""The ``.memcube`` container: deterministic writing and safe reading.

A pack is a gzip-compressed POSIX tar (PAX) holding, in this order::

    manifest.json                 RFC 8785 canonical bytes of the manifest
    payloads/<cube-id>/<file>     every payload the manifest lists, sorted by path
    signatures/<keyid>.json       detached Ed25519 signatures, sorted by key id

Writing is deterministic: fixed member metadata (mtime 0, uid/gid 0, mode
0644, no user names), fixed order, gzip without a name or time, so the same
inputs give a byte-identical file (signatures included: Ed25519 is
deterministic).

Reading is a single streaming pass that trusts nothing: the first member must
be the manifest; every other member must be a regular file with a safe,
unique, listed name; sizes are checked against the manifest before a byte is
read, digests and content while streaming; hard limits bound the manifest,
the member count, the total size and the compression ratio. When a target
directory is given, files are written only inside it, into a private
``.mip-partial`` folder that is moved into place at the very end and removed
on any failure, so a failed read leaves the target as it was.

This module is the public face of the container; each job lives in its own
private module:

=============================  ==============================================
:mod:`protocol._pack_writer`   :func:`write_pack`, deterministic tar and gzip
:mod:`protocol._pack_reader`   :func:`read_pack` and :class:`Pack`
:mod:`protocol._pack_limits`   :class:`ReadLimits` and the streams that enforce it
:mod:`protocol._pack_members`  the member names and types a pack may hold
:mod:`protocol._pack_extract`  writing inside the target, all or nothing
=============================  ==============================================

Import the names in ``__all__`` from here (or from :mod:`protocol`).

Not here: signature *trust* decisions (callers pass the result of
:func:`protocol.trust.verify_signatures`), registries, caches.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ._pack_limits import ReadLimits
from ._pack_members import MANIFEST_MEMBER
from ._pack_reader import Pack, read_pack
from ._pack_writer import write_pack

__all__ = [
    "MANIFEST_MEMBER",
    "Pack",
    "ReadLimits",
    "is_regular_file",
    "read_pack",
    "write_pack",
]


def is_regular_file(path: Path) -> bool:
    """True for a plain file that is not a symlink (used by builders)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
