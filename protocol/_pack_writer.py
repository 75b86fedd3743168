"""Writing a MIP 1 pack deterministically: the same inputs give a byte-identical file.

Members go in a fixed order (``manifest.json``, payloads sorted by path,
signatures sorted by key id) with fixed metadata (mtime 0, uid/gid 0, mode
0644, no user names) into a PAX tar, gzip'd without a name or time. Ed25519
is deterministic, so signed packs are reproducible too. Each payload's size
and sha256 are checked against the manifest before a byte is written, and
the file is written to a temporary name, fsync'd and renamed into place.

The member metadata and the source checks are shared with the MIP 2 writer
(:mod:`protocol._pack2_writer`); :func:`protocol.archive.write_pack` picks the
writer by the manifest's major.

Not here: building a manifest from a source folder (:mod:`protocol.builder`),
reading packs (:mod:`protocol._pack_reader`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ._pack_members import MANIFEST_MEMBER, SIGNATURE_DIR
from .errors import ArchiveError, IntegrityError
from .manifest import Manifest, PayloadRef
from .signing import Signature

__all__ = [
    "add_signatures",
    "atomic_output",
    "check_payload_set",
    "check_source",
    "tarinfo",
    "write_pack1",
]

_GZIP_LEVEL = 6


def tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def check_payload_set(manifest: Manifest, payloads: Mapping[str, Path | bytes]) -> None:
    """Every manifest payload has a source, and each source matches its entry."""
    refs = {p.path: p for p in manifest.payloads()}
    missing = sorted(set(refs) - set(payloads))
    unlisted = sorted(set(payloads) - set(refs))
    if missing or unlisted:
        raise ArchiveError(
            f"payload files do not match the manifest (missing {missing}, unlisted {unlisted})",
            code="archive.payload_set_mismatch",
        )
    for path, ref in refs.items():
        check_source(ref, payloads[path])


@contextmanager
def atomic_output(out: Path) -> Iterator[BinaryIO]:
    """A file that appears at ``out`` complete or not at all (temp, fsync, rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as raw:
            yield raw
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def write_pack1(
    out: Path,
    manifest: Manifest,
    payloads: Mapping[str, Path | bytes],
    signatures: Iterable[Signature] = (),
    *,
    manifest_bytes: bytes | None = None,
) -> Path:
    """Write a MIP 1 pack atomically to ``out`` (a temp file renamed into place).

    ``payloads`` maps each manifest payload path to its bytes or a file. The
    size and sha256 of each are checked against the manifest first, so a
    writer cannot produce a pack its own reader would refuse.
    """
    # Re-signing passes the bytes as read, so signatures stay valid whatever
    # a newer minor version put in the manifest.
    if manifest_bytes is None:
        manifest_bytes = manifest.canonical_bytes()
    check_payload_set(manifest, payloads)
    refs = {p.path: p for p in manifest.payloads()}
    out = Path(out)
    with (
        atomic_output(out) as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_GZIP_LEVEL
        ) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(tarinfo(MANIFEST_MEMBER, len(manifest_bytes)), io.BytesIO(manifest_bytes))
        for path in sorted(refs):
            source = payloads[path]
            if isinstance(source, bytes):
                tar.addfile(tarinfo(path, len(source)), io.BytesIO(source))
            else:
                with open(source, "rb") as fh:
                    tar.addfile(tarinfo(path, refs[path].size), fh)
        add_signatures(tar, signatures)
    return out


def add_signatures(tar: tarfile.TarFile, signatures: Iterable[Signature]) -> None:
    """``signatures/<keyid>.json`` members, one per key, sorted by key id."""
    for sig in sorted({s.keyid: s for s in signatures}.values(), key=lambda s: s.keyid):
        body = sig.to_bytes()
        tar.addfile(tarinfo(f"{SIGNATURE_DIR}{sig.keyid}.json", len(body)), io.BytesIO(body))


def check_source(ref: PayloadRef, source: Path | bytes) -> None:
    if isinstance(source, bytes):
        digest, size = hashlib.sha256(source), len(source)
    else:
        with open(source, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256")
            size = fh.tell()
    if size != ref.size or digest.hexdigest() != ref.sha256:
        raise IntegrityError(
            f"payload {ref.path} does not match its manifest entry (size or sha256)",
            code="integrity.digest_mismatch",
            path=ref.path,
        )
