"""Publish only what is missing: blobs/missing (no oracle), per-blob resumable uploads,
publish-manifest (the same checks as a pack upload), shared blobs stored once, GC."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from memstore.accounts.actor import Actor
from memstore.accounts.services import signing_key_revoke
from memstore.packs import tasks
from memstore.packs.blob_uploads import blob_upload_append, blob_upload_create
from memstore.packs.models import PackVersion, VersionPayload
from memstore.packs.services import Price, pack_publish
from memstore.storage.models import Blob, BlobUpload
from memstore.storage.parts import part_path
from memstore.testing.factories import UserFactory, publisher
from memstore.testing.packs import build_pack
from protocol import Manifest, SigningKey, sign_manifest

from .blobkit import (
    memories_file,
    patch,
    publish_missing_only,
    signed_manifest,
    token_client,
    upload_blob,
)

pytestmark = pytest.mark.django_db


def ten_files(changed: int | None = None) -> dict[str, bytes]:
    files = {f"c{i}": memories_file([f"memory {i} " + "x" * 2000]) for i in range(10)}
    if changed is not None:
        files[f"c{changed}"] = memories_file([f"memory {changed} changed " + "y" * 3000])
    return files


def error_code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


# ------------------------------------------------------------------ publish-manifest


def test_publish_manifest_publishes_after_uploading_the_missing_blobs(
    tmp_path: Path, alice: Any, storage: Any
) -> None:
    user, _, key = alice
    client = token_client(user)
    signed = signed_manifest(
        tmp_path, name="acme/blobs", version="1.0.0", files=ten_files(), keys=[key]
    )
    sent, response = publish_missing_only(client, signed)
    assert response.status_code == 201, response.content
    assert sent == sum(len(b) for b in signed.blobs.values())
    version = PackVersion.objects.get(pack__name="blobs")
    assert version.file_sha256 == "" and bytes(version.manifest_bytes) == signed.manifest_bytes
    assert {p.sha256 for p in version.payloads.all()} == set(signed.blobs)
    assert response.json()["signed_by"] == [key.keyid]
    assert version.ingest.status == "pending"  # ingestion enqueued with the version
    for sha, data in signed.blobs.items():
        with storage.open(sha) as fh:
            assert fh.read() == data
    resolved = client.get("/api/v1/resolve/acme/blobs").json()
    assert resolved["pack"] is None
    assert [b["sha256"] for b in resolved["blobs"]] == sorted(signed.blobs)


def test_second_version_sharing_nine_of_ten_blobs_uploads_only_the_tenth(
    tmp_path: Path, alice: Any, storage: Any
) -> None:
    user, _, key = alice
    client = token_client(user)
    first = signed_manifest(
        tmp_path, name="acme/blobs", version="1.0.0", files=ten_files(), keys=[key]
    )
    sent_first, response = publish_missing_only(client, first)
    assert response.status_code == 201, response.content
    second = signed_manifest(
        tmp_path, name="acme/blobs", version="1.1.0", files=ten_files(changed=7), keys=[key]
    )
    new = set(second.blobs) - set(first.blobs)
    assert len(new) == 1 and len(set(second.blobs) & set(first.blobs)) == 9
    before = set(BlobUpload.objects.values_list("pk", flat=True))
    sent_second, response = publish_missing_only(client, second)
    assert response.status_code == 201, response.content
    (only,) = new
    assert sent_second == len(second.blobs[only])
    received = sum(
        u.received for u in BlobUpload.objects.exclude(pk__in=before)
    )  # bytes the registry took in for the second version
    assert received == len(second.blobs[only])
    assert sent_second <= 0.15 * sent_first
    assert Blob.objects.count() == 11  # 10 + the changed one: the shared nine stored once
    assert VersionPayload.objects.count() == 20


def test_publish_manifest_refuses_a_blob_not_uploaded(
    tmp_path: Path, alice: Any, storage: Any
) -> None:
    user, _, key = alice
    client = token_client(user)
    signed = signed_manifest(
        tmp_path, name="acme/blobs", version="1.0.0", files=ten_files(), keys=[key]
    )
    response = client.post("/api/v1/packs/publish-manifest", signed.body(), format="json")
    assert response.status_code == 409
    assert error_code(response) == "blob.missing"
    assert sorted(response.json()["error"]["detail"]["missing"]) == sorted(signed.blobs)
    assert PackVersion.objects.count() == 0


def test_publish_manifest_refuses_someone_elses_private_blob(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    """Mallory knows the digest of alice's private payload but not its bytes."""
    _, _, key = alice
    private = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/secret", keys=[key], memories=["secret"]),
        private=True,
    )
    secret = private.payloads.get()
    mallory, _, mkey = publisher("evil", "mallory")
    client = token_client(mallory)
    signed = signed_manifest(
        tmp_path, name="evil/copy", version="1.0.0", files={"notes": b"x"}, keys=[mkey]
    )
    # Swap in the secret's digest and size: a manifest naming a blob mallory never had.
    forged = signed.manifest.to_dict()
    forged["cubes"][0]["payloads"][0].update(sha256=secret.sha256, size=secret.size)
    manifest = Manifest.from_dict(forged)
    body = {
        "manifest_b64": base64.b64encode(manifest.canonical_bytes()).decode(),
        "signatures": [sign_manifest(manifest.canonical_bytes(), mkey).to_dict()],
    }
    missing = client.post("/api/v1/blobs/missing", {"digests": [secret.sha256]}, format="json")
    assert missing.json() == {"missing": [secret.sha256]}  # the same as for an unknown digest
    response = client.post("/api/v1/packs/publish-manifest", body, format="json")
    assert response.status_code == 409 and error_code(response) == "blob.missing"
    assert not PackVersion.objects.filter(pack__namespace__name="evil").exists()


