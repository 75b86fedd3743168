"""GET|HEAD /api/v1/blobs/sha256/<hex>: Range on both backends (real moto S3 over HTTP, local
files), ETag, and the one download rule (404 to whoever may not read the blob)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from memstore.accounts.actor import Actor
from memstore.packs.services import Price, entitlement_grant, pack_publish
from memstore.storage.backends import BlobStorage, LocalBlobStorage, sign_download
from memstore.storage.models import Blob
from memstore.testing.factories import UserFactory
from memstore.testing.packs import build_pack

from .blobkit import token_client

pytestmark = pytest.mark.django_db

DATA = bytes(range(256)) * 40  # 10 240 bytes
SHA = hashlib.sha256(DATA).hexdigest()


def stored(tmp_path: Path, storage: BlobStorage, data: bytes = DATA) -> str:
    """A blob referenced by nothing yet (readable only through a signed URL)."""
    sha = hashlib.sha256(data).hexdigest()
    path = tmp_path / sha
    path.write_bytes(data)
    storage.put_file(sha, path)
    Blob.objects.get_or_create(sha256=sha, defaults={"size": len(data)})
    return sha


def get(client: APIClient, url: str, range_: str | None = None, **headers: str) -> Any:
    """GET through the registry; follow a redirect to S3 with a real HTTP client."""
    extra = {"HTTP_RANGE": range_} if range_ else {}
    extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    response = client.get(url, **extra)
    if response.status_code != 302:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return response.status_code, response, body
    assert response["Location"].startswith("http://127.0.0.1:")  # the moto server
    follow = httpx.get(response["Location"], headers={"Range": range_} if range_ else {})
    return follow.status_code, follow.headers, follow.content


@pytest.fixture
def public_blob(tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any) -> dict[str, Any]:
    _, _, key = alice
    version = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/docs", keys=[key], memories=["x" * 5000]),
    )
    payload = version.payloads.get()
    with storage.open(payload.sha256) as fh:
        data = fh.read()
    return {"sha256": payload.sha256, "data": data, "url": f"/api/v1/blobs/sha256/{payload.sha256}"}


@pytest.mark.parametrize(
    ("range_", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=1000-1999", 1000, 1999), ("bytes=-10", -10, None)],
)
def test_range_first_middle_and_suffix_on_both_backends(
    public_blob: dict[str, Any], range_: str, start: int, end: int | None
) -> None:
    data = public_blob["data"]
    status, headers, body = get(APIClient(), public_blob["url"], range_)
    assert status == 206
    expected = data[start : None if end is None else end + 1]
    assert body == expected
    first = start % len(data)
    assert headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert int(headers["Content-Length"]) == len(expected)


def test_unsatisfiable_range_is_416_on_both_backends(
    public_blob: dict[str, Any], storage: Any
) -> None:
    size = len(public_blob["data"])
    status, headers, _ = get(APIClient(), public_blob["url"], f"bytes={size}-")
    assert status == 416
    if isinstance(storage, LocalBlobStorage):  # S3 (moto) answers 416 without Content-Range
        assert headers["Content-Range"] == f"bytes */{size}"


def test_whole_blob_with_etag_and_accept_ranges(public_blob: dict[str, Any]) -> None:
    status, _, body = get(APIClient(), public_blob["url"])
    assert status == 200 and body == public_blob["data"]
    assert hashlib.sha256(body).hexdigest() == public_blob["sha256"]
    head = APIClient().head(public_blob["url"])
    assert head.status_code == 200
    assert head["ETag"] == f'"{public_blob["sha256"]}"'
    assert head["Accept-Ranges"] == "bytes"
    assert int(head["Content-Length"]) == len(public_blob["data"])
    ranged = APIClient().head(public_blob["url"], HTTP_RANGE="bytes=0-9")
    assert ranged.status_code == 206 and ranged["Content-Length"] == "10"


def test_local_range_headers_and_if_range(tmp_path: Path, local_storage: Any) -> None:
    sha = stored(tmp_path, local_storage)
    url = local_storage.download_url(sha, ttl=60)
    assert url.startswith(f"/api/v1/blobs/sha256/{sha}?")
    status, response, body = get(APIClient(), url, "bytes=10-19")
    assert status == 206 and body == DATA[10:20]
    assert response["ETag"] == f'"{sha}"' and response["Accept-Ranges"] == "bytes"
    status, _, body = get(APIClient(), url, "bytes=10-19", **{"If-Range": f'"{sha}"'})
    assert status == 206 and body == DATA[10:20]
    status, _, body = get(APIClient(), url, "bytes=10-19", **{"If-Range": '"other"'})
    assert status == 200 and body == DATA  # another validator: the whole blob
    status, _, body = get(APIClient(), url, "bytes=0-1,5-6")
    assert status == 200 and body == DATA  # several ranges: ignored
    old = f"/api/v1/blobs/{sha}?{url.split('?', 1)[1]}"  # the MIP 1 URL form ranges too
    status, _, body = get(APIClient(), old, "bytes=-5")
    assert status == 206 and body == DATA[-5:]


def test_s3_redirects_to_a_presigned_url_that_honours_range(
    tmp_path: Path, s3_storage: Any
) -> None:
    sha = stored(tmp_path, s3_storage)
    url = f"/api/v1/blobs/sha256/{sha}?{urlencode(sign_download(settings.SECRET_KEY, sha, ttl=60))}"
    response = APIClient().get(url, HTTP_RANGE="bytes=100-199")
    assert response.status_code == 302 and response["ETag"] == f'"{sha}"'
    status, headers, body = get(APIClient(), url, "bytes=100-199")
    assert status == 206 and body == DATA[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"


def test_signed_url_serves_an_unreferenced_blob_and_nothing_else_does(
    tmp_path: Path, storage: Any
) -> None:
    sha = stored(tmp_path, storage)
    plain = APIClient().get(f"/api/v1/blobs/sha256/{sha}")
    unknown = APIClient().get(f"/api/v1/blobs/sha256/{'0' * 64}")
    assert plain.status_code == unknown.status_code == 404
    assert plain.json()["error"]["code"] == unknown.json()["error"]["code"] == "blob.not_found"
    forged = APIClient().get(f"/api/v1/blobs/sha256/{sha}?exp=9999999999&sig=00")
    assert forged.status_code == 404


@pytest.fixture
def private_and_paid(tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any) -> Any:
    _, _, key = alice
    secret = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/secret", keys=[key], memories=["secret"]),
        private=True,
    )
    paid = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/paid", keys=[key], memories=["paid"]),
        price=Price(amount_minor=900, currency="EUR"),
    )
    return secret, paid


def status_of(client: APIClient, sha: str) -> int:
    response = client.get(f"/api/v1/blobs/sha256/{sha}")
    code: int = response.status_code
    if code == 404:
        assert response.json()["error"]["code"] == "blob.not_found"
    return code


def test_stranger_gets_404_for_private_and_paid_blobs_entitled_and_members_read_them(
    private_and_paid: Any, alice: Any
) -> None:
    secret, paid = private_and_paid
    secret_sha, paid_sha = secret.payloads.get().sha256, paid.payloads.get().sha256
    stranger = token_client(UserFactory(username="stranger"))
    for client in (APIClient(), stranger):
        assert status_of(client, secret_sha) == 404
        assert status_of(client, paid_sha) == 404
        assert status_of(client, paid.file_sha256) == 404  # the paid pack file too
    buyer = UserFactory(username="buyer")
    entitlement_grant(user=buyer, pack=paid.pack, source="purchase", reference="order-1")
    entitled = token_client(buyer)
    assert status_of(entitled, paid_sha) in (200, 302)
    assert status_of(entitled, secret_sha) == 404
    assert status_of(token_client(buyer, scopes=("publish:other",)), paid_sha) in (200, 302)
    owner = token_client(alice[0])
    assert status_of(owner, secret_sha) in (200, 302)
    assert status_of(owner, paid_sha) in (200, 302)


def test_resolve_lists_each_blob_once_with_a_url_that_ranges(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any
) -> None:
    _, _, key = alice
    pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/docs", keys=[key], memories=["x" * 3000]),
    )
    body = APIClient().get("/api/v1/resolve/acme/docs").json()
    assert body["pack"]["sha256"] and body["payloads"]  # every MIP 1 field is still there
    (blob,) = body["blobs"]
    payload = body["payloads"][0]
    assert {k: blob[k] for k in ("sha256", "size", "media_type")} == {
        k: payload[k] for k in ("sha256", "size", "media_type")
    }
    url = blob["url"]
    if url.startswith("http://testserver"):
        url = url.removeprefix("http://testserver")
        status, _, part = get(APIClient(), url, "bytes=0-9")
    else:
        response = httpx.get(url, headers={"Range": "bytes=0-9"})
        status, part = response.status_code, response.content
    assert status == 206 and len(part) == 10


@pytest.mark.integration
def test_a_real_http_client_resumes_a_blob_through_the_registry(
    tmp_path: Path, alice: Any, alice_actor: Actor, storage: Any, live_server: Any
) -> None:
    """httpx over a real socket: the registry (and S3 behind its redirect) resume mid-blob."""
    _, _, key = alice
    version = pack_publish(
        actor=alice_actor,
        pack_file=build_pack(tmp_path, name="acme/docs", keys=[key], memories=["y" * 20000]),
    )
    sha = version.payloads.get().sha256
    url = f"{live_server.url}/api/v1/blobs/sha256/{sha}"
    with httpx.Client(follow_redirects=True) as client:
        whole = client.get(url)
        assert whole.status_code == 200
        rest = client.get(url, headers={"Range": f"bytes={len(whole.content) // 2}-"})
    assert rest.status_code == 206
    assert whole.content[: len(whole.content) // 2] + rest.content == whole.content
    assert hashlib.sha256(whole.content).hexdigest() == sha
