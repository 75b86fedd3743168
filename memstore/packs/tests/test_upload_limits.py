"""Upload limits (issue 13): open sessions capped per user, expired ones purged hourly.

The cap is checked over HTTP for both kinds (whole-pack sessions and MIP 2 blob
uploads); the purge task runs on both storage backends (local files, S3 via moto):
expired sessions are closed, their part files deleted, parts of open sessions kept,
and stale leftovers of ``put_file`` (S3 multipart uploads, local temporary files)
removed. A second run finds nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from memstore.packs.models import UploadSession
from memstore.packs.tasks import purge_expired_uploads
from memstore.packs.upload_limits import uploads_purge_expired
from memstore.storage.backends import LocalBlobStorage, blob_key
from memstore.storage.models import BlobUpload
from memstore.testing.factories import UserFactory

from .blobkit import patch, token_client

pytestmark = pytest.mark.django_db


def _sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def _error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_open_pack_upload_sessions_are_capped_per_user(
    alice: Any, local_storage: Any, settings: Any
) -> None:
    settings.MEMSTORE_MAX_OPEN_UPLOADS = 2
    client = token_client(alice[0])
    made = [
        client.post("/api/v1/uploads/", {"size": 10, "sha256": _sha(i)}, format="json")
        for i in range(2)
    ]
    assert [r.status_code for r in made] == [201, 201]
    third = client.post("/api/v1/uploads/", {"size": 10, "sha256": _sha(3)}, format="json")
    assert third.status_code == 429
    assert _error_code(third) == "registry.too_many_uploads"
    assert third.json()["error"]["detail"]["limit"] == 2
    assert client.delete(f"/api/v1/uploads/{made[0].json()['id']}").status_code in (200, 204)
    again = client.post("/api/v1/uploads/", {"size": 10, "sha256": _sha(3)}, format="json")
    assert again.status_code == 201
    # An expired session no longer counts.
    UploadSession.objects.filter(id=made[1].json()["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert (
        client.post("/api/v1/uploads/", {"size": 10, "sha256": _sha(4)}, format="json").status_code
        == 201
    )


def test_a_stranger_cannot_open_a_pack_upload_session(db: None, local_storage: Any) -> None:
    stranger = token_client(UserFactory(username="mallory"))  # type: ignore[no-untyped-call]
    refused = stranger.post("/api/v1/uploads/", {"size": 10, "sha256": _sha(1)}, format="json")
    assert refused.status_code == 403
    assert _error_code(refused) == "registry.forbidden"
    assert UploadSession.objects.count() == 0


def test_open_blob_uploads_are_capped_but_resuming_one_is_not(
    alice: Any, local_storage: Any, settings: Any
) -> None:
    settings.MEMSTORE_MAX_OPEN_UPLOADS = 2
    client = token_client(alice[0])
    for i in range(2):
        created = client.post(
            "/api/v1/blobs/uploads", {"sha256": _sha(i), "size": 10}, format="json"
        )
        assert created.status_code == 201
    resumed = client.post("/api/v1/blobs/uploads", {"sha256": _sha(0), "size": 10}, format="json")
    assert resumed.status_code in (200, 201)
    assert resumed.json()["status"] == "open"
    refused = client.post("/api/v1/blobs/uploads", {"sha256": _sha(9), "size": 10}, format="json")
    assert refused.status_code == 429
    assert _error_code(refused) == "registry.too_many_uploads"
    assert BlobUpload.objects.filter(user=alice[0]).count() == 2


def _open_sessions(alice: Any) -> dict[str, Any]:
    """An expired and a live session of each kind, with part files holding bytes."""
    client = token_client(alice[0])
    ids: dict[str, Any] = {}
    for name, i in (("pack_old", 1), ("pack_live", 2)):
        r = client.post("/api/v1/uploads/", {"size": 10, "sha256": _sha(i)}, format="json")
        ids[name] = r.json()["id"]
        client.patch(
            f"/api/v1/uploads/{ids[name]}", b"12345",
            content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0",
        )  # fmt: skip
    for name, i in (("blob_old", 3), ("blob_live", 4)):
        r = client.post("/api/v1/blobs/uploads", {"sha256": _sha(i), "size": 10}, format="json")
        ids[name] = r.json()["id"]
        patch(client, ids[name], 0, b"12345")
    past = timezone.now() - timedelta(minutes=1)
    UploadSession.objects.filter(id=ids["pack_old"]).update(expires_at=past)
    BlobUpload.objects.filter(id=ids["blob_old"]).update(expires_at=past)
    return ids


def _parts() -> set[str]:
    return {p.name for p in Path(settings.MEMSTORE_UPLOAD_DIR).glob("*.part")}


def _stale_leftover(storage: Any) -> None:
    """What a put_file that died leaves: an S3 multipart upload, or a local temporary file."""
    if isinstance(storage, LocalBlobStorage):
        tmp = storage.root / "sha256" / "ab" / f".{_sha(7)}.123.456.tmp"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(b"half a blob")
        old = time.time() - 2 * 86400
        os.utime(tmp, (old, old))
        return
    key = storage.prefix + blob_key(_sha(7))
    started = storage._client.create_multipart_upload(Bucket=storage.bucket, Key=key)
    storage._client.upload_part(
        Bucket=storage.bucket, Key=key, UploadId=started["UploadId"], PartNumber=1,
        Body=b"x" * 1024,
    )  # fmt: skip


def _multipart_left(storage: Any) -> int:
    if isinstance(storage, LocalBlobStorage):
        return len(list(storage.root.rglob(".*.tmp")))
    listed = storage._client.list_multipart_uploads(Bucket=storage.bucket)
    return len(listed.get("Uploads", []))


def test_purge_deletes_expired_sessions_parts_and_stale_multipart_on_both_backends(
    alice: Any, storage: Any
) -> None:
    ids = _open_sessions(alice)
    _stale_leftover(storage)
    orphan = Path(settings.MEMSTORE_UPLOAD_DIR) / "not-a-session.part"
    orphan.write_bytes(b"young orphan")
    assert {f"{ids['pack_old']}.part", f"blob-{ids['blob_old']}.part"} <= _parts()
    report = uploads_purge_expired(storage=storage, multipart_older_than=timedelta(0))
    assert report.expired_sessions == 1
    assert report.expired_blob_uploads == 1
    assert sorted(report.parts_deleted) == sorted(
        [f"{ids['pack_old']}.part", f"blob-{ids['blob_old']}.part"]
    )
    assert report.multipart_aborted == 1
    assert _multipart_left(storage) == 0
    assert _parts() == {f"{ids['pack_live']}.part", f"blob-{ids['blob_live']}.part", orphan.name}
    assert UploadSession.objects.get(id=ids["pack_old"]).status == "cancelled"
    assert BlobUpload.objects.get(id=ids["blob_old"]).status == "cancelled"
    assert UploadSession.objects.get(id=ids["pack_live"]).status == "open"
    # Idempotent: nothing left to do; an orphan goes once it is past the grace period.
    again = uploads_purge_expired(storage=storage, multipart_older_than=timedelta(0))
    assert again.to_dict() == {
        "expired_sessions": 0, "expired_blob_uploads": 0, "parts_deleted": [],
        "multipart_aborted": 0,
    }  # fmt: skip
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    assert uploads_purge_expired(storage=storage).parts_deleted == [orphan.name]


def test_purge_task_uses_the_configured_storage_and_keeps_a_fresh_put_file(
    alice: Any, storage: Any
) -> None:
    ids = _open_sessions(alice)
    fresh = None
    if isinstance(storage, LocalBlobStorage):  # a put_file that may still be running
        fresh = storage.root / f".{_sha(8)}.1.2.tmp"
        fresh.parent.mkdir(parents=True, exist_ok=True)
        fresh.write_bytes(b"in flight")
    # (moto reports every multipart upload as initiated in 2010, so a fresh one cannot
    # be told from a stale one there; the age rule is the same code on both.)
    result = purge_expired_uploads()
    assert result["expired_sessions"] == 1
    assert result["expired_blob_uploads"] == 1
    assert result["multipart_aborted"] == 0
    assert fresh is None or fresh.exists()
    assert f"{ids['pack_old']}.part" not in _parts()
    assert f"{ids['pack_live']}.part" in _parts()