@pytest.mark.parametrize("case", ["stranger", "read_scope", "unsigned", "untrusted", "revoked"])
def test_publish_manifest_makes_the_same_checks_as_a_pack_upload(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any, case: str
) -> None:
    user, namespace, key = alice
    keys = {"unsigned": [], "untrusted": [SigningKey.generate()]}.get(case, [key])
    signed = signed_manifest(
        tmp_path, name="acme/blobs", version="1.0.0", files=ten_files(), keys=keys
    )
    owner = token_client(user)
    for sha, data in signed.blobs.items():
        upload_blob(owner, sha, data)
    if case == "revoked":
        signing_key_revoke(actor=alice_actor, namespace=namespace, keyid=key.keyid, reason="x")
    client = {
        "stranger": lambda: token_client(UserFactory(username="stranger")),
        "read_scope": lambda: token_client(user, scopes=("read",)),
    }.get(case, lambda: owner)()
    response = client.post("/api/v1/packs/publish-manifest", signed.body(), format="json")
    expected = {
        "stranger": (403, "registry.forbidden"),
        "read_scope": (403, "registry.forbidden"),
        "unsigned": (400, "signature.missing"),
        "untrusted": (400, "signature.untrusted"),
        "revoked": (400, "signature.revoked_key"),
    }[case]
    assert (response.status_code, error_code(response)) == expected, response.content
    assert PackVersion.objects.count() == 0


def test_publish_manifest_refuses_an_existing_version_and_bad_content(
    tmp_path: Path, alice: Any, local_storage: Any
) -> None:
    user, _, key = alice
    client = token_client(user)
    signed = signed_manifest(
        tmp_path, name="acme/blobs", version="1.0.0", files=ten_files(), keys=[key]
    )
    assert publish_missing_only(client, signed)[1].status_code == 201
    again = client.post("/api/v1/packs/publish-manifest", signed.body(), format="json")
    assert again.status_code == 409 and error_code(again) == "registry.version_exists"
    bad = signed_manifest(
        tmp_path, name="acme/blobs", version="2.0.0", files={"c0": b"not json\n"}, keys=[key]
    )
    _, response = publish_missing_only(client, bad)
    assert response.status_code == 400 and error_code(response).startswith("payload.")
    assert response.json()["error"]["detail"]["path"] == "payloads/c0/memories.jsonl"
    assert PackVersion.objects.count() == 1


