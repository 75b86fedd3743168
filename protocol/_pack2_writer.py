"""Writing a MIP 2 pack: a plain deterministic tar of the manifest, the blobs, the signatures.

Members, in this order (SPEC section 14.4)::

    manifest.json                  RFC 8785 canonical bytes of the 2.x manifest
    blobs/sha256/<hex>             a blob stored raw, or
    blobs/sha256/<hex>.zst         one zstd frame whose decompressed bytes are the blob
    signatures/<keyid>.json        DSSE envelopes (SPEC section 16), sorted by key id

Each distinct digest is stored once, blobs sorted by digest. The tar is not
compressed (so tensors can be hashed and mapped straight from the file) and
uses the member metadata of MIP 1 (mtime 0, uid/gid 0, mode 0644, PAX).
Tensors (KV caches, LoRA weights) are always raw; text (memories, LoRA
config) is stored as a zstd frame only when that saves at least 10 %. The
frame is written with a fixed level, its content size, no checksum and no
dictionary id, so one library version gives byte-identical packs; the
signatures do not depend on it (they cover the manifest, which names blobs by
their content).

Not here: chunking text (:mod:`protocol.chunking`), reading
(:mod:`protocol._pack2_reader`).
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO

import zstandard

from ._cube import MediaType
from ._pack_members import MANIFEST_MEMBER, SIGNATURE_DIR
from ._pack_writer import atomic_output, check_payload_set, tarinfo
from .blobs import BlobEntry, manifest_blobs
from .errors import ArchiveError
from .manifest import Manifest
from .signing import Signature

__all__ = ["BLOB_DIR", "TEXT_MEDIA_TYPES", "ZSTD_SUFFIX", "blob_member_name", "write_pack2"]

BLOB_DIR = "blobs/sha256/"
ZSTD_SUFFIX = ".zst"
#: Media types that may be stored compressed; every other blob is stored raw.
TEXT_MEDIA_TYPES = frozenset({MediaType.MEMORIES_JSONL.value, MediaType.LORA_CONFIG.value})
ZSTD_LEVEL = 9
#: Compress a text blob only when the frame is at most this fraction of it.
MAX_ZSTD_FRACTION = 0.9


def blob_member_name(digest: str, *, compressed: bool) -> str:
    return f"{BLOB_DIR}{digest}{ZSTD_SUFFIX if compressed else ''}"


def _compressor() -> zstandard.ZstdCompressor:
    return zstandard.ZstdCompressor(
        level=ZSTD_LEVEL, write_checksum=False, write_content_size=True, write_dict_id=False
    )


def _open(source: Path | bytes) -> IO[bytes]:
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


def _add_blob(tar: tarfile.TarFile, entry: BlobEntry, source: Path | bytes) -> None:
    if entry.media_type in TEXT_MEDIA_TYPES and entry.size > 0:
        with tempfile.TemporaryFile() as frame, _open(source) as fh:
            _compressor().copy_stream(fh, frame, size=entry.size)
            length = frame.tell()
            if length <= entry.size * MAX_ZSTD_FRACTION:
                frame.seek(0)
                tar.addfile(tarinfo(blob_member_name(entry.sha256, compressed=True), length), frame)
                return
    with _open(source) as fh:
        tar.addfile(tarinfo(blob_member_name(entry.sha256, compressed=False), entry.size), fh)


def write_pack2(
    out: Path,
    manifest: Manifest,
    payloads: Mapping[str, Path | bytes],
    signatures: Iterable[Signature] = (),
    *,
    manifest_bytes: bytes | None = None,
) -> Path:
    """Write a MIP 2 pack atomically to ``out``; ``payloads`` as for MIP 1.

    Every payload source is checked against its entry first; payloads that
    share a digest are one blob, written once.
    """
    if manifest.major != 2:
        raise ArchiveError(
            f"a MIP {manifest.mip_version} manifest cannot go in a MIP 2 container",
            code="archive.version_mismatch",
        )
    if manifest_bytes is None:
        manifest_bytes = manifest.canonical_bytes()
    check_payload_set(manifest, payloads)
    out = Path(out)
    with (
        atomic_output(out) as raw,
        tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(tarinfo(MANIFEST_MEMBER, len(manifest_bytes)), io.BytesIO(manifest_bytes))
        for entry in manifest_blobs(manifest):
            _add_blob(tar, entry, payloads[entry.paths[0]])
        for sig in sorted({s.keyid: s for s in signatures}.values(), key=lambda s: s.keyid):
            body = sig.envelope_bytes(manifest_bytes)
            tar.addfile(tarinfo(f"{SIGNATURE_DIR}{sig.keyid}.json", len(body)), io.BytesIO(body))
    return out
