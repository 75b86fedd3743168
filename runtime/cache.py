"""Content-addressed blob cache under ``$MEMOS_HOME/cache``, locked and atomic.

Layout::

    cache/blobs/sha256/ab/abcdef...   complete, verified blobs (read-only by convention)
    cache/stamps/abcdef...            "size mtime_ns inode" of the blob when it was committed
    cache/partial/abcdef....part      an interrupted download: its size is its offset
    cache/tmp/                        temporary files, renamed into place
    locks/blob-abcdef....lock         one lock per digest (filelock)

Blobs are named by the sha256 of their bytes, so versions of a pack that
share payloads share files. Every write goes to a temporary file in the same
file system and is renamed into place, so a reader never sees half a blob,
and a crash leaves at most a stray temporary or partial file. Two processes
working on the same digest serialise on its lock.

How a blob already in the cache is trusted (a cached blob can be altered
after it was committed; nothing is trusted on its name alone):

* :meth:`BlobCache.is_intact` (installs deciding whether to fetch a blob
  again): the file's size, mtime and inode must equal the stamp written at
  commit; otherwise it is re-hashed, and a blob whose bytes do not match its
  name is deleted so the install fetches it again (self-healing). A blob
  rewritten in place with its size and mtime restored passes this cheap check;
  ``memos verify --installed`` (:meth:`BlobCache.verify`) always re-hashes.
* :meth:`BlobCache.checked_path` (the engine opening a KV cache or adapter):
  re-hashed on first open in each process, then the stamp is compared on each
  later open; a mismatch is ``cache.blob_corrupt``.

Not here: HTTP (see :mod:`runtime.download`), pack parsing (protocol).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from protocol import IntegrityError

from .errors import CacheError

__all__ = ["BlobCache", "BlobProblem", "sha256_file"]

_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex sha256, size) of a file, streamed."""
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256")
        return digest.hexdigest(), fh.tell()


@dataclass(frozen=True)
class BlobProblem:
    """A cached blob that is not what its name says (``verify``)."""

    sha256: str
    code: str  # cache.blob_corrupt | cache.blob_size
    message: str


#: (digest, stamp) of blobs this process has re-hashed and found good
_CHECKED: set[tuple[str, str]] = set()
_CHECKED_LOCK = threading.Lock()


def _stamp_of(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino}"


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
        folders = (root / "blobs" / "sha256", root / "partial", root / "tmp", root / "stamps")
        for folder in (*folders, self.locks):
            folder.mkdir(parents=True, exist_ok=True)

    # ---- paths

    def blob_path(self, sha256: str) -> Path:
        sha256 = _check_digest(sha256)
        return self.root / "blobs" / "sha256" / sha256[:2] / sha256

    def partial_path(self, sha256: str) -> Path:
        return self.root / "partial" / f"{_check_digest(sha256)}.part"

    def stamp_path(self, sha256: str) -> Path:
        return self.root / "stamps" / _check_digest(sha256)

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
        self._write_stamp(sha256, dest)
        return dest

    # ---- trusting what is cached (see the module docstring)

    def _write_stamp(self, sha256: str, blob: Path) -> None:
        fd, tmp = tempfile.mkstemp(prefix="stamp-", dir=self.root / "tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(_stamp_of(blob))
        os.replace(tmp, self.stamp_path(sha256))

    def _stamp_matches(self, sha256: str, blob: Path) -> bool:
        try:
            return self.stamp_path(sha256).read_text() == _stamp_of(blob)
        except OSError:
            return False

    def rehash(self, sha256: str, *, size: int | None = None) -> BlobProblem | None:
        """Re-hash the cached blob ``sha256``; what is wrong with it, or None."""
        actual, actual_size = sha256_file(self.get(sha256))
        if size is not None and actual_size != size:
            return BlobProblem(
                sha256, "cache.blob_size", f"blob {sha256[:16]}… is {actual_size} bytes, not {size}"
            )
        if actual != sha256:
            return BlobProblem(
                sha256, "cache.blob_corrupt",
                f"blob {sha256[:16]}… has sha256 {actual[:16]}… ({actual_size} bytes)",
            )  # fmt: skip
        return None

    def is_intact(self, sha256: str, size: int | None = None) -> bool:
        """Whether blob ``sha256`` is cached and intact; a bad one is deleted (fetch it again)."""
        path = self.blob_path(sha256)
        try:
            if size is not None and path.stat().st_size != size:
                self.discard(sha256)
                return False
        except FileNotFoundError:
            return False
        if self._stamp_matches(sha256, path):
            return True
        with self.lock(sha256):
            if not path.is_file():
                return False
            if self.rehash(sha256, size=size) is not None:
                self._unlink(sha256)
                return False
            self._write_stamp(sha256, path)
            return True

    def checked_path(self, sha256: str) -> Path:
        """Blob ``sha256`` for the engine to read: re-hashed once per process, else refused."""
        path = self.get(sha256)
        key = (sha256, _stamp_of(path))
        with _CHECKED_LOCK:
            if key in _CHECKED:
                return path
        problem = self.rehash(sha256)
        if problem is not None:
            raise CacheError(
                f"{problem.message}: refused (memos verify --installed; install the pack again)",
                code="cache.blob_corrupt", sha256=sha256,
            )  # fmt: skip
        with _CHECKED_LOCK:
            _CHECKED.add(key)
        return path

    def verify(self, digests: Iterable[str]) -> list[BlobProblem]:
        """Re-hash every cached blob in ``digests`` (missing ones are skipped); the bad ones."""
        problems = []
        for sha256 in sorted(set(digests)):
            if self.has(sha256):
                problem = self.rehash(sha256)
                if problem is not None:
                    problems.append(problem)
        return problems

    def discard(self, sha256: str) -> None:
        """Delete a blob found bad (under its lock), so the next install fetches it again."""
        with self.lock(sha256):
            self._unlink(sha256)

    def _unlink(self, sha256: str) -> None:
        self.blob_path(sha256).unlink(missing_ok=True)
        self.stamp_path(sha256).unlink(missing_ok=True)

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
                self._unlink(sha256)
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
                # a segmented download's progress record goes with it
                part.with_name(part.name + ".segments").unlink(missing_ok=True)
                removed.append(sha)
            finally:
                lock.release()
        for record in (self.root / "partial").glob("*.part.segments"):
            if not record.with_name(record.name.removesuffix(".segments")).exists():
                record.unlink(missing_ok=True)  # its partial file is gone: nothing to resume
        return removed

    def size_bytes(self) -> int:
        return sum(self.blob_path(d).stat().st_size for d in self.digests())
