"""One large blob over several HTTP range requests at once, hashed in order as it lands.

A single HTTP stream into Python tops out well below the loopback or LAN
link (receive, write and hash share one thread), so an upgrade that fetches
one changed 100 MB blob ran at a quarter of the speed of a fresh install
fetching four blobs at a time. Here a blob of ``size`` bytes is cut into
``n`` contiguous segments; each is fetched by its own thread with a bounded
``Range: bytes=a-b`` and written at its offset into the one partial file
``cache/partial/<sha256>.part`` (``os.pwrite``: no second copy, nothing to
concatenate). A hasher thread follows the *contiguous frontier* -- the
longest prefix of the blob already written -- reading those bytes back from
the page cache, so the sha256 is done moments after the last byte arrives.

Resume: the partial file is sparse, so its size says nothing. Each segment's
progress is recorded in ``<sha256>.part.segments`` (JSON, replaced
atomically, written only after the bytes it counts). A killed process leaves
both files; the next attempt re-fetches only what the record does not
cover. The record is a hint, not a trust anchor: whatever it says, the
whole blob is hashed before it enters the cache, and a mismatch deletes both
files (``integrity.digest_mismatch``). Bytes past a segment's end are never
written, and the last segment ends at the declared size.

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

from .errors import RegistryError

__all__ = [
    "Chunk",
    "RangeOpener",
    "fetch_segmented",
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

_RECORD_EVERY = 8 * 1024 * 1024  # bytes between two writes of the progress record
_HASH_READ = 4 * 1024 * 1024


def segments_record(partial: Path) -> Path:
    """Where the per-segment progress of the partial download ``partial`` is kept."""
    return partial.with_name(partial.name + ".segments")


def recorded_segments(partial: Path) -> int | None:
    """How many segments an interrupted segmented download of ``partial`` used (None: none)."""
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


class _Progress:
    """Bytes done per segment, shared by the fetch threads, the hasher and the record."""

    def __init__(self, segments: list[tuple[int, int]], done: list[int]) -> None:
        self.segments = segments
        self.done = done
        self.changed = threading.Condition()
        self.failed: BaseException | None = None
        self.finished = 0

    def frontier(self) -> int:
        """The end of the longest fully written prefix of the blob."""
        for (start, end), done in zip(self.segments, self.done, strict=True):
            if start + done < end:
                return start + done
        return self.segments[-1][1]

    def total(self) -> int:
        return sum(self.done)


def _load_record(record: Path, size: int, segments: list[tuple[int, int]]) -> list[int]:
    """Per-segment bytes a previous attempt wrote (zeros when there is no usable record)."""
    try:
        data = json.loads(record.read_text())
        if data.get("size") == size and [tuple(s) for s in data["segments"]] == segments:
            done = [int(d) for d in data["done"]]
            if all(0 <= d <= e - s for d, (s, e) in zip(done, segments, strict=True)):
                return done
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return [0] * len(segments)


def _save_record(record: Path, size: int, progress: _Progress) -> None:
    with progress.changed:
        body = {"size": size, "segments": progress.segments, "done": list(progress.done)}
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, record)


def _fetch_segment(
    open_range: RangeOpener,
    fd: int,
    index: int,
    progress: _Progress,
    on_bytes: Callable[[int], None],
) -> None:
    start, end = progress.segments[index]
    pos = start + progress.done[index]
    if pos >= end:
        return
    with open_range(pos, end) as chunks:
        for chunk in chunks:
            if progress.failed is not None:
                return
            if pos + len(chunk) > end:  # never write past what was asked for
                raise IntegrityError(
                    f"the source sent more than the {end - start} bytes of a segment",
                    code="integrity.size_mismatch", expected=end - start,
                    actual=pos + len(chunk) - start,
                )  # fmt: skip
            os.pwrite(fd, chunk, pos)
            pos += len(chunk)
            with progress.changed:
                progress.done[index] = pos - start
                progress.changed.notify_all()
            on_bytes(len(chunk))
    if pos != end:
        raise RegistryError(
            f"a segment ended {end - pos} bytes early", code="network.download_interrupted"
        )


def _hash_in_order(fd: int, size: int, progress: _Progress) -> hashlib._Hash:
    """sha256 of the blob, reading each byte back as soon as everything before it is written."""
    hasher = hashlib.sha256()
    hashed = 0
    while hashed < size:
        with progress.changed:
            while progress.frontier() <= hashed and progress.failed is None:
                if progress.finished == len(progress.segments):
                    break
                progress.changed.wait(0.5)
            if progress.failed is not None:
                return hasher
            frontier = progress.frontier()
        if frontier <= hashed:  # every fetch thread ended and the blob is still short
            return hasher
        while hashed < frontier:
            block = os.pread(fd, min(_HASH_READ, frontier - hashed), hashed)
            if not block:
                return hasher
            hasher.update(block)
            hashed += len(block)
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
    """Fill ``partial`` with the blob's ``size`` bytes over ``segments`` ranges; check its sha256.

    On success ``partial`` holds exactly the blob (fsynced) and its record is gone.
    Raises ``network.*`` RegistryError (retry: the record lets the next attempt
    resume), ``integrity.digest_mismatch`` / ``integrity.size_mismatch`` (both
    files deleted).
    """
    layout = split(size, segments)
    record = segments_record(partial)
    done = [0] * len(layout)
    if record.exists():
        done = _load_record(record, size, layout)
    elif partial.exists() and partial.stat().st_size < size:  # a one-stream partial: a prefix
        done[0] = min(partial.stat().st_size, layout[0][1])
    state = _Progress(layout, done)
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

    def run(index: int) -> None:
        try:
            _fetch_segment(open_range, fd, index, state, on_bytes)
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
        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(layout))]
        for thread in threads:
            thread.start()
        hasher = _hash_in_order(fd, size, state)
        for thread in threads:
            thread.join()
        if state.failed is not None:
            _save_record(record, size, state)
            if isinstance(state.failed, IntegrityError):
                _discard(partial, record)
            raise state.failed
        if state.frontier() != size:  # cannot happen without a failure; never commit it
            _save_record(record, size, state)
            raise RegistryError("a segment is incomplete", code="network.download_interrupted")
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
