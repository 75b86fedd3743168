"""Reading a pack under hard limits: the byte streams that count, hash and refuse.

:class:`ReadLimits` names every limit. The reader stacks three guards under
the tar parser: :class:`CountingReader` on the raw file (hashes it, refuses a
file over ``max_pack_bytes``), :class:`Inflated` on the gzip stream (every
decompressed byte, tar headers and padding included, is charged to a
:class:`Budget` that enforces the total size and the compression ratio), and
:func:`safe_tarinfo`, which refuses an oversized PAX or GNU long-name header
before the tar module reads it into memory. ``Inflated`` also checks that
nothing but zeros follows the end of the archive.

Not here: per-member rules (:mod:`protocol._pack_members`), the member loop
and the manifest's own limits (:mod:`protocol._pack_reader`).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from .errors import ArchiveError, LimitExceededError

__all__ = ["CHUNK", "Budget", "CountingReader", "Inflated", "ReadLimits", "safe_tarinfo"]

#: How many bytes the reader moves at a time.
CHUNK = 1024 * 1024
_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """Hard limits for reading a pack. Defaults suit packs of a few GiB."""

    max_pack_bytes: int = 8 * 1024**3
    max_manifest_bytes: int = 4 * 1024**2
    max_members: int = 10_000
    max_total_bytes: int = 16 * 1024**3
    max_compression_ratio: int = 200
    max_signatures: int = 64
    # PAX extended headers and GNU long names are read into memory by tar readers.
    max_header_bytes: int = 1024**2
    # Ratios are only meaningful once a little data has been read.
    ratio_grace_bytes: int = 4 * 1024**2


class CountingReader(io.RawIOBase):
    """Wraps the raw pack file: hashes it and counts compressed bytes read."""

    def __init__(self, raw: BinaryIO, limits: ReadLimits) -> None:
        self._raw = raw
        self._limits = limits
        self.sha256 = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        self.count += len(data)
        if self.count > self._limits.max_pack_bytes:
            raise LimitExceededError(
                f"pack is larger than {self._limits.max_pack_bytes} bytes",
                code="archive.limit.pack_size",
            )
        self.sha256.update(data)
        buffer[: len(data)] = data
        return len(data)


class Budget:
    """Tracks decompressed bytes against the total and compression-ratio limits.

    Every decompressed byte counts (tar headers and padding included), so a
    bomb hidden in a PAX header or in padding is caught like one in a payload.
    """

    def __init__(self, counter: CountingReader, limits: ReadLimits) -> None:
        self.counter = counter
        self.limits = limits
        self.total = 0

    def spend(self, amount: int) -> None:
        self.total += amount
        if self.total > self.limits.max_total_bytes:
            raise LimitExceededError(
                f"pack content exceeds {self.limits.max_total_bytes} bytes",
                code="archive.limit.total_size",
            )
        compressed = max(self.counter.count, 1)
        if (
            self.total > self.limits.ratio_grace_bytes
            and self.total > compressed * self.limits.max_compression_ratio
        ):
            raise LimitExceededError(
                f"compression ratio exceeds {self.limits.max_compression_ratio}:1 "
                "(a decompression bomb?)",
                code="archive.limit.compression_ratio",
            )


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Inflated(io.RawIOBase):
    """The tar stream (gunzipped for MIP 1, as is for MIP 2): every byte budgeted.

    A short tail is kept for the end check.
    """

    def __init__(self, gz: Readable, budget: Budget) -> None:
        self._gz = gz
        self._budget = budget
        self.position = 0
        self._tail = bytearray()
        self._tail_start = 0

    def readable(self) -> bool:
        return True

    def _take(self, size: int) -> bytes:
        data = self._gz.read(size)
        self._budget.spend(len(data))
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self._take(len(buffer))
        self._tail += data
        if len(self._tail) > 2 * _TAIL_BYTES:
            drop = len(self._tail) - _TAIL_BYTES
            del self._tail[:drop]
            self._tail_start += drop
        buffer[: len(data)] = data
        return len(data)

    def check_end(self, offset: int) -> None:
        """Everything from ``offset`` (where the tar reader stopped) to the end must be zeros.

        A tar reader stops quietly at an unreadable header; without this check a
        damaged or appended header would silently hide the members after it.
        """
        if offset < self._tail_start or self._tail[offset - self._tail_start :].strip(b"\0"):
            raise ArchiveError(
                f"unreadable tar header or data after the end of the archive at offset {offset}",
                code="archive.trailing_data",
            )
        for chunk in iter(lambda: self._take(CHUNK), b""):
            if chunk.strip(b"\0"):
                raise ArchiveError(
                    "non-zero data after the end of the tar archive", code="archive.trailing_data"
                )
        if self.position - offset < 2 * tarfile.BLOCKSIZE:
            raise ArchiveError(
                "the tar archive is truncated: no end-of-archive marker", code="archive.corrupt"
            )


def safe_tarinfo(limits: ReadLimits) -> type[tarfile.TarInfo]:
    """A TarInfo that refuses oversized PAX / GNU long-name headers before reading them."""

    class _SafeTarInfo(tarfile.TarInfo):
        def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
            if self.type in _EXTENDED_TYPES and self.size > limits.max_header_bytes:
                raise LimitExceededError(
                    f"a tar extended header is {self.size} bytes; the limit is "
                    f"{limits.max_header_bytes}",
                    code="archive.limit.header_size",
                )
            result: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
            return result

    return _SafeTarInfo


_EXTENDED_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
