"""The ``.memcube`` container, MIP 1 and MIP 2: deterministic writing and safe reading.

A MIP 1 pack (SPEC section 2) is a gzip-compressed POSIX tar (PAX)::

    manifest.json                 RFC 8785 canonical bytes of the manifest
    payloads/<cube-id>/<file>     every payload the manifest lists, sorted by path
    signatures/<keyid>.json       detached Ed25519 signatures, sorted by key id

A MIP 2 pack (section 14.4) is a plain (uncompressed) POSIX tar::

    manifest.json                 the canonical 2.x manifest
    blobs/sha256/<hex>[.zst]      every distinct blob once, sorted by digest
    signatures/<keyid>.json       as in MIP 1

:func:`write_pack` writes the form of the manifest's major; :func:`read_pack`
tells them apart by the first bytes (the gzip magic, or a tar header) and
returns the same :class:`Pack` for both. A 2.x manifest in a gzip'd pack, or a
1.x manifest in a plain tar, is refused (``archive.version_mismatch``).

Writing is deterministic: fixed member metadata (mtime 0, uid/gid 0, mode
0644, no user names), fixed order, gzip without a name or time (MIP 1), zstd
frames with fixed parameters (MIP 2), so the same inputs give a byte-identical
file (signatures included: Ed25519 is deterministic).

Reading is a single streaming pass that trusts nothing: the first member must
be the manifest; every other member must be a regular file with a safe,
unique, listed name; sizes are checked against the manifest before a byte is
read, digests and content while streaming; hard limits bound the manifest,
the member count, the total size, the compression ratio (MIP 1) and each
decompressed blob (MIP 2: its declared size). When a target directory is
given, payload files are written only inside it, into a private
``.mip-partial`` folder that is moved into place at the very end and removed
on any failure, so a failed read leaves the target as it was. A MIP 2 read may
also hand each blob to a :class:`BlobSink` as it streams.

This module is the public face of the container; each job lives in its own
private module:

=============================  ==============================================
:mod:`protocol._pack_writer`   MIP 1 writing, deterministic tar and gzip
:mod:`protocol._pack2_writer`  MIP 2 writing, plain tar, zstd for text
:mod:`protocol._pack_reader`   MIP 1 reading and :class:`Pack`
:mod:`protocol._pack2_reader`  MIP 2 reading, :class:`BlobSink`
:mod:`protocol._pack_limits`   :class:`ReadLimits` and the streams that enforce it
:mod:`protocol._pack_members`  the member names and types a pack may hold
:mod:`protocol._pack_extract`  writing inside the target, all or nothing
=============================  ==============================================

Import the names in ``__all__`` from here (or from :mod:`protocol`).

Not here: signature *trust* decisions (callers pass the result of
:func:`protocol.trust.verify_signatures`), registries, caches.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from ._pack2_reader import BlobSink, BlobWriter, read_pack2
from ._pack2_writer import write_pack2
from ._pack_extract import Extraction
from ._pack_limits import ReadLimits
from ._pack_members import MANIFEST_MEMBER
from ._pack_reader import Pack, read_pack1
from ._pack_writer import write_pack1
from .manifest import Manifest
from .signing import Signature

__all__ = [
    "GZIP_MAGIC",
    "MANIFEST_MEMBER",
    "BlobSink",
    "BlobWriter",
    "Pack",
    "ReadLimits",
    "container_major",
    "is_regular_file",
    "read_pack",
    "write_pack",
]

GZIP_MAGIC = b"\x1f\x8b"


def is_regular_file(path: Path) -> bool:
    """True for a plain file that is not a symlink (used by builders)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def container_major(head: bytes) -> int:
    """1 for a gzip'd pack (MIP 1), 2 for anything else (read as a MIP 2 plain tar)."""
    return 1 if head[:2] == GZIP_MAGIC else 2


def write_pack(
    out: Path,
    manifest: Manifest,
    payloads: Mapping[str, Path | bytes],
    signatures: Iterable[Signature] = (),
    *,
    manifest_bytes: bytes | None = None,
) -> Path:
    """Write a pack atomically to ``out``: MIP 2 for a 2.x manifest, else MIP 1.

    ``payloads`` maps each manifest payload path to its bytes or a file. The
    size and sha256 of each are checked against the manifest first, so a
    writer cannot produce a pack its own reader would refuse. ``manifest_bytes``
    (re-signing) are the exact bytes as read, so signatures stay valid.
    """
    write = write_pack2 if manifest.major == 2 else write_pack1
    return write(Path(out), manifest, payloads, signatures, manifest_bytes=manifest_bytes)


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to tell the version) put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_pack(
    source: Path | BinaryIO,
    *,
    target: Path | None = None,
    limits: ReadLimits | None = None,
    check_content: bool = True,
    blobs: BlobSink | None = None,
) -> Pack:
    """Read and check a MIP 1 or MIP 2 pack in one streaming pass.

    With ``target``, payload files are extracted there (as ``target/<path>``,
    for both versions). With ``blobs`` (MIP 2 only; ignored for MIP 1), each
    blob is handed to the sink as it streams: see :class:`BlobSink`, e.g.
    ``read_pack(path, blobs=CacheSink(root))``. Raises a
    :class:`protocol.errors.MIPError` subclass with a stable code on any
    problem, after removing everything it extracted. Signatures are parsed but
    not trusted here: pass ``Pack.signatures`` to
    :func:`protocol.trust.verify_signatures`.
    """
    limits = limits or ReadLimits()
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            return read_pack(
                fh, target=target, limits=limits, check_content=check_content, blobs=blobs
            )
    head = source.read(2)
    stream: BinaryIO = io.BufferedReader(_Prefixed(head, source))
    extraction = Extraction(Path(target)) if target is not None else None
    try:
        if container_major(head) == 1:
            pack = read_pack1(stream, limits, extraction, check_content)
        else:
            pack = read_pack2(stream, limits, extraction, check_content, blobs)
    except BaseException:
        if extraction is not None:
            extraction.abort()
        raise
    if extraction is not None:
        extraction.commit()
    return pack
