"""Migrating a MIP 1.x pack to MIP 2.0: split text into blobs, re-sign, write atomically.

:func:`migrate_pack` reads the source with the safe reader (every MIP 1 check
applies), turns its manifest into 2.0 (memories files over 1 MiB split at
record boundaries, :mod:`protocol.chunking`; every other field, unknown ones
included, kept), writes the MIP 2 container and signs the new manifest with
the publisher's key. The old signatures are over the 1.x manifest bytes, so
they cannot carry over: the migrated pack is signed by ``key`` alone. The
result is read back before it is returned; nothing is left at ``out`` on
failure. Migrating a pack that is already 2.x only adds ``key``'s signature,
so a retried migration is harmless.

Not here: the CLI (``memos migrate``), trust decisions on the source.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .archive import Pack, ReadLimits, read_pack, write_pack
from .builder import with_version
from .errors import MIPError
from .signing import SigningKey, sign_manifest
from .version import MIP2_VERSION

__all__ = ["migrate_pack"]


def migrate_pack(
    source: Path,
    out: Path,
    *,
    key: SigningKey,
    limits: ReadLimits | None = None,
    mip_version: str = MIP2_VERSION,
) -> Pack:
    """Rewrite the pack at ``source`` as MIP 2 at ``out``, signed by ``key``; return it read back.

    ``out`` may be ``source`` itself (replaced atomically).
    """
    source, out = Path(source), Path(out)
    work = out.parent / f".{out.name}.migrate-{os.getpid()}"
    try:
        old = read_pack(source, target=work / "pack", limits=limits)
        files: dict[str, Path | bytes] = {
            ref.path: work / "pack" / ref.path for ref in old.manifest.payloads()
        }
        if old.manifest.major == 2:
            manifest, payloads = old.manifest, dict(files)
            manifest_bytes = old.manifest_bytes
            signatures = [*old.signatures, sign_manifest(manifest_bytes, key)]
        else:
            manifest, payloads = with_version(old.manifest, files, mip_version, work / "chunks")
            manifest_bytes = manifest.canonical_bytes()
            signatures = [sign_manifest(manifest_bytes, key)]
        write_pack(out, manifest, payloads, signatures, manifest_bytes=manifest_bytes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    try:
        return read_pack(out, limits=limits)
    except MIPError:  # pragma: no cover - the writer checks what the reader checks
        out.unlink(missing_ok=True)
        raise
