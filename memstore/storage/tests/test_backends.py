"""Blob storage backends: content addressing, digest check, download URLs (real moto server)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from memstore.storage.backends import (
    LocalBlobStorage,
    blob_key,
    check_download_signature,
    sign_download,
)


def write(tmp_path: Path, data: bytes) -> tuple[str, Path]:
    path = tmp_path / "blob"
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest(), path


def test_blob_key_is_content_addressed() -> None:
    sha = "ab" + "0" * 62
    assert blob_key(sha) == f"sha256/ab/{sha}"
    with pytest.raises(ValueError):
        blob_key("../etc/passwd")


def test_local_put_refuses_bytes_with_another_digest(tmp_path: Path) -> None:
    storage = LocalBlobStorage(tmp_path / "blobs", secret="s")
    sha, path = write(tmp_path, b"hello")
    storage.put_file(sha, path)
    assert storage.exists(sha)
    with storage.open(sha) as fh:
        assert fh.read() == b"hello"
    with pytest.raises(ValueError):
        storage.put_file("0" * 64, path)
    assert not storage.exists("0" * 64)
    assert storage.list_keys() == [blob_key(sha)]
    storage.delete(sha)
    storage.delete(sha)  # idempotent
    assert not storage.exists(sha)


def test_signed_download_urls_expire_and_cannot_be_forged() -> None:
    query = sign_download("secret", "a" * 64, ttl=60, filename="x.memcube")
    assert check_download_signature(
        "secret", "a" * 64, exp=query["exp"], sig=query["sig"], filename="x.memcube"
    )
    assert not check_download_signature(
        "secret", "b" * 64, exp=query["exp"], sig=query["sig"], filename="x.memcube"
    )
    assert not check_download_signature(
        "other", "a" * 64, exp=query["exp"], sig=query["sig"], filename="x.memcube"
    )
    expired = sign_download("secret", "a" * 64, ttl=-1)
    assert not check_download_signature("secret", "a" * 64, exp=expired["exp"], sig=expired["sig"])


@pytest.mark.integration
def test_s3_put_presign_download_delete(tmp_path: Path, s3_storage: Any) -> None:
    sha, path = write(tmp_path, b"pack bytes" * 1000)
    assert not s3_storage.exists(sha)
    s3_storage.put_file(sha, path)
    assert s3_storage.exists(sha)
    url = s3_storage.download_url(sha, ttl=60, filename="p.memcube")
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == path.read_bytes()
    s3_storage.delete(sha)
    assert not s3_storage.exists(sha)


@pytest.mark.integration
def test_s3_outage_is_a_storage_error(tmp_path: Path, s3_server: Any) -> None:
    from memstore.errors import StorageUnavailableError
    from memstore.storage.backends import S3BlobStorage

    dead = S3BlobStorage(
        bucket="x", endpoint_url="http://127.0.0.1:9", access_key="a", secret_key="b"
    )
    sha, path = write(tmp_path, b"x")
    with pytest.raises(StorageUnavailableError):
        dead.put_file(sha, path)
