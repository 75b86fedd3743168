"""Where each blob lies inside a MIP 2 ``.memcube`` file, so it can be sent from there.

A MIP 2 container is a plain (uncompressed) tar, and a raw blob member's bytes
are the blob: a publisher or an OCI push can send them straight from the pack
file, at their offset, instead of extracting a second copy of every blob
(a 1 GB pack needed 1 GB of temporary disk and one more write and read of it).
Text blobs stored as one zstd frame (``<hex>.zst``) are marked ``compressed``:
their stored bytes are not the blob.

This reads tar headers only and trusts nothing: call :func:`protocol.read_pack`
on the file first (it checks every member, digest and signature); the
receiving registry checks each blob's sha256 again.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ._pack2_writer import BLOB_DIR, ZSTD_SUFFIX
from .errors import ArchiveError

__all__ = ["BlobLocation", "blob_locations"]

_BLOB = re.compile(
    "^" + re.escape(BLOB_DIR) + r"([0-9a-f]{64})(" + re.escape(ZSTD_SUFFIX) + r")?\Z"
)


@dataclass(frozen=True)
class BlobLocation:
    """One blob member: its stored bytes are ``path[offset : offset + stored_size]``."""

    sha256: str
    offset: int
    stored_size: int
    compressed: bool


def blob_locations(path: Path) -> dict[str, BlobLocation]:
    """The blob members of the MIP 2 container at ``path``, by digest.

    Raises ``archive.corrupt`` when the file is not a plain tar (a MIP 1
    pack is gzip-compressed: its payloads have no offsets to send from).
    """
    found: dict[str, BlobLocation] = {}
    try:
        with tarfile.open(Path(path), mode="r:") as tar:
            for member in tar:
                match = _BLOB.match(member.name)
                if match and member.isfile():
                    found[match.group(1)] = BlobLocation(
                        sha256=match.group(1), offset=member.offset_data,
                        stored_size=member.size, compressed=match.group(2) is not None,
                    )  # fmt: skip
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(
            f"{path} is not a MIP 2 container (plain tar): {exc}", code="archive.corrupt"
        ) from exc
    return found
