"""Resumable, verified downloads into the blob cache.

A download of blob ``sha256`` writes to ``cache/partial/<sha256>.part``. The
partial file's size is the resume offset: a killed process leaves it behind,
and the next attempt (in any process) hashes the bytes already there and asks
the server for the rest with ``Range: bytes=<offset>-``. A server that ignores
the range (200) restarts the file from zero. The sha256 is computed while
streaming; on completion size and digest are checked and the file is renamed
into the cache. A mismatch deletes the partial file and raises
``integrity.digest_mismatch`` / ``integrity.size_mismatch``.

The per-digest lock serialises two processes wanting the same blob: the
second waits, then finds the blob complete.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import httpx

from protocol import IntegrityError

from .cache import BlobCache
from .client import RegistryClient
from .errors import RegistryError

__all__ = ["ProgressFn", "download_blob"]

#: Called with (bytes done, bytes total) as the download advances.
ProgressFn = Callable[[int, int], None]

_CHUNK = 64 * 1024
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
    if cache.has(sha256):
        if progress:
            progress(size, size)
        return cache.blob_path(sha256)
    with cache.lock(sha256):
        if cache.has(sha256):
            if progress:
                progress(size, size)
            return cache.blob_path(sha256)
        attempt = 0
        while True:
            try:
                return _attempt(client, url, sha256, size, cache, progress)
            except RegistryError as exc:
                attempt += 1
                if attempt > retries or not exc.code.startswith("network."):
                    raise


def _attempt(
    client: RegistryClient,
    url: str,
    sha256: str,
    size: int,
    cache: BlobCache,
    progress: ProgressFn | None,
) -> Path:
    partial = cache.partial_path(sha256)
    offset = partial.stat().st_size if partial.exists() else 0
    if offset > size:
        partial.unlink()
        offset = 0
    hasher, offset = _hash_prefix(partial, offset) if offset else (hashlib.sha256(), 0)
    if offset < size:
        with client.stream(url, offset=offset) as response:
            if response.status_code == 416:  # nothing left to send: the file is complete
                pass
            else:
                if response.status_code == 200 or offset == 0:
                    offset = 0
                    hasher = hashlib.sha256()
                    mode = "wb"
                else:
                    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
                    if not match or int(match.group(1)) != offset:
                        raise RegistryError(
                            "the server answered a different byte range than asked for",
                            code="network.bad_range",
                        )
                    mode = "ab"
                with open(partial, mode) as fh:
                    if progress:
                        progress(offset, size)
                    try:
                        for chunk in response.iter_bytes(_CHUNK):
                            if offset + len(chunk) > size:
                                fh.write(chunk[: size - offset])
                                offset = size + 1  # mark oversize; checked below
                                break
                            fh.write(chunk)
                            hasher.update(chunk)
                            offset += len(chunk)
                            if progress:
                                progress(offset, size)
                    except httpx.TransportError as exc:
                        fh.flush()
                        raise RegistryError(
                            f"download interrupted at {offset} bytes: {exc}",
                            code="network.download_interrupted",
                        ) from exc
                    fh.flush()
                    os.fsync(fh.fileno())
    if offset != size:
        partial.unlink(missing_ok=True)
        raise IntegrityError(
            f"downloaded {offset} bytes, expected {size}",
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
