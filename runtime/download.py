"""Resumable, verified downloads into the blob cache: one pass, one fsync, one rename.

A download of blob ``sha256`` writes to ``cache/partial/<sha256>.part``. The
partial file's size is the resume offset: a killed process leaves it behind,
and the next attempt (in any process) hashes the bytes already there and asks
for the rest (HTTP ``Range: bytes=<offset>-``). A server that ignores the
range (200) restarts the file from zero. The sha256 is computed while the
bytes arrive; bytes past the declared size are never written; on completion
size and digest are checked, the file is fsynced once and renamed into the
cache. A mismatch deletes the partial file and raises
``integrity.digest_mismatch`` / ``integrity.size_mismatch``.

:func:`fetch_into_cache` takes any byte source (an :data:`Opener`: the
registry, a pack source, an OCI registry); :func:`download_blob` is it over
one URL of a :class:`~runtime.client.RegistryClient`.

The per-digest lock serialises two processes wanting the same blob: the
second waits, then finds the blob complete.

Not here: which blobs to fetch or trust (:mod:`runtime.install`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from protocol import IntegrityError

from ._writeback import start_writeback
from .cache import BlobCache
from .client import RegistryClient
from .download_segments import (
    Chunk,
    RangeOpener,
    fetch_segmented,
    recorded_segments,
    segments_record,
)
from .errors import RegistryError

__all__ = [
    "SEGMENT_MIN_BYTES",
    "Chunk",
    "Opener",
    "ProgressFn",
    "RangeOpener",
    "download_blob",
    "fetch_into_cache",
    "url_opener",
    "url_range_opener",
]

#: Called with (bytes done, bytes total) as the download advances.
ProgressFn = Callable[[int, int], None]

#: Given a resume offset, opens the blob's bytes: yields (start, chunks), where
#: ``start`` is the offset the chunks begin at (the one asked for, or 0 when the
#: source restarts from the beginning). Retryable failures raise RegistryError
#: with a ``network.*`` code.
Opener = Callable[[int], AbstractContextManager[tuple[int, Iterator[Chunk]]]]


#: Blobs at least this large may be fetched as several ranges at once (smaller ones
#: gain nothing: a request's round trip costs more than the bytes).
SEGMENT_MIN_BYTES = 32 * 1024 * 1024
#: Bytes received between two requests to start writing them back (runtime._writeback).
_WRITEBACK_EVERY = 8 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def _hash_prefix(path: Path, limit: int) -> tuple[hashlib._Hash, int]:
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        while done < limit:
            chunk = fh.read(min(1024 * 1024, limit - done))
            if not chunk:
                break
            h.update(chunk)
            done += len(chunk)
    return h, done


def url_opener(client: RegistryClient, url: str) -> Opener:
    """An :data:`Opener` over ``url`` with HTTP Range (206 resumes, 200 restarts)."""

    @contextmanager
    def open_at(offset: int) -> Iterator[tuple[int, Iterator[Chunk]]]:
        with client.open_blob_body(url, offset=offset) as response:
            if response.status_code == 416:  # the server has nothing past offset
                yield offset, iter(())
                return
            start = 0
            if response.status_code == 206 and offset:
                match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
                if not match or int(match.group(1)) != offset:
                    raise RegistryError(
                        "the server answered a different byte range than asked for",
                        code="network.bad_range",
                    )
                start = offset
            yield start, response.chunks

    return open_at


def url_range_opener(client: RegistryClient, url: str) -> RangeOpener:
    """A :data:`RangeOpener` over ``url``: exactly [start, end), or ``network.no_range``."""

    @contextmanager
    def open_range(start: int, end: int) -> Iterator[Iterator[Chunk]]:
        with client.open_blob_body(url, offset=start, end=end) as response:
            expected = f"bytes {start}-{end - 1}/"
            if response.status_code != 206 or not response.headers.get(
                "content-range", ""
            ).startswith(expected):
                raise RegistryError(
                    "the server does not serve byte ranges of this blob",
                    code="network.no_range",
                )
            yield response.chunks

    return open_range


def download_blob(
    client: RegistryClient,
    url: str,
    *,
    sha256: str,
    size: int,
    cache: BlobCache,
    progress: ProgressFn | None = None,
    retries: int = 3,
) -> Path:
    """Fetch blob ``sha256`` (``size`` bytes) from ``url`` into the cache; return its path."""
    return fetch_into_cache(
        url_opener(client, url), sha256=sha256, size=size, cache=cache, progress=progress,
        retries=retries,
    )  # fmt: skip


def fetch_into_cache(
    open_at: Opener,
    *,
    sha256: str,
    size: int,
    cache: BlobCache,
    progress: ProgressFn | None = None,
    retries: int = 3,
    open_range: RangeOpener | None = None,
    segments: int = 1,
) -> Path:
    """Stream blob ``sha256`` from ``open_at`` into the cache (resuming); return its path.

    A blob already cached and intact is not fetched again; a cached blob
    that does not match its name is replaced. With ``open_range`` and
    ``segments`` > 1, a blob of at least :data:`SEGMENT_MIN_BYTES` is fetched
    as that many ranges at once (:mod:`runtime.download_segments`); a source
    that will not serve ranges falls back to one stream.
    """
    if cache.is_intact(sha256, size):
        if progress:
            progress(size, size)
        return cache.blob_path(sha256)
    with cache.lock(sha256):
        if cache.has(sha256):  # another process committed it while this one waited
            if progress:
                progress(size, size)
            return cache.blob_path(sha256)
        partial = cache.partial_path(sha256)
        recorded = recorded_segments(partial)
        if recorded is not None:  # resume a segmented download with its own layout
            segments = recorded
        attempt = 0
        while True:
            try:
                if (
                    open_range is not None
                    and segments > 1
                    and (size >= SEGMENT_MIN_BYTES or recorded is not None)
                ):
                    fetch_segmented(
                        open_range, partial, sha256=sha256, size=size, segments=segments,
                        progress=progress,
                    )  # fmt: skip
                    return cache.commit_file(partial, sha256, size=size, verify=False)
                if segments_record(partial).exists():  # sparse: its size is no offset
                    partial.unlink(missing_ok=True)
                    segments_record(partial).unlink(missing_ok=True)
                return _attempt(open_at, sha256, size, cache, progress)
            except RegistryError as exc:
                if exc.code == "network.no_range":  # one stream, as every server allows
                    open_range = None
                    continue
                attempt += 1
                if attempt > retries or not exc.code.startswith("network."):
                    raise


def _attempt(
    open_at: Opener, sha256: str, size: int, cache: BlobCache, progress: ProgressFn | None
) -> Path:
    partial = cache.partial_path(sha256)
    offset = partial.stat().st_size if partial.exists() else 0
    if offset > size:
        partial.unlink()
        offset = 0
    hasher, offset = _hash_prefix(partial, offset) if offset else (hashlib.sha256(), 0)
    oversize = False
    if offset < size:
        with open_at(offset) as (start, chunks):
            if start != offset:  # the source restarts from zero
                offset, hasher = 0, hashlib.sha256()
            with open(partial, "r+b" if offset else "wb") as fh:
                fh.seek(offset)
                fh.truncate()
                if progress:
                    progress(offset, size)
                written = offset  # the start of the bytes not yet handed to writeback
                try:
                    for chunk in chunks:
                        if offset + len(chunk) > size:  # never write past the declared size
                            chunk = chunk[: size - offset]
                            oversize = True
                        fh.write(chunk)
                        hasher.update(chunk)
                        offset += len(chunk)
                        if offset - written >= _WRITEBACK_EVERY:  # the disk works meanwhile
                            start_writeback(fh.fileno(), written, offset - written)
                            written = offset
                        if progress:
                            progress(offset, size)
                        if oversize:
                            break
                finally:
                    fh.flush()  # what arrived stays for the next attempt (fsynced only once)
    if oversize or offset != size:
        partial.unlink(missing_ok=True)
        raise IntegrityError(
            f"the source sent {'more than' if oversize else offset} bytes, expected {size}",
            code="integrity.size_mismatch",
            expected=size,
            actual=offset,
        )
    digest = hasher.hexdigest()
    if digest != sha256:
        partial.unlink(missing_ok=True)
        raise IntegrityError(
            f"downloaded blob has sha256 {digest[:16]}…, expected {sha256[:16]}…: refused",
            code="integrity.digest_mismatch",
            expected=sha256,
            actual=digest,
        )
    return cache.commit_file(partial, sha256, size=size, verify=False)
