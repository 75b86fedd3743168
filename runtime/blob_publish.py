"""Publish a pack blob by blob: only the blobs the registry lacks travel, each one resumably.

``memos publish`` of a ``.memcube`` (MIP 1 or MIP 2) against a MIP 2 registry
(``memstore/API.md``, *Publish only what is missing*):

1. read and check the pack (:func:`protocol.read_pack`) and list its distinct
   blobs (:func:`protocol.manifest_blobs`); a MIP 2 pack's raw blobs are sent
   straight from the pack file (:mod:`runtime.pack_blobs`), nothing extracted;
2. ask the registry which of them it lacks for this publisher
   (``POST /api/v1/blobs/missing``), so a new version that shares nine of ten
   blobs with the previous one sends only the tenth;
3. upload each missing blob through its own upload (``POST /api/v1/blobs/uploads``,
   then ``PATCH`` chunks at the server's offset), several at once. The registry
   answers an open upload of the same digest again with its offset, so a rerun
   after a killed publish continues every blob where it stopped; a lost answer,
   an offset mismatch or a dropped connection re-reads the offset and goes on;
4. publish the exact signed manifest bytes with the pack's signatures
   (``POST /api/v1/packs/publish-manifest``), only once every upload completed:
   a failed blob upload publishes nothing.

A registry without these endpoints (404 on ``blobs/missing``) raises
:class:`BlobsUnsupported` before anything is sent; the caller then uploads the
whole pack (:meth:`runtime.client.RegistryClient.publish`).

Not here: HTTP and the wire format (:mod:`runtime.client`, :mod:`runtime._wire`),
building and signing packs (:mod:`protocol`), the whole-pack upload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from protocol import BlobEntry, Pack, manifest_blobs

from ._wire import BlobUpload, PublishCheck, PublishResult
from .client import RegistryClient
from .errors import RegistryError
from .pack_blobs import BlobFile, checked_pack

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "BlobPublishResult",
    "BlobPublishStats",
    "BlobsUnsupported",
    "check_blobs",
    "publish_blobs",
]

DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024
MISSING_BATCH = 10_000  # the registry's limit per blobs/missing request

_Answer = TypeVar("_Answer")

#: Called with (bytes done, bytes to send) as the uploads advance (from several threads).
Progress = Callable[[int, int], None]

_RETRYABLE = frozenset(
    {"network.unreachable", "registry.conflict", "upload.offset_mismatch", "upload.not_found",
     "upload.closed", "upload.incomplete"}
)  # fmt: skip


def _pause(seconds: float) -> None:
    """The wait between two tries of a chunk (tests replace it)."""
    time.sleep(seconds)


class BlobsUnsupported(RegistryError):
    """The registry has no blob endpoints (an older registry): upload the whole pack."""

    code = "registry.blobs_unsupported"


class _Stopped(Exception):
    """Another blob's upload failed: stop this one (its upload stays open for a rerun)."""


@dataclass(frozen=True)
class BlobPublishStats:
    """What travelled: blobs and bytes sent, and what the registry already had."""

    blobs_total: int  # distinct blobs of the manifest
    blobs_sent: int  # blobs this run uploaded bytes for (or completed)
    bytes_total: int  # their sizes, all blobs
    bytes_sent: int  # bytes this run sent in chunks
    bytes_resumed: int = 0  # bytes of this run's blobs the registry already had (a rerun)

    @property
    def blobs_present(self) -> int:
        return self.blobs_total - self.blobs_sent

    def to_dict(self) -> dict[str, int]:
        return {
            "total": self.blobs_total,
            "sent": self.blobs_sent,
            "present": self.blobs_present,
            "bytes_total": self.bytes_total,
            "bytes_sent": self.bytes_sent,
            "bytes_resumed": self.bytes_resumed,
        }


@dataclass(frozen=True, kw_only=True)
class BlobPublishResult(BlobPublishStats):
    """A version published blob by blob, and what travelled to get there."""

    published: PublishResult


