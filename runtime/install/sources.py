"""Where an install's bytes come from: the :class:`PackSource` protocol and its implementations.

A pack source hands the installer the signed manifest and its signatures
first (trust is decided on them before any blob is fetched), then the bytes
of each blob the installer asks for:

* :class:`RegistrySource` -- a MemStore registry's resolve answer: per-blob
  URLs (``blobs``, or ``payloads`` from registries that predate MIP 2),
  fetched with HTTP Range so an interrupted blob resumes;
* :class:`FileSource` -- a ``.memcube`` file (MIP 1 or 2), read and checked
  once by ``protocol.read_pack`` into a private staging folder whose verified
  files are *moved* into the cache (:class:`StagedSource`), never copied;
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

import shutil
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

from protocol import Pack, Signature, read_pack

from .._wire import Resolution
from ..cache import BlobCache
from ..client import RegistryClient
from ..download import url_opener
from ..errors import InstallError
from .blobs import BlobEntry

__all__ = [
    "CacheSource",
    "FileSource",
    "PackSource",
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
    ) -> AbstractContextManager[Iterator[bytes]]:
        """The blob's content bytes from ``offset`` on."""
        ...


@runtime_checkable
class StagedSource(Protocol):
    """A source that already holds some blobs as verified local files (moved, not copied)."""

    def staged_blob(self, entry: BlobEntry) -> Path | None:
        """A file with exactly the blob's bytes (digest checked), which may be moved away."""
        ...


def skip_bytes(chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
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

    @contextmanager
    def open_blob(self, entry: BlobEntry, offset: int = 0) -> Iterator[Iterator[bytes]]:
        url = self.resolution.blob_url(entry.sha256)
        if url is None:
            raise InstallError(
                f"the registry names no URL for blob {entry.sha256[:16]}…",
                code="install.blob_unavailable", sha256=entry.sha256,
            )  # fmt: skip
        with url_opener(self.client, url)(offset) as (start, chunks):
            yield chunks if start == offset else skip_bytes(chunks, offset)


class FileSource:
    """A ``.memcube`` file, read and checked once (``read_pack``) into ``staging``.

    Use as a context manager: the staging folder (files not moved into the
    cache) is removed on exit.
    """

    label = "file"

    def __init__(self, pack: Pack, staging: Path) -> None:
        self.pack = pack
        self.staging = staging
        self._paths = {
            ref.sha256: pack.payload_path(ref) for cube in pack.manifest.cubes
            for ref in cube.payloads
        }  # fmt: skip

    @classmethod
    def read(cls, path: Path, cache: BlobCache) -> FileSource:
        """Read ``path`` (every limit, digest and content check) into a staging folder."""
        staging = cache.temp_dir("stage-")
        shutil.rmtree(staging)  # read_pack creates it (and removes it on failure)
        return cls(read_pack(Path(path), target=staging), staging)

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
