"""HTTP byte ranges (RFC 9110 section 14): which bytes of a blob a ``Range`` header asks for.

Only a single range is served: ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n``. As the RFC
allows, a header that is malformed, names another unit or asks for several ranges is
ignored (the whole blob is sent, 200). A well-formed single range that selects nothing
(``a`` at or past the end, ``-0``, anything of an empty blob) is unsatisfiable (416).
A suffix longer than the blob selects the whole blob, as the RFC says (werkzeug's
``range_for_length`` refuses it, which is why this is not werkzeug).

Not here: the HTTP response (:mod:`memstore.storage.responses`), who may read a blob.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ByteRange", "RangeNotSatisfiable", "parse_range"]

_RANGE = re.compile(r"^bytes=(?:(\d+)-(\d*)|-(\d+))$")
_MAX_DIGITS = 19  # past any real size; keeps int() of a hostile header cheap


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive, of a blob of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


class RangeNotSatisfiable(Exception):
    """The header is a valid single range that selects no byte of the blob."""

    def __init__(self, size: int) -> None:
        super().__init__(f"no byte of a {size}-byte blob is in the range")
        self.size = size

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range ``header`` selects of ``size`` bytes; None for the whole blob.

    Raises :class:`RangeNotSatisfiable` for a valid range that selects nothing.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None or any(g is not None and len(g) > _MAX_DIGITS for g in match.groups()):
        return None
    first, last, suffix = match.groups()
    if suffix is not None:
        n = int(suffix)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(start=max(0, size - n), end=size - 1, size=size)
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignore the header
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = min(int(last), size - 1) if last else size - 1
    return ByteRange(start=start, end=end, size=size)