class _Tally:
    """Bytes done across the uploading threads, reported to ``progress``."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self.sent, self.resumed = total, 0, 0, 0
        self._progress = progress
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def advance(self, done: int, *, sent: int = 0, resumed: int = 0) -> None:
        with self._lock:
            self.done += done
            self.sent += sent
            self.resumed += resumed
            done_now = self.done
        if self._progress is not None:
            self._progress(min(done_now, self.total), self.total)


@dataclass(frozen=True)
class _Uploader:
    client: RegistryClient
    chunk_size: int
    retries: int
    sleep: Callable[[float], None]

    def upload(self, entry: BlobEntry, blob: BlobFile, tally: _Tally) -> None:
        """Send one blob from where the registry has it to its end; return when completed."""
        upload = self._open(entry)
        if upload.completed:
            tally.advance(upload.size)
        else:
            tally.advance(upload.offset, resumed=upload.offset)
        failures = 0
        with open(blob.path, "rb") as fh:
            while not upload.completed:
                if tally.stop.is_set():
                    raise _Stopped
                try:
                    upload = self._step(upload, fh, blob.offset, tally)
                    failures = 0
                except RegistryError as exc:
                    failures += 1
                    if exc.code not in _RETRYABLE or failures > self.retries:
                        raise
                    self.sleep(min(0.2 * 2**failures, 5.0))
                    before = upload.offset
                    upload = self._again(entry, upload, exc)
                    tally.advance(upload.offset - before)

    def _open(self, entry: BlobEntry) -> BlobUpload:
        upload = self.client.blob_upload_open(entry.sha256, entry.size)
        if (upload.sha256, upload.size) != (entry.sha256, entry.size):
            raise RegistryError(
                f"the registry opened an upload of {upload.sha256} ({upload.size} bytes), "
                f"not of {entry.sha256} ({entry.size} bytes)",
                code="registry.bad_response",
            )
        return upload

    def _step(self, upload: BlobUpload, fh: BinaryIO, base: int, tally: _Tally) -> BlobUpload:
        if upload.status != "open":  # failed, cancelled or expired: a new upload
            raise RegistryError(f"upload {upload.id} is {upload.status}", code="upload.closed")
        if upload.offset >= upload.size:  # every byte is there; only the answer was lost
            return self.client.blob_upload_complete(upload.id)
        limit = min(self.chunk_size, upload.max_chunk_bytes or self.chunk_size)
        fh.seek(base + upload.offset)  # the blob's bytes start at ``base`` in the file
        chunk = fh.read(min(limit, upload.size - upload.offset))
        if not chunk:
            raise RegistryError(
                f"the local blob {upload.sha256} ended at {upload.offset} bytes",
                code="publish.blob_changed",
            )
        tally.advance(0, sent=len(chunk))  # on the wire, whatever the answer
        after = self.client.blob_upload_append(upload.id, upload.offset, chunk)
        tally.advance((after.size if after.completed else after.offset) - upload.offset)
        return after

    def _again(self, entry: BlobEntry, upload: BlobUpload, exc: RegistryError) -> BlobUpload:
        """Where the upload stands after ``exc``: its state again, or a new upload."""
        if exc.code in ("upload.not_found", "upload.closed"):
            return self._open(entry)  # expired or closed: present now (completed) or a new one
        try:
            return self.client.blob_upload_get(upload.id)
        except RegistryError as again:
            if again.code != "upload.not_found":
                raise
            return self._open(entry)


def _missing(client: RegistryClient, digests: Sequence[str]) -> set[str]:
    missing: set[str] = set()
    for start in range(0, len(digests), MISSING_BATCH):
        batch = digests[start : start + MISSING_BATCH]
        try:
            missing.update(client.blobs_missing(batch))
        except RegistryError as exc:
            if exc.status in (404, 405) and not exc.code.startswith(("blob.", "upload.")):
                raise BlobsUnsupported(
                    f"{client.base_url} has no blob endpoints (a registry older than MIP 2)",
                    status=exc.status,
                ) from exc
            raise
    return missing


def _upload_all(
    uploader: _Uploader,
    entries: Sequence[tuple[BlobEntry, BlobFile]],
    tally: _Tally,
    workers: int,
) -> None:
    """Upload every entry, ``workers`` at once; the first failure stops the others and raises."""
    if not entries:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(entries)))) as pool:
        futures = [pool.submit(uploader.upload, entry, blob, tally) for entry, blob in entries]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            tally.stop.set()
            for future in futures:
                future.cancel()
            error = failed.exception()
            assert error is not None
            if isinstance(error, RegistryError) and error.code.startswith("network."):
                raise RegistryError(
                    f"{error.message}; nothing was published. Run the same memos publish "
                    "again: each blob resumes where it stopped",
                    code=error.code, status=error.status, **error.detail,
                ) from error  # fmt: skip
            raise error
    for future in futures:
        future.result()


def _send_then(
    client: RegistryClient,
    path: Path,
    finish: Callable[[Pack], _Answer],
    *,
    chunk_size: int,
    workers: int,
    retries: int,
    progress: Progress | None,
    sleep: Callable[[float], None] | None,
) -> tuple[_Answer, _Sent]:
    """Upload the blobs the registry lacks, then ``finish`` (publish or check) the manifest."""
    with checked_pack(Path(path)) as checked:  # raw MIP 2 blobs are sent from the pack file
        pack = checked.pack
        entries = manifest_blobs(pack.manifest)
        files = {e.sha256: (e, checked.blobs[e.sha256]) for e in entries}
        missing = _missing(client, list(files))
        to_send = [files[d] for d in files if d in missing]
        tally = _Tally(sum(e.size for e, _ in to_send), progress)
        uploader = _Uploader(client, max(1, chunk_size), retries, sleep or _pause)
        _upload_all(uploader, to_send, tally, workers)
        try:
            answer = finish(pack)
        except RegistryError as exc:
            # A blob went away meanwhile (its upload expired before the publish): send it again.
            server_detail = exc.detail.get("server_detail")
            listed = server_detail.get("missing") if isinstance(server_detail, dict) else None
            again = set(listed) if isinstance(listed, list) else set()
            redo = [files[d] for d in files if d in again]
            if exc.code != "blob.missing" or not redo:
                raise
            tally.total += sum(e.size for e, _ in redo)
            _upload_all(uploader, redo, tally, workers)
            answer = finish(pack)
            to_send = [files[d] for d in files if d in missing or d in again]
    sent = _Sent(len(entries), len(to_send), sum(e.size for e in entries), tally.sent,
                 tally.resumed)  # fmt: skip
    return answer, sent


@dataclass(frozen=True)
class _Sent:
    blobs_total: int
    blobs_sent: int
    bytes_total: int
    bytes_sent: int
    bytes_resumed: int


def publish_blobs(
    client: RegistryClient,
    path: Path,
    *,
    private: bool = False,
    price_amount_minor: int = 0,
    price_currency: str = "",
    chunk_size: int = DEFAULT_CHUNK_BYTES,
    workers: int = 4,
    retries: int = 5,
    progress: Progress | None = None,
    sleep: Callable[[float], None] | None = None,
) -> BlobPublishResult:
    """Publish the pack at ``path`` sending only the blobs the registry lacks (module docstring).

    Raises :class:`BlobsUnsupported` (nothing sent) on a registry without blob
    endpoints, a protocol error for a pack that does not read, and the
    registry's error when an upload or the publish is refused (nothing is
    published then; uploads left open resume on the next call).
    """

    def publish(pack: Pack) -> PublishResult:
        return client.publish_manifest(
            pack.manifest_bytes, pack.signatures, private=private,
            price_amount_minor=price_amount_minor, price_currency=price_currency,
        )  # fmt: skip

    published, sent = _send_then(
        client, path, publish, chunk_size=chunk_size, workers=workers, retries=retries,
        progress=progress, sleep=sleep,
    )  # fmt: skip
    return BlobPublishResult(published=published, **sent.__dict__)


def check_blobs(
    client: RegistryClient,
    path: Path,
    *,
    chunk_size: int = DEFAULT_CHUNK_BYTES,
    workers: int = 4,
    retries: int = 5,
    progress: Progress | None = None,
    sleep: Callable[[float], None] | None = None,
) -> tuple[PublishCheck, BlobPublishStats]:
    """``memos publish --dry-run``: upload the missing blobs, then ask what a publish would say.

    The registry runs every check of a publish and its scan, and publishes
    nothing; the blobs stay there, so the real publish afterwards sends none.
    Raises what :func:`publish_blobs` raises (a pack with secrets:
    ``registry.secrets_found``, the findings in the error's detail).
    """

    def check(pack: Pack) -> PublishCheck:
        return client.check_manifest(pack.manifest_bytes, pack.signatures)

    checked, sent = _send_then(
        client, path, check, chunk_size=chunk_size, workers=workers, retries=retries,
        progress=progress, sleep=sleep,
    )  # fmt: skip
    return checked, BlobPublishStats(**sent.__dict__)
