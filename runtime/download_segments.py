"""One large blob over several HTTP range requests at once, hashed in order as it lands.

A single HTTP stream into Python tops out well below the loopback or LAN
link (receive, write and hash share one thread), so an upgrade that fetches
one changed 100 MB blob ran at a quarter of the speed of a fresh install
fetching four blobs at a time. Here a blob of ``size`` bytes is cut into
contiguous **pieces** (:func:`pieces`: 8-64 MiB, a layout that depends on
the size alone), and ``streams`` threads take the pieces *in order*, each
fetching its piece with a bounded ``Range: bytes=a-b`` and writing it at its
offset into the one partial file ``cache/partial/<sha256>.part``
(``os.pwrite``: no second copy, nothing to concatenate). A hasher thread
follows the *contiguous frontier* -- the longest prefix of the blob already
written -- reading those bytes back from the page cache into one reused
buffer.

Why pieces taken in order, not one long range per stream: sha256 is
sequential, so the hasher can only advance as fast as the frontier. With
``n`` long ranges the frontier moves at a ``1/n`` share of the link until
the first range ends, and most of the blob is hashed after the last byte
arrived (measured: four ranges of a 119 MB blob were no faster than one
stream). With pieces handed out in order, the frontier moves at the whole
link's rate and the hash ends a few pieces after the last byte.

Resume: the partial file is sparse, so its size says nothing. Each piece's
progress is recorded in ``<sha256>.part.segments`` (JSON, replaced
atomically, written only after the bytes it counts). A killed process leaves
both files; the next attempt re-fetches only what the record does not
cover. The record is a hint, not a trust anchor: whatever it says, the
whole blob is hashed before it enters the cache, and a mismatch deletes both
files (``integrity.digest_mismatch``). Bytes past a piece's end are never
written, and the last piece ends at the declared size.

A source that does not honour a bounded range raises ``network.no_range``;
the caller (:func:`runtime.download.fetch_into_cache`) then falls back to
one sequential stream. Not here: choosing when to segment (the fetch step,
:mod:`runtime.install.fetch`), the sequential path, the cache's atomic commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, suppress
from pathlib import Path

from protocol import IntegrityError

from ._writeback import start_writeback
from .errors import RegistryError

__all__ = [
    "Chunk",
    "RangeOpener",
    "fetch_segmented",
    "pieces",
    "recorded_segments",
    "segments_record",
    "split",
]

#: A block of a blob's bytes. A view may be of a buffer its source reuses: valid
#: until the next block is asked for (each is written and hashed before that).
Chunk = bytes | memoryview

#: Given [start, end), opens exactly those bytes of the blob (or raises RegistryError:
#: ``network.no_range`` when the source will not serve a bounded range).
RangeOpener = Callable[[int, int], AbstractContextManager[Iterator[Chunk]]]

PIECE_MIN = 8 * 1024 * 1024  # a request's set-up is small against this many bytes
PIECE_MAX = 64 * 1024 * 1024  # ... and a 10 GB blob still needs only ~160 requests
_PIECES_PER_BLOB = 16
_RECORD_EVERY = 8 * 1024 * 1024  # bytes between two writes of the progress record
_NOTIFY_EVERY = 1024 * 1024  # bytes a piece receives between two wake-ups of the hasher
_HASH_READ = 4 * 1024 * 1024


def segments_record(partial: Path) -> Path:
    """Where the per-piece progress of the partial download ``partial`` is kept."""
    return partial.with_name(partial.name + ".segments")


def recorded_segments(partial: Path) -> int | None:
    """How many pieces an interrupted segmented download of ``partial`` recorded (None: none)."""
    try:
        count = len(json.loads(segments_record(partial).read_text())["segments"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return count if count > 0 else None


def split(size: int, n: int) -> list[tuple[int, int]]:
    """``size`` bytes as ``n`` contiguous [start, end) segments (the last may be longer)."""
    n = max(1, min(n, size))
    step = size // n
    bounds = [i * step for i in range(n)] + [size]
    return [(bounds[i], bounds[i + 1]) for i in range(n)]


def pieces(size: int) -> list[tuple[int, int]]:
    """The pieces a blob of ``size`` bytes is fetched in: a function of the size alone.

    It must not depend on the stream count, so that a download resumed with
    more or fewer streams still matches its record.
    """
    piece = min(PIECE_MAX, max(PIECE_MIN, size // _PIECES_PER_BLOB))
    return split(size, max(1, -(-size // piece)))


class _Progress:
    """Bytes done per piece, shared by the fetch threads, the hasher and the record."""

    def __init__(self, layout: list[tuple[int, int]], done: list[int]) -> None:
        self.segments = layout
        self.done = done
        self.changed = threading.Condition()
        self.failed: BaseException | None = None
        self.finished = 0
        self._next = 0
        self._front = 0  # every piece before this one is complete

    def take(self) -> int | None:
        """The next piece nobody has started (in order), or None when all are taken."""
        with self.changed:
            while self._next < len(self.segments):
                index = self._next
                self._next += 1
                start, end = self.segments[index]
                if start + self.done[index] < end:
                    return index
            return None

    def frontier(self) -> int:
        """The end of the longest fully written prefix of the blob (caller holds ``changed``)."""
        while self._front < len(self.segments):
            start, end = self.segments[self._front]
            if start + self.done[self._front] < end:
                return start + self.done[self._front]
            self._front += 1
        return self.segments[-1][1]

    def total(self) -> int:
        return sum(self.done)


def _load_record(record: Path, size: int, layout: list[tuple[int, int]]) -> list[int]:
    """Per-piece bytes a previous attempt wrote (zeros when there is no usable record)."""
    try:
        data = json.loads(record.read_text())
        if data.get("size") == size and [tuple(s) for s in data["segments"]] == layout:
            done = [int(d) for d in data["done"]]
            if all(0 <= d <= e - s for d, (s, e) in zip(done, layout, strict=True)):
                return done
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return [0] * len(layout)


def _save_record(record: Path, size: int, progress: _Progress) -> None:
    with progress.changed:
        body = {"size": size, "segments": progress.segments, "done": list(progress.done)}
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, record)


def _fetch_piece(
    open_range: RangeOpener,
    fd: int,
    index: int,
    progress: _Progress,
    on_bytes: Callable[[int], None],
) -> None:
    start, end = progress.segments[index]
    pos = start + progress.done[index]
    told = pos
    with open_range(pos, end) as chunks:
        for chunk in chunks:
            if progress.failed is not None:
                return
            if pos + len(chunk) > end:  # never write past what was asked for
                raise IntegrityError(
                    f"the source sent more than the {end - start} bytes of a piece",
                    code="integrity.size_mismatch", expected=end - start,
                    actual=pos + len(chunk) - start,
                )  # fmt: skip
            os.pwrite(fd, chunk, pos)
            pos += len(chunk)
            if pos - told >= _NOTIFY_EVERY or pos == end:
                with progress.changed:
                    progress.done[index] = pos - start
                    progress.changed.notify_all()
                on_bytes(pos - told)
                told = pos
    if pos != told:
        with progress.changed:
            progress.done[index] = pos - start
        on_bytes(pos - told)
    if pos != end:
        raise RegistryError(
            f"a piece ended {end - pos} bytes early", code="network.download_interrupted"
        )


def _hash_in_order(fd: int, size: int, progress: _Progress, streams: int) -> hashlib._Hash:
    """sha256 of the blob, reading each byte back as soon as everything before it is written."""
    hasher = hashlib.sha256()
    buffer = bytearray(_HASH_READ)
    view = memoryview(buffer)
    hashed = 0
    while hashed < size:
        with progress.changed:
            while progress.frontier() <= hashed and progress.failed is None:
                if progress.finished == streams:
                    break
                progress.changed.wait(0.5)
            if progress.failed is not None:
                return hasher
            frontier = progress.frontier()
        if frontier <= hashed:  # every fetch thread ended and the blob is still short
            return hasher
        while hashed < frontier:
            count = os.preadv(fd, [view[: min(_HASH_READ, frontier - hashed)]], hashed)
            if not count:
                return hasher
            hasher.update(view[:count])
            start_writeback(fd, hashed, count)  # final bytes: let the disk start on them
            hashed += count
    return hasher


def fetch_segmented(
    open_range: RangeOpener,
    partial: Path,
    *,
    sha256: str,
    size: int,
    segments: int,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Fill ``partial`` with the blob's ``size`` bytes over ``segments`` streams; check its sha256.

    On success ``partial`` holds exactly the blob (fsynced) and its record is gone.
    Raises ``network.*`` RegistryError (retry: the record lets the next attempt
    resume), ``integrity.digest_mismatch`` / ``integrity.size_mismatch`` (both
    files deleted).
    """
    layout = pieces(size)
    record = segments_record(partial)
    done = [0] * len(layout)
    if record.exists():
        done = _load_record(record, size, layout)
    elif partial.exists() and partial.stat().st_size < size:  # a one-stream partial: a prefix
        prefix = partial.stat().st_size
        done = [max(0, min(prefix, end) - start) for start, end in layout]
    state = _Progress(layout, done)
    streams = max(1, min(segments, len(layout)))
    fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o644)
    lock, saving = threading.Lock(), threading.Lock()
    since_record = [0]

    def on_bytes(count: int) -> None:
        if progress is not None:
            progress(state.total(), size)
        with lock:
            since_record[0] += count
            due = since_record[0] >= _RECORD_EVERY
            if due:
                since_record[0] = 0
        if due:
            with saving:
                _save_record(record, size, state)

    def run() -> None:
        try:
            while state.failed is None and (index := state.take()) is not None:
                _fetch_piece(open_range, fd, index, state, on_bytes)
        except BaseException as exc:  # handed to the caller below
            with state.changed:
                if state.failed is None:
                    state.failed = exc
                state.changed.notify_all()
        finally:
            with state.changed:
                state.finished += 1
                state.changed.notify_all()

    try:
        os.ftruncate(fd, size)
        if progress is not None:
            progress(state.total(), size)
        threads = [threading.Thread(target=run, daemon=True) for _ in range(streams)]
        for thread in threads:
            thread.start()
        hasher = _hash_in_order(fd, size, state, streams)
        for thread in threads:
            thread.join()
        if state.failed is not None:
            _save_record(record, size, state)
            if isinstance(state.failed, IntegrityError):
                _discard(partial, record)
            raise state.failed
        with state.changed:
            complete = state.frontier() == size
        if not complete:  # cannot happen without a failure; never commit it
            _save_record(record, size, state)
            raise RegistryError("a piece is incomplete", code="network.download_interrupted")
        digest = hasher.hexdigest()
        if digest != sha256:
            _discard(partial, record)
            raise IntegrityError(
                f"downloaded blob has sha256 {digest[:16]}…, expected {sha256[:16]}…: refused",
                code="integrity.digest_mismatch", expected=sha256, actual=digest,
            )  # fmt: skip
        os.fsync(fd)
    finally:
        os.close(fd)
    record.unlink(missing_ok=True)


def _discard(partial: Path, record: Path) -> None:
    with suppress(OSError):
        partial.unlink()
    with suppress(OSError):
        record.unlink()
