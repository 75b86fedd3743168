"""The REST API (every domain's views, routed by memstore/urls.py): resolve shape, authorization,
publish over HTTP, one error shape."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

from memstore.accounts.actor import Actor
from memstore.accounts.services import api_token_create, user_create
from memstore.packs.models import Pack, PackVersion
from memstore.packs.services import Price, entitlement_grant, pack_publish
from memstore.storage.models import Blob
from memstore.testing.packs import build_pack
from protocol import Manifest, PublicKey, Signature, canonical_bytes, verify_or_raise

pytestmark = pytest.mark.django_db


def client_for(user: Any = None, scopes: tuple[str, ...] = ("read", "publish:*")) -> APIClient:
    client = APIClient()
    if user is not None:
        _, raw = api_token_create(user=user, scopes=scopes)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "detail"}
    assert body["error"]["code"] == code
    return body["error"]


@pytest.fixture
def published(tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any) -> dict[str, Any]:
    """acme/docs 1.0.0 and 1.1.0 (public), acme/secret (private), acme/paid (paid)."""
    _, _, key = alice
    out = {}
    for v in ("1.0.0", "1.1.0"):
        out[v] = pack_publish(
            actor=alice_actor,
            pack_file=build_pack(
                tmp_path, name="acme/docs", version=v, keys=[key], memories=[f"v{v}"]
            ),
        )
    out["secret"] = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/secret", keys=[key]),
        private=True,
    )
    out["paid"] = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/paid", keys=[key]),
        price=Price(amount_minor=900, currency="EUR"),
    )
    return out


def test_resolve_returns_manifest_signatures_keys_and_working_urls(
    published: dict[str, Any], alice: Any, live_server: Any
) -> None:
    client = APIClient()
    response = client.get("/api/v1/resolve/acme/docs", {"spec": "^1.0"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "acme/docs" and body["version"] == "1.1.0"
    manifest_bytes = base64.b64decode(body["manifest_b64"])
    assert canonical_bytes(body["manifest"]) == manifest_bytes
    assert Manifest.from_bytes(manifest_bytes).version == "1.1.0"
    assert hashlib.sha256(manifest_bytes).hexdigest() == body["manifest_sha256"]
    keys = {
        k["keyid"]: PublicKey.from_text(k["public_key"])
        for k in body["keys"]
        if k["revoked_at"] is None
    }
    assert alice[2].keyid in keys
    verify_or_raise(manifest_bytes, [Signature.from_dict(s) for s in body["signatures"]], keys)
    # The download URL works (served by this server for local storage) and has the right bytes.
    url = body["pack"]["url"].replace("http://testserver", live_server.url)
    data = httpx.get(url).content
    assert (
        hashlib.sha256(data).hexdigest() == body["pack"]["sha256"]
        and len(data) == body["pack"]["size"]
    )
    payload = body["payloads"][0]
    blob = httpx.get(payload["url"].replace("http://testserver", live_server.url)).content
    assert hashlib.sha256(blob).hexdigest() == payload["sha256"]
    assert PackVersion.objects.get(pk=published["1.1.0"].pk).download_count == 1


def test_resolve_exact_version_and_errors(published: dict[str, Any]) -> None:
    client = APIClient()
    assert client.get("/api/v1/resolve/acme/docs", {"spec": "1.0.0"}).json()["version"] == "1.0.0"
    error = assert_error(
        client.get("/api/v1/resolve/acme/docs", {"spec": "^2"}), 404, "registry.no_matching_version"
    )
    assert sorted(error["detail"]["available"]) == ["1.0.0", "1.1.0"]
    assert_error(client.get("/api/v1/resolve/acme/nope"), 404, "registry.not_found")
    assert_error(client.get("/api/v1/resolve/acme/docs", {"spec": "^^1"}), 400, "ref.invalid")


def test_yanked_version_is_skipped_by_ranges_but_resolvable_exactly(
    published: dict[str, Any], alice: Any
) -> None:
    owner = client_for(alice[0])
    response = owner.post(
        "/api/v1/packs/acme/docs/versions/1.1.0/yank", {"reason": "broken"}, format="json"
    )
    assert response.status_code == 200, response.content
    anon = APIClient()
    assert anon.get("/api/v1/resolve/acme/docs").json()["version"] == "1.0.0"
    exact = anon.get("/api/v1/resolve/acme/docs", {"spec": "1.1.0"}).json()
    assert exact["yanked"] is True and exact["yanked_reason"] == "broken"


def test_deleted_version_is_gone(published: dict[str, Any], alice: Any) -> None:
    owner = client_for(alice[0])
    assert owner.delete("/api/v1/packs/acme/docs/versions/1.0.0").status_code == 204
    assert_error(
        APIClient().get("/api/v1/resolve/acme/docs", {"spec": "1.0.0"}),
        410,
        "registry.version_deleted",
    )


def test_private_pack_is_invisible_to_outsiders(published: dict[str, Any], alice: Any) -> None:
    assert_error(APIClient().get("/api/v1/resolve/acme/secret"), 404, "registry.not_found")
    bob = user_create(username="bob", password="pw")
    assert_error(client_for(bob).get("/api/v1/resolve/acme/secret"), 404, "registry.not_found")
    assert_error(client_for(bob).get("/api/v1/packs/acme/secret"), 404, "registry.not_found")
    names = [p["name"] for p in APIClient().get("/api/v1/packs/").json()["results"]]
    assert "acme/secret" not in names
    assert client_for(alice[0]).get("/api/v1/resolve/acme/secret").status_code == 200


def test_paid_pack_needs_an_entitlement(published: dict[str, Any], alice: Any) -> None:
    assert_error(APIClient().get("/api/v1/resolve/acme/paid"), 401, "registry.not_authenticated")
    bob = user_create(username="bob", password="pw")
    error = assert_error(
        client_for(bob).get("/api/v1/resolve/acme/paid"), 403, "registry.entitlement_required"
    )
    assert error["detail"]["price"] == {"amount_minor": 900, "currency": "EUR"}
    entitlement_grant(
        user=bob, pack=Pack.objects.get(name="paid"), source="purchase", reference="order-1"
    )
    assert client_for(bob).get("/api/v1/resolve/acme/paid").status_code == 200
    # A token without the read scope does not carry the entitlement.
    assert_error(
        client_for(bob, scopes=()).get("/api/v1/resolve/acme/paid"),
        403,
        "registry.entitlement_required",
    )
    # Members of the publishing namespace need no entitlement.
    assert client_for(alice[0]).get("/api/v1/resolve/acme/paid").status_code == 200


def test_publish_over_http_then_conflict(tmp_path: Path, alice: Any, local_storage: Any) -> None:
    client = client_for(alice[0], scopes=("publish:acme",))
    pack_file = build_pack(tmp_path, name="acme/web", keys=[alice[2]])
    with open(pack_file, "rb") as fh:
        response = client.post("/api/v1/packs/upload", {"file": fh}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "acme/web" and body["signed_by"] == [alice[2].keyid]
    assert body["ingest"]["status"] == "pending"
    with open(pack_file, "rb") as fh:
        again = client.post("/api/v1/packs/upload", {"file": fh}, format="multipart")
    assert_error(again, 409, "registry.version_exists")


def test_publish_refusals_carry_protocol_codes_and_leave_nothing(
    tmp_path: Path, alice: Any, local_storage: Any
) -> None:
    client = client_for(alice[0])
    unsigned = build_pack(tmp_path, name="acme/web", keys=[])
    with open(unsigned, "rb") as fh:
        assert_error(
            client.post("/api/v1/packs/upload", {"file": fh}, format="multipart"),
            400,
            "signature.missing",
        )
    garbage = tmp_path / "garbage.memcube"
    garbage.write_bytes(b"not a pack at all")
    with open(garbage, "rb") as fh:
        assert_error(
            client.post("/api/v1/packs/upload", {"file": fh}, format="multipart"),
            400,
            "archive.corrupt",
        )
    assert PackVersion.objects.count() == 0 and Blob.objects.count() == 0
    assert local_storage.list_keys() == []


def test_publish_needs_credentials_and_scope(
    tmp_path: Path, alice: Any, local_storage: Any
) -> None:
    pack_file = build_pack(tmp_path, name="acme/web", keys=[alice[2]])
    with open(pack_file, "rb") as fh:
        assert_error(
            APIClient().post("/api/v1/packs/upload", {"file": fh}, format="multipart"),
            401,
            "registry.not_authenticated",
        )
    with open(pack_file, "rb") as fh:
        response = client_for(alice[0], scopes=("read",)).post(
            "/api/v1/packs/upload", {"file": fh}, format="multipart"
        )
    assert_error(response, 403, "registry.forbidden")
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer mst_nope")
    assert_error(bad.get("/api/v1/auth/whoami"), 401, "registry.not_authenticated")


def test_pack_over_the_size_limit_is_refused(
    tmp_path: Path, alice: Any, local_storage: Any, settings: Any
) -> None:
    settings.MEMSTORE_MAX_PACK_BYTES = 200
    pack_file = build_pack(tmp_path, name="acme/web", keys=[alice[2]], memories=["x" * 2000])
    with open(pack_file, "rb") as fh:
        response = client_for(alice[0]).post(
            "/api/v1/packs/upload", {"file": fh}, format="multipart"
        )
    assert_error(response, 413, "registry.too_large")


def test_resumable_upload_session(
    tmp_path: Path, alice: Any, local_storage: Any, settings: Any
) -> None:
    settings.MEMSTORE_UPLOAD_CHUNK_BYTES = 1024
    client = client_for(alice[0])
    pack_file = build_pack(
        tmp_path,
        name="acme/big",
        keys=[alice[2]],
        memories=[hashlib.sha256(str(i).encode()).hexdigest() * 3 for i in range(50)],
    )
    data = pack_file.read_bytes()
    assert len(data) > 2048
    created = client.post(
        "/api/v1/uploads/",
        {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        format="json",
    )
    assert created.status_code == 201, created.content
    url = f"/api/v1/uploads/{created.json()['id']}"
    first = client.patch(
        url, data[:1024], content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0"
    )
    assert first.json()["offset"] == 1024
    too_big = client.patch(
        url, data[:2048], content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="1024"
    )
    assert_error(too_big, 413, "registry.too_large")
    # A repeated chunk at a stale offset is refused with the offset to resume from.
    stale = client.patch(
        url, data[:1024], content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0"
    )
    assert assert_error(stale, 409, "registry.upload_offset_mismatch")["detail"]["offset"] == 1024
    assert_error(
        client.post(f"{url}/complete", {}, format="json"), 400, "registry.upload_incomplete"
    )
    offset = client.get(url).json()["offset"]
    while offset < len(data):
        chunk = data[offset : offset + 1024]
        offset = client.patch(
            url, chunk, content_type="application/octet-stream", HTTP_UPLOAD_OFFSET=str(offset)
        ).json()["offset"]
    done = client.post(f"{url}/complete", {}, format="json")
    assert done.status_code == 201, done.content
    assert done.json()["name"] == "acme/big"


def test_token_login_whoami_and_revoke(db: None) -> None:
    user_create(username="carol", password="s3cret-pw")
    client = APIClient()
    assert_error(
        client.post(
            "/api/v1/auth/tokens", {"username": "carol", "password": "wrong"}, format="json"
        ),
        401,
        "registry.bad_credentials",
    )
    created = client.post(
        "/api/v1/auth/tokens",
        {"username": "carol", "password": "s3cret-pw", "scopes": ["read"]},
        format="json",
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("mst_")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    me = client.get("/api/v1/auth/whoami").json()
    assert me["username"] == "carol" and me["scopes"] == ["read"]
    assert me["namespaces"] == [{"name": "carol", "role": "owner"}]
    assert client.delete(f"/api/v1/auth/tokens/{created.json()['id']}").status_code == 204
    assert_error(client.get("/api/v1/auth/whoami"), 401, "registry.not_authenticated")


def test_key_registration_and_revocation_over_http(alice: Any) -> None:
    from protocol import SigningKey

    client = client_for(alice[0], scopes=("admin:acme",))  # keys need admin:NS (issue 13)
    new = SigningKey.generate()
    created = client.post(
        "/api/v1/namespaces/acme/keys",
        {"public_key": new.public_key.to_text(), "label": "2026"},
        format="json",
    )
    assert created.status_code == 201 and created.json()["keyid"] == new.keyid
    revoked = client.post(
        f"/api/v1/namespaces/acme/keys/{new.keyid}/revoke", {"reason": "rotated"}, format="json"
    )
    assert revoked.json()["revoked_at"] is not None
    assert_error(
        client.post("/api/v1/namespaces/acme/keys", {"public_key": "ed25519:nope"}, format="json"),
        400,
        "registry.bad_key",
    )
    outsider = client_for(user_create(username="eve", password="pw"))
    assert_error(
        outsider.post(
            "/api/v1/namespaces/acme/keys", {"public_key": new.public_key.to_text()}, format="json"
        ),
        403,
        "registry.forbidden",
    )


def test_schema_and_unknown_urls_use_the_error_shape(db: None) -> None:
    client = APIClient()
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/resolve/{namespace}/{name}" in schema.content
    assert_error(client.get("/api/v1/nothing-here"), 404, "registry.not_found")
    assert_error(client.post("/api/v1/search/memories"), 405, "registry.method_not_allowed")
    assert_error(client.get("/api/v1/search/memories"), 400, "registry.invalid_request")
