"""The configured blob storage, built once from settings (tests may swap it)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings

from .backends import BlobStorage, LocalBlobStorage, S3BlobStorage

_override: BlobStorage | None = None


@lru_cache(maxsize=1)
def _from_settings() -> BlobStorage:
    conf: dict[str, Any] = settings.MEMSTORE_STORAGE
    if conf["backend"] == "s3":
        return S3BlobStorage(
            bucket=conf["s3_bucket"],
            endpoint_url=conf["s3_endpoint_url"],
            public_endpoint_url=conf["s3_public_endpoint_url"],
            region=conf["s3_region"],
            access_key=conf["s3_access_key"],
            secret_key=conf["s3_secret_key"],
        )
    if conf["backend"] != "local":
        raise ValueError(f"MEMSTORE_STORAGE must be 'local' or 's3', not {conf['backend']!r}")
    return LocalBlobStorage(conf["local_root"], secret=settings.SECRET_KEY)


def get_blob_storage() -> BlobStorage:
    return _override if _override is not None else _from_settings()


def set_blob_storage(storage: BlobStorage | None) -> None:
    """Replace the storage for the whole process (tests, benchmarks); None restores settings."""
    global _override
    _override = storage
    _from_settings.cache_clear()
