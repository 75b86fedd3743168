"""Splitting large memories files at record boundaries by content-defined chunking.

A MIP 2 pack stores each payload's content as a blob named by its sha256, so
an upgrade sends only the blobs that changed. One memories file of 100 MB
would still be one blob; :func:`split_records` cuts it into chunks so that
changing one memory changes one chunk (rarely two) and every other chunk keeps
its digest (SPEC section 14.3):

* a cut is only ever made after a line (a record), never inside one;
* whether a line ends a chunk depends on that line alone: it does when the
  first 8 bytes of its sha256, read as a big-endian integer, are below
  ``len(line) * 2**64 // AVERAGE_CHUNK`` (each byte is a cut point with
  probability 1 / 2 MiB, so chunks average 2 MiB);
* a chunk never exceeds ``MAX_CHUNK`` (8 MiB): the cut is made before the
  line that would pass it (a line longer than 8 MiB, invalid anyway, is cut).

Because a cut depends on nothing but the line it follows, an edit can only
move the cuts at the edited line: the chunk holding it changes, and if that
line starts or stops ending a chunk, its neighbour changes too. (A minimum
chunk size, as in fixed-window CDC, makes every cut depend on the previous
one, so a record that grows by a few lines shifts the cuts of the chunks after
it; measured on a 14 MiB file, about a fifth of one-record edits of up to 4 KB
changed 3 to 9 chunks.)

:func:`chunk_payloads` applies this to every memories payload larger than
``SPLIT_ABOVE`` (1 MiB) of a manifest, naming the chunks
``payloads/<cube>/<stem>.<nnnn>.jsonl``; the builder calls it for 2.0 packs
and :func:`protocol.migrate_pack` for migrations.

Not here: writing containers (:mod:`protocol._pack2_writer`), reading.
"""

from __future__ import annotations

import copy
import hashlib
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from ._cube import MediaType
from .manifest import Manifest
from .version import MIP2_VERSION

__all__ = [
    "AVERAGE_CHUNK",
    "MAX_CHUNK",
    "SPLIT_ABOVE",
    "chunk_payloads",
    "ends_chunk",
    "split_records",
]

AVERAGE_CHUNK = 2 * 1024 * 1024
MAX_CHUNK = 8 * 1024 * 1024
SPLIT_ABOVE = 1024 * 1024

_ONE = 1 << 64


def ends_chunk(line: bytes) -> bool:
    """Whether a chunk ends after ``line``: decided by the line's own sha256 and length."""
    value = int.from_bytes(hashlib.sha256(line).digest()[:8], "big")
    return value < len(line) * _ONE // AVERAGE_CHUNK


def split_records(stream: IO[bytes]) -> Iterator[bytes]:
    """The chunks of a JSONL stream, in order; they concatenate to the stream's bytes."""
    parts: list[bytes] = []
    size = 0
    for line in iter(lambda: stream.readline(MAX_CHUNK), b""):
        if parts and size + len(line) > MAX_CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
        parts.append(line)
        size += len(line)
        if ends_chunk(line):
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def _chunk_name(path: str, index: int) -> str:
    folder, _, name = path.rpartition("/")
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    return f"{folder}/{stem}.{index:04d}.jsonl"


def _open(source: Path | bytes) -> IO[bytes]:
    return io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")


def chunk_payloads(
    manifest: Manifest,
    files: Mapping[str, Path | bytes],
    work: Path,
    *,
    mip_version: str = MIP2_VERSION,
) -> tuple[Manifest, dict[str, Path | bytes]]:
    """``manifest`` as MIP 2 with each memories payload over 1 MiB split into chunks.

    ``files`` maps each payload path to its bytes or file; chunk files are
    written into ``work`` (created if needed; the caller removes it). Unknown
    fields of a split payload entry are kept on each of its chunks. Returns the
    new manifest (validated) and the new path -> source map.
    """
    data: dict[str, Any] = copy.deepcopy(manifest.to_dict())
    data["mip_version"] = mip_version
    out: dict[str, Path | bytes] = {}
    for cube in data["cubes"]:
        entries: list[dict[str, Any]] = []
        for entry in cube["payloads"]:
            source = files[entry["path"]]
            big = entry["size"] > SPLIT_ABOVE
            if entry["media_type"] != MediaType.MEMORIES_JSONL or not big:
                entries.append(entry)
                out[entry["path"]] = source
                continue
            with _open(source) as stream:
                for index, chunk in enumerate(split_records(stream)):
                    name = _chunk_name(entry["path"], index)
                    target = work / f"{len(out):06d}.jsonl"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(chunk)  # a work file: the pack itself is fsync'd
                    entries.append(
                        {
                            **entry,
                            "path": name,
                            "size": len(chunk),
                            "sha256": hashlib.sha256(chunk).hexdigest(),
                        }
                    )
                    out[name] = target
        cube["payloads"] = entries
    return Manifest.from_dict(data), out
