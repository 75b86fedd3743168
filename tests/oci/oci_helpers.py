"""Helpers for the OCI tests (a unique module name, imported by the tests here)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from protocol import Pack, manifest_blobs, read_pack
from runtime.oci import OCIClient, build_manifest, parse_reference
from runtime.oci.mapping import CONFIG_MEDIA_TYPE, SIGNATURE_MEDIA_TYPE, descriptor_for

ROOT = Path(__file__).resolve().parents[2]
MEMOS = [sys.executable, "-c", "from runtime.cli.main import run; run()"]


class Recorder(httpx.BaseTransport):
    """A real HTTP transport that records every request (method, path) it sends."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()

    def blob_gets(self) -> list[str]:
        """The digests of every blob fetched (``GET /v2/.../blobs/<digest>``)."""
        return [
            p.rsplit("/", 1)[1] for m, p in self.requests if m == "GET" and "/blobs/sha256:" in p
        ]

    def uploads(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if "/blobs/uploads/" in p]


def upload_as(pack_path: Path, target: str, work: Path) -> tuple[Pack, bytes]:
    """Store a pack's OCI form under ``target`` by hand, whatever its name (a hostile pusher)."""
    pack = read_pack(pack_path, target=work)
    ref = parse_reference(target)
    oci = build_manifest(pack.manifest_bytes, manifest_blobs(pack.manifest), pack.signatures)
    with OCIClient.for_reference(ref) as client:
        config = descriptor_for(pack.manifest_bytes, CONFIG_MEDIA_TYPE)
        client.upload_blob(config.digest, config.size, pack.manifest_bytes)
        for sig in pack.signatures:
            raw = sig.to_bytes()
            client.upload_blob(descriptor_for(raw, SIGNATURE_MEDIA_TYPE).digest, len(raw), raw)
        for ref_ in pack.manifest.payloads():
            client.upload_blob(f"sha256:{ref_.sha256}", ref_.size, pack.payload_path(ref_))
        assert ref.tag is not None
        client.put_manifest(ref.tag, oci)
    return pack, oci


def memos(
    args: Sequence[str], env: dict[str, str], cwd: Path, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*MEMOS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"memos {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