def test_publish_manifest_refuses_non_canonical_bytes_and_bad_base64(
    tmp_path: Path, alice: Any, local_storage: Any
) -> None:
    user, _, key = alice
    client = token_client(user)
    signed = signed_manifest(
        tmp_path, name="acme/blobs", version="1.0.0", files=ten_files(), keys=[key]
    )
    spaced = signed.manifest_bytes.replace(b":", b": ", 1)
    body = {"manifest_b64": base64.b64encode(spaced).decode(), "signatures": signed.signatures}
    response = client.post("/api/v1/packs/publish-manifest", body, format="json")
    assert error_code(response) == "manifest.not_canonical"
    body = {"manifest_b64": "***", "signatures": []}
    response = client.post("/api/v1/packs/publish-manifest", body, format="json")
    assert response.status_code == 400 and error_code(response) == "registry.invalid_request"


# ------------------------------------------------------------------ missing and uploads


def test_missing_is_no_existence_oracle(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any
) -> None:
    _, _, key = alice
    secret = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/secret", keys=[key], memories=["s"]),
        private=True,
    ).payloads.get()
    public = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/open", keys=[key], memories=["o"]),
    ).payloads.get()
    unknown = "0" * 64
    mallory, _, _ = publisher("evil", "mallory")
    asked = [secret.sha256, unknown, public.sha256]
    answer = token_client(mallory).post("/api/v1/blobs/missing", {"digests": asked}, format="json")
    # The private blob answers exactly like a digest nobody stored; a public one is present.
    assert answer.json() == {"missing": [secret.sha256, unknown]}
    owner = token_client(alice[0]).post("/api/v1/blobs/missing", {"digests": asked}, format="json")
    assert owner.json() == {"missing": [unknown]}
    anonymous = token_client(mallory, scopes=("read",))
    refused = anonymous.post("/api/v1/blobs/missing", {"digests": asked}, format="json")
    assert refused.status_code == 403


def test_uploading_a_stored_blob_you_lack_proves_possession_and_stores_it_once(
    tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any
) -> None:
    _, _, key = alice
    secret = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/secret", keys=[key], memories=["shared"]),
        private=True,
    ).payloads.get()
    sha = secret.sha256
    with local_storage.open(sha) as fh:
        data = fh.read()  # mallory has the same bytes (say, a public document)
    assert Blob.objects.filter(sha256=sha).exists()
    mallory, _, _ = publisher("evil", "mallory")
    client = token_client(mallory)
    created = client.post(
        "/api/v1/blobs/uploads", {"sha256": sha, "size": len(data)}, format="json"
    )
    assert created.status_code == 201 and created.json()["status"] == "open"  # no shortcut
    assert upload_blob(client, sha, data) == len(data)
    assert client.post("/api/v1/blobs/missing", {"digests": [sha]}, format="json").json() == {
        "missing": []
    }
    retry = client.post("/api/v1/blobs/uploads", {"sha256": sha, "size": len(data)}, format="json")
    assert retry.status_code == 200 and retry.json()["status"] == "completed"  # a no-op
    assert Blob.objects.filter(sha256=sha).count() == 1


