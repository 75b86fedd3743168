"""Where an install's bytes come from: the :class:`PackSource` protocol and its implementations.

A pack source hands the installer the signed manifest and its signatures
first (trust is decided on them before any blob is fetched), then the bytes
of each blob the installer asks for:

* :class:`RegistrySource` -- a MemStore registry's resolve answer: per-blob
  URLs (``blobs``, or ``payloads`` from registries that predate MIP 2),
  fetched with HTTP Range so an interrupted blob resumes;
* :class:`FileSource` -- a ``.memcube`` file, read and checked once by
  ``protocol.read_pack``: a MIP 2 file streams each wanted blob straight into
  the cache (a blob sink: hashed as read, one fsync, one rename; blobs already
  cached, or for another model, are not written); a MIP 1 file (gzip) is
  extracted into a private staging folder whose verified files are *moved*
  into the cache (:class:`StagedSource`), never copied. A file's signatures
  follow its blobs, so blobs a refused file brought in are removed again
  (:attr:`FileSource.added`);
* :class:`CacheSource` -- a pack whose manifest and blobs are already cached
  (``memos install --locked`` of a pack first installed from a file);
* an OCI registry (:mod:`runtime.oci`, against this protocol).

The contract of :meth:`PackSource.open_blob`: a context manager yielding the
blob's raw content bytes from ``offset`` on (the installer resumes an
interrupted ``.part`` file by asking for the rest); what it yields is not
trusted -- the installer hashes it, stops at the declared size and refuses a
mismatch. Retryable transport failures raise
:class:`~runtime.errors.RegistryError` with a ``network.*`` code; the
installer retries those, resuming.

Not here: trust (:mod:`.trust`), which blobs (:mod:`.blobs`), writing the
cache (:mod:`runtime.download`, :mod:`runtime.cache`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

from filelock import FileLock

from protocol import BlobWriter, Pack, Signature, container_major, read_pack

from .._wire import Resolution
from ..cache import BlobCache
from ..client import RegistryClient
from ..download import Chunk, url_opener, url_range_opener
from ..errors import InstallError
from .blobs import BlobEntry

__all__ = [
    "CacheSource",
    "FileSource",
    "PackSource",
    "RangedSource",
    "RegistrySource",
    "StagedSource",
    "skip_bytes",
]

_CHUNK = 1024 * 1024


@runtime_checkable
class PackSource(Protocol):
    """A signed manifest and the blobs it names (see the module docstring)."""

    @property
    def manifest_bytes(self) -> bytes:
        """The canonical manifest bytes the signatures are over."""
        ...

    @property
    def signatures(self) -> tuple[Signature, ...]: ...

    @property
    def label(self) -> str:
        """What the install result says it came from: registry, file, oci, lockfile."""
        ...

    def open_blob(
        self, entry: BlobEntry, offset: int = 0
    ) -> AbstractContextManager[Iterator[Chunk]]:
        """The blob's content bytes from ``offset`` on (a block is valid until the next)."""
        ...


@runtime_checkable
class RangedSource(Protocol):
    """A source that can serve any byte range of a blob (several at once, for big blobs)."""

    def open_range(
        self, entry: BlobEntry, start: int, end: int
    ) -> AbstractContextManager[Iterator[Chunk]]:
        """Exactly bytes [start, end) of the blob, or RegistryError ``network.no_range``."""
        ...


@runtime_checkable
class StagedSource(Protocol):
    """A source that already holds some blobs as verified local files (moved, not copied)."""

    def staged_blob(self, entry: BlobEntry) -> Path | None:
        """A file with exactly the blob's bytes (digest checked), which may be moved away."""
        ...


def skip_bytes(chunks: Iterator[Chunk], count: int) -> Iterator[Chunk]:
    """``chunks`` without their first ``count`` bytes (a server that ignored a Range)."""
    for chunk in chunks:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:]
        count = 0


