"""The installer's fetch step: the chosen blobs from a pack source into the cache, in parallel.

:func:`fetch_blobs` skips blobs already cached and intact (a bad cached blob
is deleted and fetched again), moves verified staged files of a
:class:`~.sources.StagedSource` into the cache (no copy), and streams the
rest from the source -- several at once on a small thread pool, each into its
own resumable ``.part`` file (:func:`runtime.download.fetch_into_cache`:
sha256 as the bytes arrive, one fsync, one rename). When fewer blobs are
missing than there are streams (an upgrade that changed one large blob), each
large blob is fetched as several ranges at once from a source that serves
ranges (:mod:`runtime.download_segments`). Progress is reported for
the whole pack (bytes across blobs).

:func:`check_blobs` then checks each fetched non-text payload's content
against its media type and cube (safetensors headers, LoRA config, KV cache
fingerprint): the same check ``read_pack`` makes, on the cached file. Text
payloads are checked as the installer parses them (:mod:`.items`).

Not here: choosing the blobs (:mod:`.blobs`), trust (:mod:`.trust`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass

from protocol import Manifest, MediaType, validate_payload

from ..cache import BlobCache
from ..download import Chunk, Opener, ProgressFn, RangeOpener, fetch_into_cache
from .blobs import BlobEntry
from .sources import PackSource, RangedSource, StagedSource

__all__ = ["FetchReport", "check_blobs", "fetch_blobs"]

DEFAULT_WORKERS = 4


@dataclass(frozen=True)
class FetchReport:
    """What the fetch step did: digests fetched (or moved in), and already cached."""

    fetched: tuple[str, ...]
    reused: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {"fetched": list(self.fetched), "reused": list(self.reused)}


class _Totals:
    """Bytes done across every blob of the pack, reported as one progress."""

    def __init__(self, total: int, progress: ProgressFn | None) -> None:
        self.total = total
        self.progress = progress
        self._done: dict[str, int] = {}
        self._lock = threading.Lock()

    def for_blob(self, sha256: str) -> ProgressFn:
        def update(done: int, _total: int) -> None:
            with self._lock:
                self._done[sha256] = done
                if self.progress is not None:
                    self.progress(sum(self._done.values()), self.total)

        return update


def _opener(source: PackSource, entry: BlobEntry) -> Opener:
    @contextmanager
    def open_at(offset: int) -> Iterator[tuple[int, Iterator[Chunk]]]:
        with source.open_blob(entry, offset) as chunks:
            yield offset, chunks

    return open_at


def _range_opener(source: PackSource, entry: BlobEntry) -> RangeOpener | None:
    if not isinstance(source, RangedSource):
        return None
    return lambda start, end: source.open_range(entry, start, end)


def _one(
    source: PackSource, entry: BlobEntry, cache: BlobCache, totals: _Totals, segments: int
) -> bool:
    """Bring one blob into the cache; whether it had to be fetched (False: already there)."""
    update = totals.for_blob(entry.sha256)
    if cache.is_intact(entry.sha256, entry.size):
        update(entry.size, entry.size)
        return False
    staged = source.staged_blob(entry) if isinstance(source, StagedSource) else None
    if staged is not None:  # read_pack checked its size and digest: move it in
        with cache.lock(entry.sha256):
            cache.commit_file(staged, entry.sha256, verify=False)
        update(entry.size, entry.size)
        return True
    fetch_into_cache(
        _opener(source, entry),
        sha256=entry.sha256, size=entry.size, cache=cache, progress=update,
        open_range=_range_opener(source, entry), segments=segments,
    )  # fmt: skip
    return True


def fetch_blobs(
    source: PackSource,
    entries: Sequence[BlobEntry],
    cache: BlobCache,
    *,
    progress: ProgressFn | None = None,
    workers: int = DEFAULT_WORKERS,
    on_ready: Callable[[BlobEntry], None] | None = None,
) -> FetchReport:
    """Bring every blob of ``entries`` into ``cache`` from ``source`` (see the module docstring).

    Text blobs are started first (they are small, and the installer's
    ``on_ready`` embeds their memories while the tensors still stream):
    ``on_ready(entry)`` is called from the fetching thread once ``entry`` is
    in the cache and verified; it must not raise. On the first failure the
    blobs not yet started are cancelled, the running ones finish (their
    ``.part`` files stay for a resume), and the error is raised.
    """
    totals = _Totals(sum(e.size for e in entries), progress)
    if progress is not None:
        progress(0, totals.total)
    if not entries:
        return FetchReport((), ())
    # Streams are shared out: few blobs to fetch (an upgrade) get several ranges each.
    missing = sum(1 for e in entries if not cache.has(e.sha256))
    segments = max(1, workers // max(1, missing))
    ordered = sorted(entries, key=lambda e: e.media_type != MediaType.MEMORIES_JSONL.value)

    def one(entry: BlobEntry) -> bool:
        fetched = _one(source, entry, cache, totals, segments)
        if on_ready is not None:
            on_ready(entry)
        return fetched

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(entries)))) as pool:
        futures = {pool.submit(one, e): e for e in ordered}
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            wait(pending)
            exc = failed.exception()
            assert exc is not None
            raise exc
    fetched = tuple(sorted(futures[f].sha256 for f in futures if f.result()))
    reused = tuple(sorted(futures[f].sha256 for f in futures if not f.result()))
    return FetchReport(fetched, reused)


def check_blobs(manifest: Manifest, entries: Sequence[BlobEntry], cache: BlobCache) -> None:
    """Check the content of every fetched non-text payload (raises ``payload.*``)."""
    wanted = {e.sha256 for e in entries}
    for cube in manifest.cubes:
        for ref in cube.payloads:
            if ref.sha256 not in wanted or ref.media_type == MediaType.MEMORIES_JSONL:
                continue
            with open(cache.get(ref.sha256), "rb") as fh:
                validate_payload(cube, ref, fh)
