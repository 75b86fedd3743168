"""A checked pack's blobs as byte ranges of files, to send: no extracted copy of a MIP 2 pack.

``memos publish`` and ``memos push`` used to read a pack into a temporary
folder first: a second copy of every blob on disk, one more write and one
more read of it, before the first byte was sent. A MIP 2 container is a
plain tar whose raw blob members are the blobs, so here each raw blob is a
range of the pack file itself (:func:`protocol.blob_locations`); a text blob
stored as a zstd frame is decompressed into a temporary file (text is small
next to tensors); a MIP 1 pack (one gzip stream: no offsets) is still
extracted.

The pack is read and checked in full (:func:`protocol.read_pack`: members,
digests, schema) before anything is offered; the registry checks every
blob's sha256 again on receipt, so a file changed between the check and the
upload is refused there, never published.

Not here: what to send and how (:mod:`runtime.blob_publish`, :mod:`runtime.oci.push`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import zstandard

from protocol import (
    IntegrityError,
    Pack,
    blob_locations,
    container_major,
    manifest_blobs,
    read_pack,
)

__all__ = ["BlobFile", "CheckedPack", "checked_pack"]

_COPY = 1024 * 1024


@dataclass(frozen=True)
class BlobFile:
    """A blob's bytes: ``path[offset : offset + size]``."""

    path: Path
    offset: int
    size: int

    def chunks(self, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """``length`` of the blob's bytes (default: to its end) from ``start`` on."""
        left = self.size - start if length is None else min(length, self.size - start)
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + start)
            while left > 0:
                chunk = fh.read(min(_COPY, left))
                if not chunk:
                    raise IntegrityError(
                        f"{self.path} shrank while its blobs were being sent",
                        code="integrity.size_mismatch", expected=self.size,
                        actual=self.size - left,
                    )  # fmt: skip
                left -= len(chunk)
                yield chunk


@dataclass(frozen=True)
class CheckedPack:
    """A pack as read and checked, and where each of its blobs' bytes lie (by sha256)."""

    pack: Pack
    blobs: dict[str, BlobFile]


def _unzstd(source: BlobFile, size: int, out: Path) -> BlobFile:
    reader = zstandard.ZstdDecompressor().stream_reader(
        b"".join(source.chunks()), read_across_frames=False
    )
    with open(out, "wb") as fh:
        while block := reader.read(_COPY):
            fh.write(block)
    return BlobFile(out, 0, size)


@contextmanager
def checked_pack(path: Path) -> Iterator[CheckedPack]:
    """Read and check the pack at ``path``; yield it with its blobs' byte ranges.

    Temporary files (decompressed text blobs, a MIP 1 pack's payloads) are
    removed on exit. Raises a protocol error for a pack that does not read.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="memos-send-") as tmp:
        work = Path(tmp)
        with open(path, "rb") as fh:
            major = container_major(fh.read(2))
        if major == 1:
            pack = read_pack(path, target=work / "pack")
            root = pack.root
            assert root is not None
            files = {e.sha256: root / e.paths[0] for e in manifest_blobs(pack.manifest)}
            yield CheckedPack(pack, {d: BlobFile(p, 0, p.stat().st_size) for d, p in files.items()})
            return
        pack = read_pack(path)  # every member, digest and record checked; nothing written
        where = blob_locations(path)
        blobs: dict[str, BlobFile] = {}
        for entry in manifest_blobs(pack.manifest):
            at = where[entry.sha256]  # read_pack refused a pack missing one
            stored = BlobFile(path, at.offset, at.stored_size)
            blobs[entry.sha256] = (
                _unzstd(stored, entry.size, work / entry.sha256) if at.compressed else stored
            )
        yield CheckedPack(pack, blobs)
