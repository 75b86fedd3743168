"""Blob storage: the interface and its local-filesystem and S3 implementations.

Blobs are immutable and addressed by the hex sha256 of their bytes, under the
key ``sha256/<first two hex>/<hex>``, so a blob shared by several versions is
stored once. Downloads go through short-lived URLs: presigned S3 URLs, or
HMAC-signed URLs served by the registry itself for local storage. Both serve HTTP
Range: S3 itself, the registry through :mod:`memstore.storage.responses`.

Not here: which blobs may be deleted (that depends on the database, see
``memstore.packs.services``), or who may download (``memstore.packs.selectors``).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import io
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast, runtime_checkable
from urllib.parse import urlencode

from ..errors import StorageFullError, StorageUnavailableError

__all__ = [
    "BlobStorage",
    "LocalBlobStorage",
    "S3BlobStorage",
    "blob_key",
    "check_download_signature",
    "sign_download",
]

_CHUNK = 1024 * 1024


def blob_key(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"sha256/{sha256[:2]}/{sha256}"


@runtime_checkable
class BlobStorage(Protocol):
    """Where blob bytes live. Every method may raise StorageUnavailableError."""

    def exists(self, sha256: str) -> bool: ...

    def put_file(self, sha256: str, path: Path) -> None:
        """Store the file's bytes under ``sha256`` (idempotent; atomic for readers)."""

    def open(self, sha256: str) -> BinaryIO: ...

    def delete(self, sha256: str) -> None:
        """Remove the blob; removing a missing blob is not an error."""

    def download_url(self, sha256: str, *, ttl: int, filename: str | None = None) -> str:
        """A URL that serves the bytes for ``ttl`` seconds (may be relative to this server)."""

    def redirect_url(self, sha256: str, *, ttl: int, filename: str | None = None) -> str | None:
        """A URL elsewhere that serves the bytes, with HTTP Range, for ``ttl`` seconds; None
        when this server must stream them itself (the registry then serves the range)."""

    def abort_stale_uploads(self, *, older_than: timedelta) -> int:
        """Remove the leftovers of a ``put_file`` that crashed (S3 multipart parts, local
        temporary files) begun more than ``older_than`` ago; returns how many."""


def _signature(secret: str, sha256: str, expires: int, filename: str) -> str:
    message = f"{sha256}:{expires}:{filename}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_download(secret: str, sha256: str, *, ttl: int, filename: str = "") -> dict[str, str]:
    expires = int(time.time()) + ttl
    query = {"exp": str(expires), "sig": _signature(secret, sha256, expires, filename)}
    if filename:
        query["filename"] = filename
    return query


def check_download_signature(
    secret: str, sha256: str, *, exp: str, sig: str, filename: str = ""
) -> bool:
    try:
        expires = int(exp)
    except ValueError:
        return False
    if expires < time.time():
        return False
    return hmac.compare_digest(_signature(secret, sha256, expires, filename), sig)


