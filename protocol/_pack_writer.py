"""Writing a pack deterministically: the same inputs give a byte-identical file.

Members go in a fixed order (``manifest.json``, payloads sorted by path,
signatures sorted by key id) with fixed metadata (mtime 0, uid/gid 0, mode
0644, no user names) into a PAX tar, gzip'd without a name or time. Ed25519
is deterministic, so signed packs are reproducible too. Each payload's size
and sha256 are checked against the manifest before a byte is written, and
the file is written to a temporary name, fsync'd and renamed into place.

Not here: building a manifest from a source folder (:mod:`protocol.builder`),
reading packs (:mod:`protocol._pack_reader`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from ._pack_members import MANIFEST_MEMBER, SIGNATURE_DIR
from .errors import ArchiveError, IntegrityError
from .manifest import Manifest, PayloadRef
from .signing import Signature

__all__ = ["write_pack"]

_GZIP_LEVEL = 6


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def write_pack(
    out: Path,
    manifest: Manifest,
    payloads: Mapping[str, Path | bytes],
    signatures: Iterable[Signature] = (),
    *,
    manifest_bytes: bytes | None = None,
) -> Path:
    """Write a pack atomically to ``out`` (a temp file renamed into place).

    ``payloads`` maps each manifest payload path to its bytes or a file. The
    size and sha256 of each are checked against the manifest first, so a
    writer cannot produce a pack its own reader would refuse.
    """
    # Re-signing passes the bytes as read, so signatures stay valid whatever
    # a newer minor version put in the manifest.
    if manifest_bytes is None:
        manifest_bytes = manifest.canonical_bytes()
    refs = {p.path: p for p in manifest.payloads()}
    missing = sorted(set(refs) - set(payloads))
    unlisted = sorted(set(payloads) - set(refs))
    if missing or unlisted:
        raise ArchiveError(
            f"payload files do not match the manifest (missing {missing}, unlisted {unlisted})",
            code="archive.payload_set_mismatch",
        )
    for path, ref in refs.items():
        _check_source(ref, payloads[path])
    sigs = sorted({s.keyid: s for s in signatures}.values(), key=lambda s: s.keyid)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as raw:
            with (
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_GZIP_LEVEL
                ) as gz,
                tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                tar.addfile(
                    _tarinfo(MANIFEST_MEMBER, len(manifest_bytes)), io.BytesIO(manifest_bytes)
                )
                for path in sorted(refs):
                    source = payloads[path]
                    if isinstance(source, bytes):
                        tar.addfile(_tarinfo(path, len(source)), io.BytesIO(source))
                    else:
                        with open(source, "rb") as fh:
                            tar.addfile(_tarinfo(path, refs[path].size), fh)
                for sig in sigs:
                    body = sig.to_bytes()
                    tar.addfile(
                        _tarinfo(f"{SIGNATURE_DIR}{sig.keyid}.json", len(body)),
                        io.BytesIO(body),
                    )
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _check_source(ref: PayloadRef, source: Path | bytes) -> None:
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
