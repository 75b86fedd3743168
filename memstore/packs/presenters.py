"""Packs, versions, upload sessions, blob uploads and resolutions as the plain dicts the API's
output serializers describe (:mod:`memstore.packs.serializers`).

Not here: reads (``selectors``), writes (``services``) or HTTP (``apis``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from ..storage.models import BlobUpload
from .models import Pack, PackVersion, UploadSession
from .selectors import versions_of

__all__ = [
    "blob_upload_dict",
    "findings_list",
    "ingest_dict",
    "pack_dict",
    "price_dict",
    "publish_dict",
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
