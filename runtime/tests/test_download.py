from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from protocol import IntegrityError
from runtime.cache import BlobCache
from runtime.client import RegistryClient
from runtime.download import download_blob
from runtime.errors import RegistryError

DATA = bytes(range(256)) * 400  # 100 KiB
SHA = hashlib.sha256(DATA).hexdigest()


def _server(
    data: bytes = DATA,
    *,
    honour_range: bool = True,
    fail_after: int | None = None,
    seen: list[str | None] | None = None,
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        rng = request.headers.get("Range")
        if seen is not None:
            seen.append(rng)
        if rng and honour_range:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            return httpx.Response(
                206,
                content=data[start:],
                headers={"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"},
            )
        return httpx.Response(200, content=data)

    return httpx.MockTransport(handler)


def test_downloads_and_verifies(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    progress: list[tuple[int, int]] = []
    with RegistryClient("http://reg", transport=_server()) as client:
        path = download_blob(
            client,
            "/blob",
            sha256=SHA,
            size=len(DATA),
            cache=cache,
            progress=lambda d, t: progress.append((d, t)),
        )
    assert path.read_bytes() == DATA
    assert cache.has(SHA)
    assert progress[-1] == (len(DATA), len(DATA))


def test_resumes_from_partial_file_with_range(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    cache.partial_path(SHA).write_bytes(DATA[:30000])
    seen: list[str | None] = []
    with RegistryClient("http://reg", transport=_server(seen=seen)) as client:
        path = download_blob(client, "/blob", sha256=SHA, size=len(DATA), cache=cache)
    assert seen == ["bytes=30000-"]
    assert path.read_bytes() == DATA
    assert not cache.partial_path(SHA).exists()


def test_server_ignoring_range_restarts_from_zero(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    cache.partial_path(SHA).write_bytes(DATA[:30000])
    with RegistryClient("http://reg", transport=_server(honour_range=False)) as client:
        path = download_blob(client, "/blob", sha256=SHA, size=len(DATA), cache=cache)
    assert path.read_bytes() == DATA


def test_refuses_blob_with_wrong_digest_and_keeps_nothing(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    bad = DATA[:-1] + b"\x00"
    with (
        RegistryClient("http://reg", transport=_server(bad)) as client,
        pytest.raises(IntegrityError) as info,
    ):
        download_blob(client, "/blob", sha256=SHA, size=len(DATA), cache=cache)
    assert info.value.code == "integrity.digest_mismatch"
    assert not cache.has(SHA)
    assert not cache.partial_path(SHA).exists()


def test_refuses_oversized_blob(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    with (
        RegistryClient("http://reg", transport=_server(DATA + b"extra")) as client,
        pytest.raises(IntegrityError) as info,
    ):
        download_blob(client, "/blob", sha256=SHA, size=len(DATA), cache=cache)
    assert info.value.code == "integrity.size_mismatch"


def test_a_corrupt_partial_prefix_is_detected(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    cache.partial_path(SHA).write_bytes(b"\xff" * 30000)
    with RegistryClient("http://reg", transport=_server()) as client, pytest.raises(IntegrityError):
        download_blob(client, "/blob", sha256=SHA, size=len(DATA), cache=cache)
    assert not cache.partial_path(SHA).exists()  # the next attempt starts clean
    with RegistryClient("http://reg", transport=_server()) as client:
        assert (
            download_blob(client, "/blob", sha256=SHA, size=len(DATA), cache=cache).read_bytes()
            == DATA
        )


def test_http_errors_keep_their_registry_code(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            403, json={"error": {"code": "registry.bad_download_signature", "message": "expired"}}
        )

    with (
        RegistryClient("http://reg", transport=httpx.MockTransport(handler)) as client,
        pytest.raises(RegistryError) as info,
    ):
        download_blob(client, "/blob", sha256=SHA, size=len(DATA), cache=BlobCache(tmp_path))
    assert info.value.code == "registry.bad_download_signature"
    assert info.value.status == 403


def test_network_errors_are_retried_then_reported(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused")

    with (
        RegistryClient("http://reg", transport=httpx.MockTransport(handler)) as client,
        pytest.raises(RegistryError) as info,
    ):
        download_blob(
            client, "/blob", sha256=SHA, size=len(DATA), cache=BlobCache(tmp_path), retries=2
        )
    assert info.value.code == "network.download_failed"
    assert len(calls) == 3


def test_cache_is_content_addressed_and_shared(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    src = tmp_path / "f"
    src.write_bytes(b"same bytes")
    sha1, p1 = cache.add_file(src)
    sha2, p2 = cache.add_bytes(b"same bytes")
    assert sha1 == sha2 == hashlib.sha256(b"same bytes").hexdigest()
    assert p1 == p2
    assert cache.digests() == [sha1]
    assert cache.gc(keep=[]) == [sha1]
    assert not cache.has(sha1)


def test_gc_removes_only_stale_unlocked_partials(tmp_path: Path) -> None:
    import os

    cache = BlobCache(tmp_path)
    old, fresh, busy = "a" * 64, "b" * 64, "c" * 64
    for sha in (old, fresh, busy):
        cache.partial_path(sha).write_bytes(b"x")
    os.utime(cache.partial_path(old), (0, 0))
    os.utime(cache.partial_path(busy), (0, 0))
    with cache.lock(busy):
        assert cache.remove_stale_partials(3600) == [old]
    assert cache.partial_path(fresh).exists()
    assert cache.partial_path(busy).exists()


def test_gc_removes_a_stale_segmented_download_with_its_record(tmp_path: Path) -> None:
    import os

    from runtime.download_segments import segments_record

    cache = BlobCache(tmp_path)
    stale, orphan = "d" * 64, "e" * 64
    cache.partial_path(stale).write_bytes(b"x")
    segments_record(cache.partial_path(stale)).write_text("{}")
    segments_record(cache.partial_path(orphan)).write_text("{}")  # its .part is gone
    os.utime(cache.partial_path(stale), (0, 0))
    assert cache.remove_stale_partials(3600) == [stale]
    assert list((tmp_path / "cache" / "partial").iterdir()) == []
