"""Content-addressed blob cache under ``$MEMOS_HOME/cache``, locked and atomic.

Layout::

    cache/blobs/sha256/ab/abcdef...   complete, verified blobs (read-only by convention)
    cache/partial/abcdef....part      an interrupted download: its size is its offset
    cache/tmp/                        temporary files, renamed into place
    locks/blob-abcdef....lock         one lock per digest (filelock)

Blobs are named by the sha256 of their bytes, so versions of a pack that
share payloads share files. Every write goes to a temporary file in the same
file system and is renamed into place, so a reader never sees half a blob,
and a crash leaves at most a stray temporary or partial file. Two processes
working on the same digest serialise on its lock.

Not here: HTTP (see :mod:`runtime.download`), pack parsing (protocol).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock, Timeout

from protocol import IntegrityError

from .errors import CacheError

__all__ = ["BlobCache", "sha256_file"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex sha256, size) of a file, streamed."""
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256")
        return digest.hexdigest(), fh.tell()


def _check_digest(sha256: str) -> str:
    if not _HEX64.match(sha256):
        raise CacheError(f"{sha256!r} is not a sha256 hex digest", code="cache.bad_digest")
    return sha256


class BlobCache:
    """Blobs by sha256. Safe to use from several processes at once."""

    def __init__(self, home: Path, *, lock_timeout: float = 600.0) -> None:
        self.root = Path(home) / "cache"
        self.locks = Path(home) / "locks"
        self.lock_timeout = lock_timeout
        root = self.root
        for folder in (root / "blobs" / "sha256", root / "partial", root / "tmp", self.locks):
            folder.mkdir(parents=True, exist_ok=True)

    # ---- paths

    def blob_path(self, sha256: str) -> Path:
        sha256 = _check_digest(sha256)
        return self.root / "blobs" / "sha256" / sha256[:2] / sha256

    def partial_path(self, sha256: str) -> Path:
        return self.root / "partial" / f"{_check_digest(sha256)}.part"

    def has(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def get(self, sha256: str) -> Path:
        path = self.blob_path(sha256)
        if not path.is_file():
            raise CacheError(
                f"blob {sha256[:16]}… is not in the cache", code="cache.missing", sha256=sha256
            )
        return path

    def lock(self, sha256: str) -> FileLock:
        """The per-digest lock: hold it while creating or deleting that blob."""
        path = self.locks / f"blob-{_check_digest(sha256)}.lock"
        return FileLock(str(path), timeout=self.lock_timeout)

    def temp_dir(self, prefix: str) -> Path:
        """A fresh private folder in the cache's file system (for staging, then rename)."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.root / "tmp"))

    # ---- writes

    def commit_file(
        self, src: Path, sha256: str, *, size: int | None = None, verify: bool = True
    ) -> Path:
        """Move ``src`` into the cache as blob ``sha256`` (atomic rename).

        With ``verify`` the file is hashed first and refused on mismatch (and
        deleted). If the blob already exists, ``src`` is deleted and the
        existing blob kept. The caller should hold :meth:`lock`.
        """
        sha256 = _check_digest(sha256)
        if verify:
            actual, actual_size = sha256_file(src)
            if actual != sha256 or (size is not None and actual_size != size):
                src.unlink(missing_ok=True)
                same = actual == sha256
                raise IntegrityError(
                    f"blob has sha256 {actual[:16]}… ({actual_size} bytes), "
                    f"expected {sha256[:16]}…",
                    code="integrity.size_mismatch" if same else "integrity.digest_mismatch",
                    expected=sha256,
                    actual=actual,
                )
        dest = self.blob_path(sha256)
        if dest.is_file():
            src.unlink(missing_ok=True)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(src, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(src, dest)
        return dest

    def add_file(self, src: Path, *, copy: bool = True) -> tuple[str, Path]:
        """Add a file's bytes (copied, or moved with ``copy=False``); return (sha256, blob path)."""
        sha256, _ = sha256_file(src)
        if self.has(sha256):
            if not copy:
                Path(src).unlink(missing_ok=True)
            return sha256, self.blob_path(sha256)
        with self.lock(sha256):
            if copy:
                fd, tmp = tempfile.mkstemp(prefix="add-", dir=self.root / "tmp")
                os.close(fd)
                shutil.copyfile(src, tmp)
                src = Path(tmp)
            return sha256, self.commit_file(Path(src), sha256, verify=copy)

    def add_bytes(self, data: bytes) -> tuple[str, Path]:
        sha256 = hashlib.sha256(data).hexdigest()
        if self.has(sha256):
            return sha256, self.blob_path(sha256)
        with self.lock(sha256):
            fd, tmp = tempfile.mkstemp(prefix="add-", dir=self.root / "tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return sha256, self.commit_file(Path(tmp), sha256, verify=False)

    # ---- housekeeping

    def digests(self) -> list[str]:
        blobs = (self.root / "blobs" / "sha256").glob("??/*")
        return sorted(p.name for p in blobs if _HEX64.match(p.name))

    def remove(self, sha256: str) -> bool:
        with self.lock(sha256):
            path = self.blob_path(sha256)
            if path.is_file():
                path.unlink()
                return True
        return False

    def gc(self, keep: Iterable[str]) -> list[str]:
        """Delete every complete blob not in ``keep``; return the removed digests."""
        wanted = set(keep)
        return [d for d in self.digests() if d not in wanted and self.remove(d)]

    def remove_stale_partials(self, max_age_s: float, *, now: float | None = None) -> list[str]:
        """Delete interrupted downloads untouched for ``max_age_s``.

        Never one being written: that one is locked.
        """
        now = time.time() if now is None else now
        removed = []
        for part in (self.root / "partial").glob("*.part"):
            sha = part.name.removesuffix(".part")
            if not _HEX64.match(sha) or now - part.stat().st_mtime < max_age_s:
                continue
            lock = self.lock(sha)
            try:
                lock.acquire(timeout=0)
            except Timeout:  # a download is in progress
                continue
            try:
                part.unlink(missing_ok=True)
                removed.append(sha)
            finally:
                lock.release()
        return removed

    def size_bytes(self) -> int:
        return sum(self.blob_path(d).stat().st_size for d in self.digests())