def _file_chunks(path: Path, offset: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(offset)
        yield from iter(lambda: fh.read(_CHUNK), b"")


class RegistrySource:
    """A resolved version on a MemStore registry, fetched blob by blob."""

    label = "registry"

    def __init__(self, client: RegistryClient, resolution: Resolution) -> None:
        self.client = client
        self.resolution = resolution

    @property
    def manifest_bytes(self) -> bytes:
        return self.resolution.manifest_bytes

    @property
    def signatures(self) -> tuple[Signature, ...]:
        return self.resolution.signatures

    def has_blob_urls(self, entries: Sequence[BlobEntry]) -> bool:
        """Whether the resolve answer names a URL for every one of ``entries``."""
        return all(self.resolution.blob_url(e.sha256) is not None for e in entries)

    def _url(self, entry: BlobEntry) -> str:
        url = self.resolution.blob_url(entry.sha256)
        if url is None:
            raise InstallError(
                f"the registry names no URL for blob {entry.sha256[:16]}…",
                code="install.blob_unavailable", sha256=entry.sha256,
            )  # fmt: skip
        return url

    @contextmanager
    def open_blob(self, entry: BlobEntry, offset: int = 0) -> Iterator[Iterator[Chunk]]:
        with url_opener(self.client, self._url(entry))(offset) as (start, chunks):
            yield chunks if start == offset else skip_bytes(chunks, offset)

    def open_range(
        self, entry: BlobEntry, start: int, end: int
    ) -> AbstractContextManager[Iterator[Chunk]]:
        return url_range_opener(self.client, self._url(entry))(start, end)


class _CacheWriter:
    """One blob from a MIP 2 file into the cache: a temp file, fsynced and renamed on commit."""

    def __init__(self, cache: BlobCache, sha256: str, added: list[str]) -> None:
        self.cache, self.sha256, self.added = cache, sha256, added
        self.lock: FileLock = cache.lock(sha256)
        self.lock.acquire()
        fd, tmp = tempfile.mkstemp(prefix="blob-", dir=cache.root / "tmp")
        self.tmp = Path(tmp)
        self.fh = os.fdopen(fd, "wb")

    def write(self, data: bytes, /) -> object:
        return self.fh.write(data)

    def commit(self) -> None:  # the reader checked size, digest and content
        try:
            self.fh.close()
            self.cache.commit_file(self.tmp, self.sha256, verify=False)
            self.added.append(self.sha256)
        finally:
            self.lock.release()

    def abort(self) -> None:
        try:
            self.fh.close()
            self.tmp.unlink(missing_ok=True)
        finally:
            self.lock.release()


class _CacheSink:
    """protocol's blob sink over the cache: only wanted blobs not already cached are written."""

    def __init__(self, cache: BlobCache, wanted: Callable[[BlobEntry], bool]) -> None:
        self.cache, self.wanted = cache, wanted
        self.added: list[str] = []

    def open_blob(self, entry: BlobEntry) -> BlobWriter | None:
        if not self.wanted(entry) or self.cache.is_intact(entry.sha256, entry.size):
            return None
        return _CacheWriter(self.cache, entry.sha256, self.added)


class FileSource:
    """A ``.memcube`` file, read and checked once (``read_pack``); see the module docstring.

    Use as a context manager: the staging folder (files not moved into the
    cache) is removed on exit.
    """

    label = "file"

    def __init__(self, pack: Pack, staging: Path, added: Sequence[str] = ()) -> None:
        self.pack = pack
        self.staging = staging
        #: digests this read wrote into the cache itself (MIP 2 files)
        self.added = tuple(added)
        self._paths = (
            {
                ref.sha256: pack.payload_path(ref) for cube in pack.manifest.cubes
                for ref in cube.payloads
            } if pack.root is not None else {}
        )  # fmt: skip

    @classmethod
    def read(
        cls, path: Path, cache: BlobCache, *, wanted: Callable[[BlobEntry], bool] | None = None
    ) -> FileSource:
        """Read ``path`` (every limit, digest and content check); MIP 2 blobs ``wanted``
        (default: all) go straight into ``cache``, MIP 1 payloads into a staging folder."""
        staging = cache.temp_dir("stage-")
        shutil.rmtree(staging)  # read_pack creates it (and removes it on failure)
        with open(path, "rb") as fh:
            mip1 = container_major(fh.read(2)) == 1
        if mip1:
            return cls(read_pack(Path(path), target=staging), staging)
        sink = _CacheSink(cache, wanted or (lambda _: True))
        try:
            pack = read_pack(Path(path), blobs=sink)
        except BaseException:
            for digest in sink.added:  # verified, but of a refused pack: not kept
                cache.remove(digest)
            raise
        return cls(pack, staging, sink.added)

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    @property
    def manifest_bytes(self) -> bytes:
        return self.pack.manifest_bytes

    @property
    def signatures(self) -> tuple[Signature, ...]:
        return self.pack.signatures

    @property
    def file_sha256(self) -> str:
        return self.pack.file_sha256

    @property
    def file_size(self) -> int:
        return self.pack.file_size

    def staged_blob(self, entry: BlobEntry) -> Path | None:
        path = self._paths.get(entry.sha256)
        return path if path is not None and path.is_file() else None

    @contextmanager
    def open_blob(self, entry: BlobEntry, offset: int = 0) -> Iterator[Iterator[bytes]]:
        path = self.staged_blob(entry)
        if path is None:
            raise InstallError(
                f"blob {entry.sha256[:16]}… is not in the pack file",
                code="install.blob_unavailable", sha256=entry.sha256,
            )  # fmt: skip
        yield _file_chunks(path, offset)


class CacheSource:
    """A pack whose manifest (a blob named by its sha256) and blobs are in the cache."""

    label = "lockfile"

    def __init__(
        self, cache: BlobCache, manifest_sha256: str, signatures: Sequence[Signature]
    ) -> None:
        if not cache.is_intact(manifest_sha256):
            raise InstallError(
                "the pack's manifest is not in the cache",
                code="install.lock_source_missing",
            )
        self.cache = cache
        self._manifest = cache.get(manifest_sha256).read_bytes()
        self._signatures = tuple(signatures)

    @property
    def manifest_bytes(self) -> bytes:
        return self._manifest

    @property
    def signatures(self) -> tuple[Signature, ...]:
        return self._signatures

    @contextmanager
    def open_blob(self, entry: BlobEntry, offset: int = 0) -> Iterator[Iterator[bytes]]:
        if not self.cache.has(entry.sha256):
            raise InstallError(
                f"blob {entry.sha256[:16]}… is not in the cache",
                code="install.lock_source_missing", sha256=entry.sha256,
            )  # fmt: skip
        yield _file_chunks(self.cache.get(entry.sha256), offset)
