"""Part files of resumable uploads: append a chunk at an offset, hash the whole.

Shared by the pack upload sessions (:mod:`memstore.packs.uploads`) and the per-blob
uploads (:mod:`memstore.packs.blob_uploads`). A chunk is written at the offset the
database recorded, after truncating anything past it (the bytes of a chunk whose
commit was lost), and fsynced before the caller commits the new offset, so a crash
at any point leaves a part file the next chunk can continue.

Not here: the offsets and states (the callers' rows), where finished blobs go
(:mod:`memstore.storage.backends`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from django.conf import settings

__all__ = ["part_append", "part_path", "part_sha256"]

_CHUNK = 1024 * 1024


def part_path(name: str) -> Path:
    """``name`` in the upload folder (``MEMSTORE_UPLOAD_DIR``), which is created if needed."""
    root = Path(settings.MEMSTORE_UPLOAD_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root / name


def part_append(path: Path, offset: int, data: bytes) -> None:
    """Write ``data`` at ``offset`` of ``path``, dropping anything after ``offset``; fsync."""
    with open(path, "r+b" if path.exists() else "wb") as fh:
        fh.truncate(offset)
        fh.seek(offset)
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def part_sha256(path: Path, size: int) -> str:
    """The sha256 of the first ``size`` bytes of ``path``."""
    digest = hashlib.sha256()
    left = size
    with open(path, "rb") as fh:
        while left > 0:
            chunk = fh.read(min(_CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()
