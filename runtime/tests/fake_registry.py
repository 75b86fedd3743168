"""A small real HTTP registry for tests and benchmarks: resolve + blob download with Range.

It speaks the resolve contract of ``memstore/API.md`` (the same JSON shape)
over a real socket on 127.0.0.1, serves pack files with HTTP Range support,
and can throttle downloads (so a test can kill a client mid-download) or
serve tampered bytes. With ``blob_urls`` it also serves every payload blob by
digest (``GET /api/v1/blobs/sha256/<hex>``, Range, ``ETag``) and lists them in
resolve's ``blobs``, as a MIP 2 registry does; ``blob_bytes`` counts the bytes
it sent per digest, ``tamper_blobs`` names digests served with altered bytes.
Used where the Django registry's live-server fixture is not available to
runtime tests (runtime must work without Django).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from protocol import PublicKey, Version, VersionRange, manifest_blobs, read_pack

_COUNT_LOCK = threading.Lock()

#: A response body: blobs are served as views of the stored bytes (no copy per range).
Body = bytes | memoryview


@dataclass
class Published:
    name: str
    version: str
    path: Path
    sha256: str
    size: int
    manifest_bytes: bytes
    signatures: list[dict[str, str]]
    blobs: list[dict[str, Any]] = field(default_factory=list)  # sha256, size, media_type
    yanked: bool = False


@dataclass
class FakeRegistry:
    keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # namespace -> key dicts
    packs: dict[str, list[Published]] = field(default_factory=dict)
    throttle_bytes_per_s: float | None = None
    chunk: int = 16 * 1024
    tamper: bool = False
    honour_range: bool = True
    require_token: str | None = None
    blob_urls: bool = False
    tamper_blobs: set[str] = field(default_factory=set)
    blob_store: dict[str, bytes] = field(default_factory=dict)
    blob_bytes: dict[str, int] = field(default_factory=dict)  # digest -> bytes sent
    # a lying registry: pack name -> the published version it answers every resolve with
    answers: dict[str, Published] = field(default_factory=dict)
    # (method, path, range) of every request
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    # ---- setup

    def add_key(self, namespace: str, key: PublicKey, *, revoked: bool = False) -> None:
        self.keys.setdefault(namespace, []).append(
            {
                "keyid": key.keyid,
                "public_key": key.to_text(),
                "label": "test",
                "created_at": "2026-01-01T00:00:00Z",
                "revoked_at": "2026-01-02T00:00:00Z" if revoked else None,
                "revocation_reason": "compromised" if revoked else "",
            }
        )

    def publish(self, path: Path) -> Published:
        staging = Path(tempfile.mkdtemp(prefix="fake-registry-")) / "pack"
        try:
            pack = read_pack(path, target=staging)
            for cube in pack.manifest.cubes:
                for ref in cube.payloads:
                    self.blob_store[ref.sha256] = pack.payload_path(ref).read_bytes()
        finally:
            shutil.rmtree(staging.parent, ignore_errors=True)
        data = path.read_bytes()
        pub = Published(
            name=pack.manifest.name,
            version=pack.manifest.version,
            path=path,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            manifest_bytes=pack.manifest_bytes,
            signatures=[s.to_dict() for s in pack.signatures],
            blobs=[
                {"sha256": b.sha256, "size": b.size, "media_type": b.media_type}
                for b in manifest_blobs(pack.manifest)
            ],
        )
        self.packs.setdefault(pub.name, []).append(pub)
        return pub

    # ---- server

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeRegistry:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle on, the body waits for
            # the client's delayed ACK of the headers (~40 ms a request on Linux).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                registry.requests.append(("GET", self.path, self.headers.get("Range")))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    registry._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---- handlers (shared by the HTTP server and the httpx MockTransport)

    def as_transport(self) -> Any:
        """The same registry as an ``httpx.MockTransport`` (unit tests: no socket)."""
        import httpx

        def handler(request: httpx.Request) -> httpx.Response:
            path = request.url.raw_path.decode()
            self.requests.append(("GET", path, request.headers.get("Range")))
            status, headers, body = self.respond(path, dict(request.headers))
            return httpx.Response(status, headers=headers, content=bytes(body))

        return httpx.MockTransport(handler)

    @staticmethod
    def _json(status: int, body: Any) -> tuple[int, dict[str, str], Body]:
        return status, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _error(self, status: int, code: str, message: str) -> tuple[int, dict[str, str], Body]:
        return self._json(status, {"error": {"code": code, "message": message, "detail": {}}})

    def respond(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Body]:
        url = urlparse(path)
        lower = {k.lower(): v for k, v in headers.items()}
        if url.path == "/_test/blob-bytes":  # for a client in another process (benchmarks)
            with self._count_lock:
                return self._json(200, dict(self.blob_bytes))
        if self.require_token and lower.get("authorization") != f"Bearer {self.require_token}":
            return self._error(401, "registry.not_authenticated", "a token is required")
        m = re.match(r"^/api/v1/resolve/([^/]+)/([^/]+)$", url.path)
        if m:
            spec = parse_qs(url.query).get("spec", ["*"])[0]
            return self._resolve(f"{m.group(1)}/{m.group(2)}", spec)
        m = re.match(r"^/api/v1/blobs/sha256/([0-9a-f]{64})$", url.path)
        if m and self.blob_urls:
            return self._content_blob(m.group(1), lower.get("range"))
        m = re.match(r"^/api/v1/blobs/([0-9a-f]{64})$", url.path)
        if m:
            return self._blob(m.group(1), lower.get("range"))
        return self._error(404, "registry.not_found", "no such endpoint")

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        status, headers, body = self.respond(h.path, dict(h.headers.items()))
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        pos = 0
        began = time.monotonic()
        view = memoryview(body)  # slices without copying (a 1 GB pack is served in pieces)
        while pos < len(body):
            piece = view[pos : pos + self.chunk]
            h.wfile.write(piece)
            pos += len(piece)
            is_blob = status in (200, 206) and "json" not in headers.get("Content-Type", "")
            if self.throttle_bytes_per_s and is_blob:
                ahead = pos / self.throttle_bytes_per_s - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)

    def _resolve(self, name: str, spec: str) -> tuple[int, dict[str, str], Body]:
        pub = self.answers.get(name) or self._best(name, spec)
        if isinstance(pub, tuple):  # an error answer
            return pub
        return self._json(
            200,
            {
                "name": pub.name,
                "version": pub.version,
                "spec": spec,
                "published_at": "2026-01-01T00:00:00Z",
                "yanked": pub.yanked,
                "yanked_reason": "",
                "deprecated": False,
                "deprecation_message": "",
                "private": False,
                "price": {"amount_minor": 0, "currency": ""},
                "manifest": json.loads(pub.manifest_bytes),
                "manifest_b64": base64.b64encode(pub.manifest_bytes).decode(),
                "manifest_sha256": hashlib.sha256(pub.manifest_bytes).hexdigest(),
                "signatures": pub.signatures,
                "keys": self.keys.get(name.split("/")[0], []),
                "pack": {
                    "sha256": pub.sha256,
                    "size": pub.size,
                    "url": f"/api/v1/blobs/{pub.sha256}?exp=0&sig=x",
                    "url_expires_at": "2099-01-01T00:00:00Z",
                },
                "payloads": [],
                **({"blobs": self._blob_list(pub)} if self.blob_urls else {}),
                "ingest": {"status": "done", "memories": 0},
            },
        )

    def _best(self, name: str, spec: str) -> Published | tuple[int, dict[str, str], Body]:
        """The version an honest registry answers ``name@spec`` with (or its error)."""
        versions = self.packs.get(name)
        if not versions:
            return self._error(404, "registry.not_found", f"no pack {name}")
        rng = VersionRange.parse(spec)
        candidates = {Version.parse(p.version): p for p in versions if not p.yanked or rng.is_exact}
        best = rng.best(candidates)
        if best is None:
            message = f"no version of {name} matches {spec}"
            return self._error(404, "registry.no_matching_version", message)
        return candidates[best]

    @staticmethod
    def _blob_list(pub: Published) -> list[dict[str, Any]]:
        return [{**b, "url": f"/api/v1/blobs/sha256/{b['sha256']}"} for b in pub.blobs]

    def _content_blob(self, sha: str, rng: str | None) -> tuple[int, dict[str, str], Body]:
        data = self.blob_store.get(sha)
        if data is None:
            return self._error(404, "registry.not_found", "no such blob")
        if sha in self.tamper_blobs:
            data = bytes(b ^ 0xFF for b in data[:8]) + data[8:]
        status, headers, body = self._ranged(data, rng, etag=f'"{sha}"')
        with self._count_lock:
            self.blob_bytes[sha] = self.blob_bytes.get(sha, 0) + len(body)
        return status, headers, body

    @property
    def _count_lock(self) -> threading.Lock:
        return _COUNT_LOCK

    def _blob(self, sha: str, rng: str | None) -> tuple[int, dict[str, str], Body]:
        pub = next((p for ps in self.packs.values() for p in ps if p.sha256 == sha), None)
        if pub is None:
            return self._error(404, "registry.not_found", "no such blob")
        data = pub.path.read_bytes()
        if self.tamper:
            data = data[:-100] + bytes(b ^ 0xFF for b in data[-100:])
        return self._ranged(data, rng)

    def _ranged(
        self, data: bytes, rng: str | None, *, etag: str | None = None
    ) -> tuple[int, dict[str, str], Body]:
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        if etag:
            headers["ETag"] = etag
        m = re.match(r"^bytes=(\d+)-(\d*)$", rng or "")
        if m and self.honour_range:
            start = int(m.group(1))
            last = min(int(m.group(2)), len(data) - 1) if m.group(2) else len(data) - 1
            if start >= len(data) or last < start:
                return 416, {"Content-Range": f"bytes */{len(data)}"}, b""
            headers["Content-Range"] = f"bytes {start}-{last}/{len(data)}"
            return 206, headers, memoryview(data)[start : last + 1]
        return 200, headers, data