def test_blob_upload_resumes_after_an_interrupted_patch(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    user, _, _ = alice
    client = token_client(user)
    data = bytes(range(256)) * 1000
    sha = hashlib.sha256(data).hexdigest()
    upload, created = blob_upload_create(actor=alice_actor, sha256=sha, size=len(data))
    assert created
    blob_upload_append(actor=alice_actor, upload_id=upload.id, offset=0, data=data[:100_000])
    # The next PATCH was cut off: some of its bytes reached the part file, its offset never
    # committed (the process was killed).
    with open(part_path(f"blob-{upload.id}.part"), "ab") as fh:
        fh.write(b"torn" * 5000)
    # The client lost its state: asking for an upload of the same blob finds the open one.
    again = client.post("/api/v1/blobs/uploads", {"sha256": sha, "size": len(data)}, format="json")
    assert again.status_code == 200 and again.json()["id"] == str(upload.id)
    assert again.json()["offset"] == 100_000
    wrong = patch(client, str(upload.id), 0, data[:10])
    assert wrong.status_code == 409 and error_code(wrong) == "upload.offset_mismatch"
    assert wrong.json()["error"]["detail"]["offset"] == 100_000
    done = patch(client, str(upload.id), 100_000, data[100_000:])
    assert done.status_code == 200 and done.json()["status"] == "completed"
    with storage.open(sha) as fh:
        assert fh.read() == data
    late = patch(client, str(upload.id), len(data), b"more")
    assert late.status_code == 409 and error_code(late) == "upload.closed"
    complete = client.post(f"/api/v1/blobs/uploads/{upload.id}/complete")
    assert complete.status_code == 200 and complete.json()["status"] == "completed"


def test_blob_upload_refuses_wrong_digest_too_long_and_early_complete(
    tmp_path: Path, alice: Any, local_storage: Any
) -> None:
    client = token_client(alice[0])
    sha = hashlib.sha256(b"the real bytes").hexdigest()
    upload = client.post("/api/v1/blobs/uploads", {"sha256": sha, "size": 14}, format="json").json()
    early = client.post(f"/api/v1/blobs/uploads/{upload['id']}/complete")
    assert early.status_code == 400 and error_code(early) == "upload.incomplete"
    too_long = patch(client, upload["id"], 0, b"x" * 15)
    assert too_long.status_code == 400 and error_code(too_long) == "upload.too_long"
    wrong = patch(client, upload["id"], 0, b"other bytes!!!")
    assert wrong.status_code == 400 and error_code(wrong) == "blob.digest_mismatch"
    assert client.get(f"/api/v1/blobs/uploads/{upload['id']}").json()["status"] == "failed"
    assert not Blob.objects.filter(sha256=sha).exists() and local_storage.list_keys() == []
    bad = client.post("/api/v1/blobs/uploads", {"sha256": "ABC", "size": 1}, format="json")
    assert bad.status_code == 400
    other = token_client(UserFactory(username="other"))
    assert error_code(other.get(f"/api/v1/blobs/uploads/{upload['id']}")) == "upload.not_found"


# ------------------------------------------------------------------ garbage collection


def test_gc_keeps_shared_and_uploaded_blobs_and_removes_unreferenced_ones(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    user, _, key = alice
    client = token_client(user)
    first = signed_manifest(tmp_path, name="acme/a", version="1.0.0", files=ten_files(), keys=[key])
    assert publish_missing_only(client, first)[1].status_code == 201
    # Another pack of the same namespace shares nine blobs with acme/a (stored once).
    second = signed_manifest(
        tmp_path, name="acme/b", version="1.0.0", files=ten_files(changed=3), keys=[key]
    )
    assert publish_missing_only(client, second)[1].status_code == 201
    # A .memcube publish shares a payload too.
    pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/c", keys=[key], memories=["c"]),
        price=Price(),
    )
    pending = memories_file(["uploaded, not yet published"])
    abandoned = memories_file(["uploaded long ago, never published"])
    upload_blob(client, hashlib.sha256(pending).hexdigest(), pending)
    upload_blob(client, hashlib.sha256(abandoned).hexdigest(), abandoned)
    BlobUpload.objects.filter(sha256=hashlib.sha256(abandoned).hexdigest()).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    Blob.objects.update(created_at=timezone.now() - timedelta(days=2))
    removed = tasks.collect_garbage()
    assert removed == [hashlib.sha256(abandoned).hexdigest()]
    referenced = set(VersionPayload.objects.values_list("sha256", flat=True)) | set(
        PackVersion.objects.exclude(file_sha256="").values_list("file_sha256", flat=True)
    )
    assert set(Blob.objects.values_list("sha256", flat=True)) == referenced | {
        hashlib.sha256(pending).hexdigest()
    }
    for sha in referenced:
        assert storage.exists(sha)
    assert not storage.exists(hashlib.sha256(abandoned).hexdigest())


def test_publish_manifest_refuses_one_digest_with_two_sizes(
    tmp_path: Path, alice: Any, local_storage: Any
) -> None:
    user, _, key = alice
    signed = signed_manifest(
        tmp_path, name="acme/blobs", version="1.0.0", files=ten_files(), keys=[key]
    )
    forged = signed.manifest.to_dict()
    first = forged["cubes"][0]["payloads"][0]
    forged["cubes"][1]["payloads"][0].update(sha256=first["sha256"], size=first["size"] + 1)
    manifest_bytes = Manifest.from_dict(forged).canonical_bytes()
    body = {
        "manifest_b64": base64.b64encode(manifest_bytes).decode(),
        "signatures": [sign_manifest(manifest_bytes, key).to_dict()],
    }
    response = token_client(user).post("/api/v1/packs/publish-manifest", body, format="json")
    assert response.status_code == 400 and error_code(response) == "manifest.blob_conflict"
