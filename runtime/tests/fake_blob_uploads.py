"""The blob-upload side of :class:`~runtime.tests.fake_registry.FakeRegistry` (MIP 2 publish).

:class:`BlobUploadRegistry` adds the endpoints ``memos publish`` calls on a MIP 2
registry (``memstore/API.md``, *Publish only what is missing*), with the same
JSON shapes and error codes: ``POST /api/v1/blobs/missing``, ``POST
/api/v1/blobs/uploads``, ``GET|PATCH|DELETE /api/v1/blobs/uploads/<id>``,
``POST .../<id>/complete`` and ``POST /api/v1/packs/publish-manifest`` (which
checks that every blob is present and the signatures are there, not trust).
Everything else is the FakeRegistry's. It records the bytes each ``PATCH``
carried and can fail on purpose: ``fail_patches`` (the PATCH numbers, from 1,
whose connection breaks before the registry sees them), ``lost_answers`` (the
PATCH numbers applied by the registry whose answer is lost), ``blob_endpoints``
(False: an older registry answering 404; it then takes ``POST /api/v1/packs/upload``,
recorded in ``whole_uploads``).

Served over the httpx ``MockTransport`` of :meth:`as_transport` (unit tests) or
the real socket of :meth:`start` (the CLI in a subprocess).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from protocol import Manifest, manifest_blobs

from .fake_registry import FakeRegistry

__all__ = ["BlobUploadRegistry", "PublishedManifest"]

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class _Upload:
    id: str
    sha256: str
    size: int
    data: bytearray = field(default_factory=bytearray)
    status: str = "open"

    def to_dict(self, max_chunk: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha256": self.sha256,
            "size": self.size,
            "offset": len(self.data),
            "status": self.status,
            "expires_at": "2099-01-01T00:00:00Z",
            "max_chunk_bytes": max_chunk,
            "url": f"/api/v1/blobs/uploads/{self.id}",
        }


@dataclass(frozen=True)
class PublishedManifest:
    manifest: Manifest
    manifest_bytes: bytes
    signatures: list[dict[str, str]]
    private: bool


@dataclass
class BlobUploadRegistry(FakeRegistry):
    blob_endpoints: bool = True
    max_chunk_bytes: int = 8 * 1024 * 1024
    fail_patches: set[int] = field(default_factory=set)
    lost_answers: set[int] = field(default_factory=set)
    stored: dict[str, bytes] = field(default_factory=dict)  # blobs present for the publisher
    uploads: dict[str, _Upload] = field(default_factory=dict)
    manifests: list[PublishedManifest] = field(default_factory=list)
    patch_bytes: list[int] = field(default_factory=list)  # the body size of every PATCH seen
    whole_uploads: list[bytes] = field(default_factory=list)  # POST /api/v1/packs/upload bodies
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def bytes_received(self) -> int:
        return sum(self.patch_bytes)

    # ---- transports

    def as_transport(self) -> Any:
        def handler(request: httpx.Request) -> httpx.Response:
            path = request.url.raw_path.decode()
            self.requests.append((request.method, path, request.headers.get("Range")))
            answer = self.dispatch(request.method, path, dict(request.headers), request.read())
            return httpx.Response(answer[0], headers=answer[1], content=answer[2])

        return httpx.MockTransport(handler)

    def start(self) -> BlobUploadRegistry:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle on, the body waits for
            # the client's delayed ACK of the headers (~40 ms a request on Linux).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                registry.requests.append((self.command, self.path, self.headers.get("Range")))
                try:
                    status, headers, data = registry.dispatch(
                        self.command, self.path, dict(self.headers.items()), body
                    )
                except httpx.TransportError:
                    self.close_connection = True  # the fault: no answer at all
                    return
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    # ---- routing

    def dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        lower = {k.lower(): v for k, v in headers.items()}
        route = path.split("?", 1)[0]
        if (method, route) == ("POST", "/api/v1/packs/upload"):  # the whole-pack upload
            self.whole_uploads.append(body)
            return self._json(201, {"name": "acme/whole", "version": "1.0.0", "size": len(body),
                                    "sha256": "0" * 64, "signed_by": [], "ingest": {}})  # fmt: skip
        mine = route in ("/api/v1/blobs/missing", "/api/v1/packs/publish-manifest") or (
            route.startswith("/api/v1/blobs/uploads")
        )
        if not mine:
            if method != "GET":
                return self._error(405, "http.405", "method not allowed")
            return self.respond(path, headers)
        if not self.blob_endpoints:
            return self._error(404, "registry.not_found", "no such endpoint")
        if self.require_token and lower.get("authorization") != f"Bearer {self.require_token}":
            return self._error(401, "registry.not_authenticated", "a token is required")
        with self._lock:
            return self._route(method, route, lower, body)

    def _route(self, method: str, route: str, headers: dict[str, str], body: bytes) -> Answer:
        if (method, route) == ("POST", "/api/v1/blobs/missing"):
            digests = json.loads(body)["digests"]
            return self._json(200, {"missing": [d for d in digests if d not in self.stored]})
        if (method, route) == ("POST", "/api/v1/blobs/uploads"):
            return self._open(json.loads(body))
        if (method, route) == ("POST", "/api/v1/packs/publish-manifest"):
            return self._publish(json.loads(body))
        m = re.match(r"^/api/v1/blobs/uploads/([^/]+)(/complete)?$", route)
        upload = self.uploads.get(m.group(1)) if m else None
        if upload is None:
            return self._error(404, "upload.not_found", "no such upload of yours")
        if method == "POST" and m and m.group(2):
            return self._complete(upload)
        if method == "GET":
            return self._state(upload)
        if method == "DELETE":
            upload.status = "cancelled"
            return 204, {}, b""
        if method == "PATCH":
            return self._append(upload, int(headers.get("upload-offset", "-1")), body)
        return self._error(405, "http.405", "method not allowed")

    # ---- the endpoints

    def _state(self, upload: _Upload, status: int = 200) -> Answer:
        return self._json(status, upload.to_dict(self.max_chunk_bytes))

    def _open(self, data: dict[str, Any]) -> Answer:
        sha, size = data["sha256"], data["size"]
        if sha in self.stored:
            done = _Upload(uuid.uuid4().hex, sha, size, bytearray(self.stored[sha]), "completed")
            self.uploads[done.id] = done
            return self._state(done)
        for upload in self.uploads.values():
            if (upload.sha256, upload.size, upload.status) == (sha, size, "open"):
                return self._state(upload)
        upload = _Upload(uuid.uuid4().hex, sha, size)
        self.uploads[upload.id] = upload
        return self._state(upload, 201)

    def _append(self, upload: _Upload, offset: int, body: bytes) -> Answer:
        self.patch_bytes.append(len(body))
        number = len(self.patch_bytes)
        if number in self.fail_patches:
            raise httpx.ConnectError("the connection broke (injected)")
        if upload.status != "open":
            return self._fail(409, "upload.closed", "the upload is closed", status=upload.status)
        if offset != len(upload.data):
            return self._fail(409, "upload.offset_mismatch", "resume", offset=len(upload.data))
        if len(body) > self.max_chunk_bytes:
            return self._fail(413, "upload.chunk_too_large", "chunk", limit=self.max_chunk_bytes)
        if offset + len(body) > upload.size:
            return self._fail(400, "upload.too_long", "past the size")
        upload.data += body
        answer = self._finish(upload) if len(upload.data) == upload.size else self._state(upload)
        if number in self.lost_answers:
            raise httpx.ReadError("the answer was lost (injected)")
        return answer

    def _complete(self, upload: _Upload) -> Answer:
        if upload.status == "completed":
            return self._state(upload)
        if len(upload.data) != upload.size:
            return self._fail(400, "upload.incomplete", "not all there", offset=len(upload.data))
        return self._finish(upload)

    def _finish(self, upload: _Upload) -> Answer:
        actual = hashlib.sha256(upload.data).hexdigest()
        if actual != upload.sha256:
            upload.status = "failed"
            return self._fail(400, "blob.digest_mismatch", "digest", expected=upload.sha256)
        upload.status = "completed"
        self.stored[upload.sha256] = bytes(upload.data)
        return self._state(upload)

    def _publish(self, data: dict[str, Any]) -> Answer:
        manifest_bytes = base64.b64decode(data["manifest_b64"], validate=True)
        manifest = Manifest.from_bytes(manifest_bytes)
        if not data["signatures"]:
            return self._fail(400, "signature.missing", "unsigned")
        missing = sorted(b.sha256 for b in manifest_blobs(manifest) if b.sha256 not in self.stored)
        if missing:
            return self._fail(409, "blob.missing", "blobs missing", missing=missing)
        if any(m.manifest.ref == manifest.ref for m in self.manifests):
            return self._fail(409, "registry.version_exists", "exists")
        self.manifests.append(
            PublishedManifest(manifest, manifest_bytes, data["signatures"], data["private"])
        )
        return self._json(
            201,
            {
                "name": manifest.name,
                "version": manifest.version,
                "sha256": "",
                "size": 0,
                "signed_by": [s["keyid"] for s in data["signatures"]],
                "ingest": {"status": "pending", "memories": 0},
                "url": f"/api/v1/packs/{manifest.name}/versions/{manifest.version}",
            },
        )

    def _fail(self, http: int, code: str, message: str, **detail: Any) -> Answer:
        return self._json(http, {"error": {"code": code, "message": message, "detail": detail}})
