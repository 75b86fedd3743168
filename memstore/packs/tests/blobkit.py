"""Helpers for the blob tests: signed manifests over many blobs, and a client that publishes
only the missing blobs over HTTP (what ``memos publish`` of a MIP 2 pack does)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rest_framework.test import APIClient

from memstore.accounts.services import api_token_create
from protocol import Manifest, SigningKey, build_manifest, sign_manifest


@dataclass(frozen=True)
class Signed:
    manifest: Manifest
    manifest_bytes: bytes
    signatures: list[dict[str, str]]
    blobs: dict[str, bytes]  # sha256 -> content

    def body(self, **extra: Any) -> dict[str, Any]:
        return {
            "manifest_b64": base64.b64encode(self.manifest_bytes).decode("ascii"),
            "signatures": self.signatures,
            **extra,
        }


def memories_file(texts: list[str]) -> bytes:
    lines = [json.dumps({"id": f"m{i}", "text": t}) for i, t in enumerate(texts)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def signed_manifest(
    workdir: Path,
    *,
    name: str,
    version: str,
    files: dict[str, bytes],
    keys: list[SigningKey],
) -> Signed:
    """A manifest with one plaintext cube per entry of ``files`` (cube id -> memories bytes)."""
    source = workdir / f"src-{name.replace('/', '-')}-{version}"
    cubes = []
    for cube_id, data in files.items():
        rel = f"payloads/{cube_id}/memories.jsonl"
        (source / "payloads" / cube_id).mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
        cubes.append(
            {
                "id": cube_id,
                "memory_type": "plaintext",
                "payloads": [{"path": rel}],
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "generated",
                "version": 1,
            }
        )
    template = {
        "mip_version": "1.0",
        "name": name,
        "version": version,
        "title": name,
        "license": "Apache-2.0",
        "created_at": "2025-01-01T00:00:00Z",
        "cubes": cubes,
    }
    (source / "manifest.json").write_text(json.dumps(template), encoding="utf-8")
    manifest, paths = build_manifest(source)
    manifest_bytes = manifest.canonical_bytes()
    sigs = [sign_manifest(manifest_bytes, k).to_dict() for k in keys]
    blobs = {ref.sha256: paths[ref.path].read_bytes() for ref in manifest.payloads()}
    return Signed(manifest=manifest, manifest_bytes=manifest_bytes, signatures=sigs, blobs=blobs)


def token_client(user: Any, scopes: tuple[str, ...] = ("read", "publish:*")) -> APIClient:
    client = APIClient()
    _, raw = api_token_create(user=user, scopes=scopes)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def patch(client: APIClient, upload_id: str, offset: int, data: bytes) -> Any:
    return client.generic(
        "PATCH",
        f"/api/v1/blobs/uploads/{upload_id}",
        data,
        content_type="application/octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
    )


def upload_blob(client: APIClient, sha256: str, data: bytes, chunk: int = 64 * 1024) -> int:
    """Upload one blob in chunks, resuming at the session's offset; returns bytes sent."""
    response = client.post(
        "/api/v1/blobs/uploads", {"sha256": sha256, "size": len(data)}, format="json"
    )
    assert response.status_code in (200, 201), response.content
    upload = response.json()
    sent = 0
    offset = upload["offset"]
    while upload["status"] == "open":
        piece = data[offset : offset + chunk]
        response = patch(client, upload["id"], offset, piece)
        assert response.status_code == 200, response.content
        sent += len(piece)
        upload = response.json()
        offset = upload["offset"]
        if not piece:
            break
    assert upload["status"] == "completed", upload
    return sent


def publish_missing_only(client: APIClient, signed: Signed) -> tuple[int, Any]:
    """Ask which blobs are missing, upload those, publish; returns (bytes sent, response)."""
    response = client.post(
        "/api/v1/blobs/missing", {"digests": sorted(signed.blobs)}, format="json"
    )
    assert response.status_code == 200, response.content
    sent = sum(upload_blob(client, sha, signed.blobs[sha]) for sha in response.json()["missing"])
    return sent, client.post("/api/v1/packs/publish-manifest", signed.body(), format="json")
