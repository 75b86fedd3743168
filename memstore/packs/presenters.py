"""Packs, versions, upload sessions, blob uploads and resolutions as the plain dicts the API's
output serializers describe (:mod:`memstore.packs.serializers`).

Not here: reads (``selectors``), writes (``services``) or HTTP (``apis``).
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.request import Request

from ..accounts.presenters import key_dict
from ..accounts.selectors import namespace_keys
from ..api.common import absolute
from ..storage.backends import BlobStorage
from ..storage.models import BlobUpload
from .models import Pack, PackVersion, UploadSession, VersionPayload
from .selectors import Resolution, versions_of

__all__ = [
    "blob_upload_dict",
    "blobs_list",
    "findings_list",
    "ingest_dict",
    "pack_dict",
    "price_dict",
    "publish_dict",
    "resolve_dict",
    "session_dict",
    "version_dict",
    "version_summary",
]


def ingest_dict(version: PackVersion) -> dict[str, Any]:
    job = getattr(version, "ingest", None)
    if job is None:
        return {"status": "pending", "memories": 0, "attempts": 0, "error": "", "progress": 0}
    return {
        "status": job.status,
        "memories": job.memory_count,
        "attempts": job.attempts,
        "error": job.error,
        # Memories the running attempt has written so far (``memories`` is the published count).
        "progress": job.progress,
    }


def price_dict(version: PackVersion) -> dict[str, Any]:
    return {"amount_minor": version.price_amount_minor, "currency": version.price_currency}


def version_summary(version: PackVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "published_at": version.published_at,
        "yanked": version.yanked,
        "yanked_reason": version.yanked_reason,
        "price": price_dict(version),
        "downloads": version.download_count,
    }


def pack_dict(pack: Pack) -> dict[str, Any]:
    versions = versions_of(pack=pack)
    latest = next((v for v in versions if not v.yanked), versions[0] if versions else None)
    return {
        "name": pack.full_name,
        "private": pack.private,
        "deprecated": pack.deprecated,
        "deprecation_message": pack.deprecation_message,
        "downloads": pack.download_count,
        "latest": latest.version if latest else None,
        "title": latest.title if latest else "",
        "description": latest.description if latest else "",
        "license": latest.license if latest else "",
        "versions": [version_summary(v) for v in versions],
    }


def version_dict(version: PackVersion) -> dict[str, Any]:
    return {
        "name": version.pack.full_name,
        "version": version.version,
        "title": version.title,
        "description": version.description,
        "license": version.license,
        "published_at": version.published_at,
        "yanked": version.yanked,
        "yanked_reason": version.yanked_reason,
        "price": price_dict(version),
        "tags": list(version.tags),
        "memory_types": list(version.memory_types),
        "base_models": list(version.base_models),
        "sha256": version.file_sha256,
        "size": version.file_size,
        "downloads": version.download_count,
        "payloads": [
            {"path": p.path, "media_type": p.media_type, "size": p.size, "sha256": p.sha256}
            for p in version.payloads.all()
        ],
        "ingest": ingest_dict(version),
    }


def publish_dict(version: PackVersion) -> dict[str, Any]:
    return {
        "name": version.pack.full_name,
        "version": version.version,
        "sha256": version.file_sha256,
        "size": version.file_size,
        "signed_by": [s.keyid for s in version.signatures.all()],
        "ingest": {k: v for k, v in ingest_dict(version).items() if k in ("status", "memories")},
        "url": f"/api/v1/packs/{version.pack.full_name}/versions/{version.version}",
        "findings": findings_list(version),
    }


def findings_list(version: PackVersion) -> list[dict[str, str]]:
    """What the publish-time scan found (:mod:`memstore.packs.scanning`), masked."""
    return [
        {"kind": f.kind, "rule": f.rule, "cube_id": f.cube_id, "record_id": f.record_id,
         "excerpt": f.excerpt}
        for f in version.findings.all()
    ]  # fmt: skip


def _pack_file(
    version: PackVersion, filename: str, request: Request, storage: BlobStorage, ttl: int
) -> dict[str, Any] | None:
    """The ``.memcube`` file, or None for a version published as a manifest over blobs."""
    if not version.file_sha256:
        return None
    return {
        "sha256": version.file_sha256,
        "size": version.file_size,
        "url": absolute(
            request, storage.download_url(version.file_sha256, ttl=ttl, filename=filename)
        ),
        "url_expires_at": timezone.now() + timedelta(seconds=ttl),
    }


def blobs_list(
    payloads: list[VersionPayload], request: Request, storage: BlobStorage, ttl: int
) -> list[dict[str, Any]]:
    """Each distinct blob of the payloads once, by digest, with a URL that serves Range."""
    first: dict[str, VersionPayload] = {}
    for p in payloads:
        first.setdefault(p.sha256, p)
    return [
        {
            "sha256": sha,
            "size": p.size,
            "media_type": p.media_type,
            "url": absolute(request, storage.download_url(sha, ttl=ttl)),
        }
        for sha, p in sorted(first.items())
    ]


def resolve_dict(resolution: Resolution, request: Request, storage: BlobStorage) -> dict[str, Any]:
    version = resolution.version
    pack = resolution.pack
    ttl: int = settings.MEMSTORE_URL_TTL
    manifest_bytes = bytes(version.manifest_bytes)
    filename = f"{pack.namespace.name}-{pack.name}-{version.version}.memcube"
    payloads = list(version.payloads.all())
    return {
        "name": pack.full_name,
        "version": version.version,
        "spec": resolution.spec,
        "published_at": version.published_at,
        "yanked": version.yanked,
        "yanked_reason": version.yanked_reason,
        "deprecated": pack.deprecated,
        "deprecation_message": pack.deprecation_message,
        "private": pack.private,
        "price": price_dict(version),
        "manifest": version.manifest,
        "manifest_b64": base64.b64encode(manifest_bytes).decode("ascii"),
        "manifest_sha256": version.manifest_sha256,
        "signatures": [
            {"alg": s.algorithm, "keyid": s.keyid, "sig": s.value_b64}
            for s in version.signatures.all()
        ],
        "keys": [key_dict(k) for k in namespace_keys(namespace=pack.namespace)],
        "pack": _pack_file(version, filename, request, storage, ttl),
        "payloads": [
            {
                "path": p.path,
                "media_type": p.media_type,
                "size": p.size,
                "sha256": p.sha256,
                "url": absolute(request, storage.download_url(p.sha256, ttl=ttl)),
            }
            for p in payloads
        ],
        "blobs": blobs_list(payloads, request, storage, ttl),
        "ingest": {k: v for k, v in ingest_dict(version).items() if k in ("status", "memories")},
    }


def blob_upload_dict(upload: BlobUpload) -> dict[str, Any]:
    return {
        "id": upload.id,
        "sha256": upload.sha256,
        "size": upload.size,
        "offset": upload.offset,
        "status": upload.status,
        "expires_at": upload.expires_at,
        "max_chunk_bytes": settings.MEMSTORE_UPLOAD_CHUNK_BYTES,
        "url": f"/api/v1/blobs/uploads/{upload.id}",
    }


def session_dict(session: UploadSession) -> dict[str, Any]:
    return {
        "id": session.id,
        "size": session.size,
        "sha256": session.sha256,
        "offset": session.offset,
        "status": session.status,
        "expires_at": session.expires_at,
        "max_chunk_bytes": settings.MEMSTORE_UPLOAD_CHUNK_BYTES,
    }