class LocalBlobStorage:
    """Blobs as files under ``root``; downloads served by the registry with signed URLs."""

    def __init__(
        self, root: Path, *, secret: str, url_prefix: str = "/api/v1/blobs/sha256/"
    ) -> None:
        self.root = Path(root)
        self._secret = secret
        self._url_prefix = url_prefix

    def path(self, sha256: str) -> Path:
        return self.root / blob_key(sha256)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_file(self, sha256: str, path: Path) -> None:
        target = self.path(sha256)
        if target.is_file():
            return
        try:
            self._put(target, sha256, path)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                # A full volume is an answer, not a crash: the temporary file is gone
                # (``_put``), the publish releases what it stored and says so.
                raise StorageFullError(
                    "the blob volume is full", sha256=sha256, reason=exc.strerror or ""
                ) from exc
            raise

    def _put(self, target: Path, sha256: str, path: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    digest.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            if digest.hexdigest() != sha256:
                raise ValueError(f"{path} does not have sha256 {sha256}")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def open(self, sha256: str) -> BinaryIO:
        return open(self.path(sha256), "rb")

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def download_url(self, sha256: str, *, ttl: int, filename: str | None = None) -> str:
        query = sign_download(self._secret, sha256, ttl=ttl, filename=filename or "")
        return f"{self._url_prefix}{sha256}?{urlencode(query)}"

    def redirect_url(self, sha256: str, *, ttl: int, filename: str | None = None) -> str | None:
        return None  # the registry streams local files itself

    def abort_stale_uploads(self, *, older_than: timedelta) -> int:
        """Delete ``put_file``'s temporary files (``.<name>.<pid>.<ns>.tmp``) left by a crash."""
        if not self.root.exists():
            return 0
        cutoff = time.time() - older_than.total_seconds()
        removed = 0
        for tmp in self.root.rglob(".*.tmp"):
            try:
                if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def list_keys(self) -> list[str]:
        """Every stored key (tests and garbage collection)."""
        if not self.root.exists():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def clear(self) -> None:
        """Remove every blob (tests only)."""
        shutil.rmtree(self.root, ignore_errors=True)


class _RawBody(io.RawIOBase):
    """A botocore ``StreamingBody`` as a raw stream, for :class:`io.BufferedReader`."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3BlobStorage:
    """Blobs in an S3 bucket (AWS, MinIO, moto) through boto3; multipart above 64 MiB."""

    MULTIPART_THRESHOLD = 64 * 1024 * 1024
    MULTIPART_CHUNK = 16 * 1024 * 1024

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        create_bucket: bool = False,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        config = Config(
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            s3={"addressing_style": "path"},
        )
        kwargs: dict[str, Any] = {
            "region_name": region,
            "aws_access_key_id": access_key,
            "aws_secret_access_key": secret_key,
            "config": config,
        }
        self._client = boto3.client("s3", endpoint_url=endpoint_url, **kwargs)
        self._presigner = (
            boto3.client("s3", endpoint_url=public_endpoint_url, **kwargs)
            if public_endpoint_url
            else self._client
        )
        if create_bucket:
            self.ensure_bucket()

    def _key(self, sha256: str) -> str:
        return self.prefix + blob_key(sha256)

    def _wrap(self, exc: Exception, what: str) -> StorageUnavailableError:
        return StorageUnavailableError(f"S3 {what} failed: {exc}", bucket=self.bucket)

    def ensure_bucket(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._client.create_bucket(Bucket=self.bucket)
        except BotoCoreError as exc:
            raise self._wrap(exc, "head_bucket") from exc

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._wrap(exc, "head_object") from exc
        except BotoCoreError as exc:
            raise self._wrap(exc, "head_object") from exc
        return True

    def put_file(self, sha256: str, path: Path) -> None:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        config = TransferConfig(
            multipart_threshold=self.MULTIPART_THRESHOLD, multipart_chunksize=self.MULTIPART_CHUNK
        )
        try:
            self._client.upload_file(
                str(path),
                self.bucket,
                self._key(sha256),
                ExtraArgs={"ContentType": "application/octet-stream"},
                Config=config,
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._wrap(exc, "upload") from exc
        except Exception as exc:  # S3UploadFailedError and friends
            raise self._wrap(exc, "upload") from exc

    def open(self, sha256: str) -> BinaryIO:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(sha256))
        except (BotoCoreError, ClientError) as exc:
            raise self._wrap(exc, "get_object") from exc
        # botocore's StreamingBody.readline reads one byte per call: line readers go
        # through a buffer that reads the body in large chunks instead.
        return cast(BinaryIO, io.BufferedReader(_RawBody(response["Body"]), buffer_size=_CHUNK))

    def delete(self, sha256: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(sha256))
        except (BotoCoreError, ClientError) as exc:
            raise self._wrap(exc, "delete_object") from exc

    def download_url(self, sha256: str, *, ttl: int, filename: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(sha256)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = self._presigner.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=ttl
        )
        return url

    def redirect_url(self, sha256: str, *, ttl: int, filename: str | None = None) -> str | None:
        """S3 serves Range (206, 416) itself: the registry redirects rather than proxies."""
        return self.download_url(sha256, ttl=ttl, filename=filename)

    def abort_stale_uploads(self, *, older_than: timedelta) -> int:
        """Abort multipart uploads under the prefix initiated before ``older_than`` ago.

        boto3 aborts a multipart upload that fails, but not one whose process died:
        its parts stay billed and invisible to ``list_objects``.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        cutoff = datetime.now(UTC) - older_than
        aborted = 0
        try:
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] >= cutoff:
                        continue
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        except (BotoCoreError, ClientError) as exc:
            raise self._wrap(exc, "abort_multipart_upload") from exc
        return aborted

    def list_keys(self) -> list[str]:
        """Every key under the prefix (tests and garbage collection)."""
        keys: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys
