"""A large blob fetched as several ranges at once: exact bytes, fallback, refusal, resume.

Against the fake registry on a real socket (bounded ``Range: bytes=a-b``,
per-digest byte counts), through :func:`runtime.download.fetch_into_cache` as
the installer calls it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from protocol import IntegrityError
from runtime.cache import BlobCache
from runtime.client import RegistryClient
from runtime.download import (
    SEGMENT_MIN_BYTES,
    fetch_into_cache,
    url_opener,
    url_range_opener,
)
from runtime.download_segments import RangeOpener, pieces, segments_record, split
from runtime.errors import RegistryError
from runtime.tests.fake_registry import FakeRegistry

SIZE = SEGMENT_MIN_BYTES + 12_345  # just big enough to be segmented
DATA = os.urandom(SIZE)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def reg() -> Iterator[FakeRegistry]:
    registry = FakeRegistry(chunk=256 * 1024, blob_urls=True)
    registry.blob_store[SHA] = DATA
    registry.start()
    yield registry
    registry.stop()


def _fetch(
    reg: FakeRegistry, cache: BlobCache, *, open_range: RangeOpener | None = None, **kw: object
) -> Path:
    client = RegistryClient(reg.url)
    url = f"/api/v1/blobs/sha256/{SHA}"
    return fetch_into_cache(
        url_opener(client, url), sha256=SHA, size=SIZE, cache=cache,
        open_range=open_range or url_range_opener(client, url), segments=4, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _ranges(reg: FakeRegistry) -> list[tuple[int, int]]:
    found = []
    for _, _, rng in reg.requests:
        m = re.match(r"^bytes=(\d+)-(\d+)$", rng or "")
        if m:
            found.append((int(m.group(1)), int(m.group(2)) + 1))
    return sorted(found)


def test_split_covers_the_blob_without_gaps() -> None:
    assert split(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert split(2, 8) == [(0, 1), (1, 2)]
    assert split(5, 1) == [(0, 5)]


def test_large_blob_arrives_as_bounded_ranges_and_is_exact(
    tmp_path: Path, reg: FakeRegistry
) -> None:
    cache = BlobCache(tmp_path)
    seen: list[tuple[int, int]] = []
    path = _fetch(reg, cache, progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == DATA
    assert _ranges(reg) == pieces(SIZE)  # in order, each asked for once
    assert reg.blob_bytes[SHA] == SIZE  # every byte sent once
    assert seen[-1] == (SIZE, SIZE)
    partial = cache.partial_path(SHA)
    assert not partial.exists() and not segments_record(partial).exists()


def test_a_server_that_ignores_ranges_gets_one_stream(tmp_path: Path, reg: FakeRegistry) -> None:
    reg.honour_range = False  # answers 200 with everything to a bounded range
    cache = BlobCache(tmp_path)
    assert _fetch(reg, cache).read_bytes() == DATA
    assert cache.is_intact(SHA, SIZE)


def test_wrong_bytes_are_refused_and_nothing_is_kept(tmp_path: Path, reg: FakeRegistry) -> None:
    reg.tamper_blobs.add(SHA)
    cache = BlobCache(tmp_path)
    with pytest.raises(IntegrityError) as info:
        _fetch(reg, cache)
    assert info.value.code == "integrity.digest_mismatch"
    partial = cache.partial_path(SHA)
    assert not cache.has(SHA)
    assert not partial.exists() and not segments_record(partial).exists()


def _failing_after(inner: RangeOpener, limit: int) -> RangeOpener:
    """Each range stops with a network error after ``limit`` bytes (a dropped connection)."""

    @contextmanager
    def open_range(start: int, end: int) -> Iterator[Iterator[bytes]]:
        with inner(start, end) as chunks:

            def cut() -> Iterator[bytes]:
                sent = 0
                for chunk in chunks:
                    if sent + len(chunk) > limit:
                        raise RegistryError("dropped", code="network.download_interrupted")
                    sent += len(chunk)
                    yield chunk

            yield cut()

    return open_range


def _interrupted(reg: FakeRegistry, cache: BlobCache) -> dict[str, Any]:
    """Fetch with every range dropped after 6 MiB; the progress record left behind."""
    url = f"/api/v1/blobs/sha256/{SHA}"
    flaky = _failing_after(url_range_opener(RegistryClient(reg.url), url), 6 * 1024 * 1024)
    with pytest.raises(RegistryError) as info:
        _fetch(reg, cache, open_range=flaky, retries=0)
    assert info.value.code == "network.download_interrupted"
    record: dict[str, Any] = json.loads(segments_record(cache.partial_path(SHA)).read_text())
    assert 0 < sum(record["done"]) < SIZE
    return record


def test_an_interrupted_segmented_fetch_resumes_from_its_record(
    tmp_path: Path, reg: FakeRegistry
) -> None:
    cache = BlobCache(tmp_path)
    record = _interrupted(reg, cache)
    kept = sum(record["done"])

    reg.requests.clear()
    reg.blob_bytes.clear()
    assert _fetch(reg, cache).read_bytes() == DATA
    assert reg.blob_bytes[SHA] == SIZE - kept  # only what the record did not cover
    starts = {start for start, _ in _ranges(reg)}
    layout = pieces(SIZE)
    assert starts == {s + d for (s, e), d in zip(layout, record["done"], strict=True) if s + d < e}


def test_a_lying_record_cannot_get_a_bad_blob_into_the_cache(
    tmp_path: Path, reg: FakeRegistry
) -> None:
    cache = BlobCache(tmp_path)
    partial = cache.partial_path(SHA)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"\0" * SIZE)  # claims every segment is done, with zeros
    layout = pieces(SIZE)
    body = {"size": SIZE, "segments": layout, "done": [e - s for s, e in layout]}
    segments_record(partial).write_text(json.dumps(body))
    with pytest.raises(IntegrityError) as info:
        _fetch(reg, cache)
    assert info.value.code == "integrity.digest_mismatch"
    assert not cache.has(SHA) and not partial.exists()
    assert _fetch(reg, cache).read_bytes() == DATA  # the next try starts clean


def test_pieces_depend_on_the_size_alone_and_cover_it() -> None:
    from runtime.download_segments import PIECE_MAX, PIECE_MIN

    for size in (1, PIECE_MIN - 1, SIZE, 119_304_772, 10 * 1024**3 + 7):
        layout = pieces(size)
        assert layout[0][0] == 0 and layout[-1][1] == size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(layout))
        longest = max(end - start for start, end in layout)
        assert longest <= max(PIECE_MAX, size // len(layout) + size % len(layout))
        if size >= 2 * PIECE_MIN:
            assert len(layout) > 1 and min(e - s for s, e in layout) >= PIECE_MIN // 2


def test_a_resume_with_another_stream_count_keeps_the_record(
    tmp_path: Path, reg: FakeRegistry
) -> None:
    cache = BlobCache(tmp_path)
    kept = sum(_interrupted(reg, cache)["done"])
    reg.blob_bytes.clear()
    client, url = RegistryClient(reg.url), f"/api/v1/blobs/sha256/{SHA}"
    path = fetch_into_cache(
        url_opener(client, url), sha256=SHA, size=SIZE, cache=cache,
        open_range=url_range_opener(client, url), segments=2,
    )  # fmt: skip
    assert path.read_bytes() == DATA
    assert reg.blob_bytes[SHA] == SIZE - kept


def test_writeback_is_bound_on_linux_and_leaves_the_bytes_alone(tmp_path: Path) -> None:
    import sys

    from runtime import _writeback

    if sys.platform.startswith("linux"):
        assert _writeback._sync_file_range is not None
    target = tmp_path / "f"
    target.write_bytes(DATA[:1_000_000])
    fd = os.open(target, os.O_RDWR)
    try:
        _writeback.start_writeback(fd, 0, 1_000_000)
        _writeback.start_writeback(fd, 0, 0)
    finally:
        os.close(fd)
    assert target.read_bytes() == DATA[:1_000_000]
