"""Part files of resumable uploads: append a chunk at an offset, hash the whole.

Shared by the pack upload sessions (:mod:`memstore.packs.uploads`) and the per-blob
uploads (:mod:`memstore.packs.blob_uploads`). A chunk is written at the offset the
database recorded, after truncating anything past it (the bytes of a chunk whose
commit was lost), and fsynced before the caller commits the new offset, so a crash
at any point leaves a part file the next chunk can continue.

:func:`check_chunk_size` and :func:`check_chunk` are the one rule for a chunk (its
size, its offset, the announced total); each caller passes its own stable codes.

Not here: the offsets and states (the callers' rows), where finished blobs go
(:mod:`memstore.storage.backends`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from ..errors import ConflictError, InvalidRequestError, TooLargeError

__all__ = [
    "ChunkCodes",
    "check_chunk",
    "check_chunk_size",
    "part_append",
    "part_path",
    "part_sha256",
]

_CHUNK = 1024 * 1024


def part_path(name: str) -> Path:
    """``name`` in the upload folder (``MEMSTORE_UPLOAD_DIR``), which is created if needed."""
    root = Path(settings.MEMSTORE_UPLOAD_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root / name


@dataclass(frozen=True)
class ChunkCodes:
    """The error codes one kind of upload answers a misplaced chunk with."""

    too_large: str
    offset_mismatch: str
    too_long: str


def check_chunk_size(length: int, codes: ChunkCodes) -> None:
    """Refuse a chunk over ``MEMSTORE_UPLOAD_CHUNK_BYTES`` (checked before any row is locked)."""
    max_chunk: int = settings.MEMSTORE_UPLOAD_CHUNK_BYTES
    if length > max_chunk:
        raise TooLargeError(
            f"a chunk may be at most {max_chunk} bytes", code=codes.too_large, limit=max_chunk
        )


def check_chunk(*, offset: int, current: int, size: int, length: int, codes: ChunkCodes) -> None:
    """Refuse a chunk sent at ``offset`` of an upload that stands at ``current`` of ``size``."""
    if offset != current:
        raise ConflictError(
            f"expected a chunk at offset {current}, got {offset}",
            code=codes.offset_mismatch,
            offset=current,
        )
    if current + length > size:
        raise InvalidRequestError(
            "the chunk goes past the announced size", code=codes.too_long, size=size
        )


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
