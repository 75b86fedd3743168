"""The one HTTP client for a MemStore registry: resolve, downloads, login, keys, publishing.

One ``httpx.Client`` per :class:`RegistryClient` (one session, one set of
headers, one injectable transport: unit tests pass ``httpx.MockTransport``,
integration tests a real server) and one error path: an unreachable registry
is ``network.unreachable``, an error answer becomes a
:class:`~runtime.errors.RegistryError` with the server's stable code, an
answer that is not JSON is ``registry.bad_response``. The endpoints are those
of ``memstore/API.md``; every JSON answer is parsed in :mod:`runtime._wire`.

Large packs are published through the resumable upload session
(``/api/v1/uploads/``), which resumes from the server's offset after a lost
chunk; small ones in one request.

Not here: verification, caching or installing (:mod:`runtime.install`),
resumable downloads into the cache (:mod:`runtime.download`), building or
signing packs (:mod:`protocol`), token storage (:mod:`runtime.config`).
"""

from __future__ import annotations

import base64
import functools
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from protocol import PackRef, PublicKey, Signature

from . import _body
from ._wire import (
    BlobUpload,
    NamespaceKey,
    PublishCheck,
    PublishResult,
    Resolution,
    TokenInfo,
    WhoAmI,
    parse_blob_upload,
    parse_blobs_missing,
    parse_error,
    parse_key,
    parse_keys,
    parse_publish_check,
    parse_publish_result,
    parse_resolution,
    parse_token,
    parse_upload_offset,
    parse_upload_session,
    parse_whoami,
)
from .cache import sha256_file
from .credentials import origin_of, token_origin
from .errors import RegistryError

__all__ = [
    "ONE_REQUEST_LIMIT",
    "BlobBody",
    "BlobUpload",
    "NamespaceKey",
    "PublishCheck",
    "PublishResult",
    "RegistryClient",
    "Resolution",
    "TokenInfo",
    "WhoAmI",
]

USER_AGENT = "memos/0.1"
ONE_REQUEST_LIMIT = 32 * 1024 * 1024  # larger packs go through an upload session

#: Called with (bytes sent, bytes total) as an upload advances.
Progress = Callable[[int, int], None]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (building one loads the CA bundle: ~20 ms,
    a third of a warm install's metadata round trip)."""
    return httpx.create_ssl_context()


class RegistryClient:
    """Talks to one registry. Use as a context manager or call :meth:`close`.

    ``timeout`` applies to reads, ``upload_timeout`` to publishing requests.
    Redirects are followed for reads (resolve, downloads), never for writes.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        upload_timeout: float = 120.0,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._injected = transport is not None
        self._read_timeout = timeout
        self._authorization: str | None = None
        headers = {"User-Agent": USER_AGENT}
        # A token goes only to the exact origin it was issued for (runtime.credentials).
        self._token_origin = token_origin(token, self.base_url) if token else None
        if token and self._token_origin == origin_of(self.base_url):
            headers["Authorization"] = self._authorization = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            transport=transport,
            verify=_tls_context(),
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=True,
        )
        self._upload_timeout = httpx.Timeout(upload_timeout, connect=10.0)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, *, upload: bool = False, **kwargs: Any) -> Any:
        """Send one request; return its decoded JSON (None when the answer is empty)."""
        if upload:
            kwargs["timeout"] = self._upload_timeout
        try:
            response = self._http.request(
                method, url, follow_redirects=method == "GET", **kwargs
            )
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"cannot reach the registry at {self.base_url}: {exc}", code="network.unreachable"
            ) from exc
        if response.status_code >= 400:
            raise parse_error(response.status_code, response.content)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise RegistryError(
                "the registry's answer is not JSON", code="registry.bad_response"
            ) from exc

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request on the client's one path (token rules, error codes, decoded JSON),
        for callers that own their endpoints (the trust index, the transparency log)."""
        return self._request(method, path, **kwargs)

    # ---------------------------------------------------------------- installing

    def resolve(self, ref: PackRef) -> Resolution:
        """``GET /api/v1/resolve/<ns>/<name>?spec=...`` -> a validated Resolution."""
        namespace, name = ref.name.split("/", 1)
        path = f"api/v1/resolve/{quote(namespace, safe='')}/{quote(name, safe='')}"
        params = {} if ref.spec.text == "*" else {"spec": ref.spec.text}
        return parse_resolution(self._request("GET", path, params=params))

    def absolute(self, url: str) -> str:
        return urljoin(self.base_url, url)

    @contextmanager
    def stream(
        self, url: str, *, offset: int = 0, end: int | None = None
    ) -> Iterator[httpx.Response]:
        """Open a download, asking for bytes from ``offset`` on (HTTP Range), up to ``end``
        (exclusive) when given.

        The caller checks ``response.status_code`` (206 honours the range,
        200 sends everything). Error statuses raise RegistryError. The
        ``Authorization`` header is sent only to the token's own origin
        (scheme, host and port).
        """
        target = self.absolute(url)
        last = "" if end is None else str(end - 1)
        # The digest is over the bytes as stored: no transfer compression, whatever a
        # server or proxy would like to apply (a compressed body would not hash right).
        headers = {"Accept-Encoding": "identity"}
        if offset or end is not None:
            headers["Range"] = f"bytes={offset}-{last}"
        request = self._http.build_request("GET", target, headers=headers)
        if origin_of(target) != self._token_origin:
            request.headers.pop("Authorization", None)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise RegistryError(f"download failed: {exc}", code="network.download_failed") from exc
        try:
            if response.status_code not in (200, 206, 416):
                response.read()
                raise parse_error(response.status_code, response.content)
            yield response
        finally:
            response.close()

    @contextmanager
    def open_blob_body(
        self, url: str, *, offset: int = 0, end: int | None = None
    ) -> Iterator[BlobBody]:
        """Like :meth:`stream`, for the bytes of a blob: yields a :class:`BlobBody`.

        Over a real network the body is received into one reused buffer
        (:mod:`runtime._body`, four times httpx's rate); with an injected
        transport or a proxy from the environment it goes through httpx.
        """
        target = self.absolute(url)
        if self._injected or not _body.usable_for(target):
            with self.stream(target, offset=offset, end=end) as response:
                yield BlobBody(response.status_code, response.headers, _httpx_chunks(response))
            return
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if offset or end is not None:
            headers["Range"] = f"bytes={offset}-{'' if end is None else end - 1}"
        with _body.open_body(
            target, headers=headers, authorization=self._authorization,
            token_origin=self._token_origin, tls=_tls_context(), timeout=self._read_timeout,
        ) as body:  # fmt: skip
            yield BlobBody(body.status_code, body.headers, body.chunks())

    # ---------------------------------------------------------------- tokens

    def create_token(
        self,
        *,
        username: str,
        password: str,
        name: str = "memos",
        scopes: tuple[str, ...] = ("read", "publish:*"),
    ) -> TokenInfo:
        body = {"username": username, "password": password, "name": name, "scopes": list(scopes)}
        return parse_token(self._request("POST", "api/v1/auth/tokens", json=body))

    def whoami(self) -> WhoAmI:
        return parse_whoami(self._request("GET", "api/v1/auth/whoami"))

    # ---------------------------------------------------------------- signing keys

    @staticmethod
    def _keys_url(namespace: str) -> str:
        return f"api/v1/namespaces/{quote(namespace, safe='')}/keys"

    def list_keys(self, namespace: str) -> tuple[NamespaceKey, ...]:
        """Every key of the namespace, revoked ones included (with their revocation date)."""
        return parse_keys(self._request("GET", self._keys_url(namespace)))

    def register_key(
        self, namespace: str, public_key: PublicKey, *, label: str = ""
    ) -> NamespaceKey:
        """Register ``public_key`` for ``namespace`` (registering it again returns the same key)."""
        body = {"public_key": public_key.to_text(), "label": label}
        key = parse_key(self._request("POST", self._keys_url(namespace), json=body))
        if key.keyid != public_key.keyid:
            raise RegistryError(
                f"the registry answered with key {key.keyid}, not {public_key.keyid}",
                code="registry.bad_response",
            )
        return key

    def revoke_key(self, namespace: str, keyid: str, *, reason: str = "") -> NamespaceKey:
        """Revoke a key: packs signed only by it are refused from now on. It stays listed."""
        url = f"{self._keys_url(namespace)}/{quote(keyid, safe='')}/revoke"
        return parse_key(self._request("POST", url, json={"reason": reason}))

    # ---------------------------------------------------------------- publishing

    def publish(
        self,
        path: Path,
        *,
        private: bool = False,
        price_amount_minor: int = 0,
        price_currency: str = "",
        chunk_size: int = 8 * 1024 * 1024,
        one_request_limit: int = ONE_REQUEST_LIMIT,
        progress: Progress | None = None,
    ) -> PublishResult:
        """Upload ``path``: in one request when small, else through a resumable session."""
        path = Path(path)
        size = path.stat().st_size
        options = {
            "private": private,
            "price_amount_minor": price_amount_minor,
            "price_currency": price_currency,
        }
        if size > one_request_limit:
            return self._publish_session(path, size, options, chunk_size, progress)
        form = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items()}
        with open(path, "rb") as fh:
            data = self._request(
                "POST",
                "api/v1/packs/upload",
                upload=True,
                files={"file": (path.name, fh, "application/octet-stream")},
                data=form,
            )
        if progress is not None:
            progress(size, size)
        return parse_publish_result(data)

    def _publish_session(
        self,
        path: Path,
        size: int,
        options: dict[str, Any],
        chunk_size: int,
        progress: Progress | None,
    ) -> PublishResult:
        body = {"size": size, "sha256": sha256_file(path)[0]}
        session = parse_upload_session(
            self._request("POST", "api/v1/uploads/", upload=True, json=body)
        )
        chunk_size = min(chunk_size, session.max_chunk_bytes or chunk_size)
        url = f"api/v1/uploads/{session.id}"
        offset = session.offset
        retries = 0
        with open(path, "rb") as fh:
            while offset < size:
                fh.seek(offset)
                chunk = fh.read(chunk_size)
                headers = {"Upload-Offset": str(offset), "Content-Type": "application/octet-stream"}
                try:
                    state = self._request(
                        "PATCH", url, upload=True, content=chunk, headers=headers
                    )
                    offset = parse_upload_offset(state)
                    retries = 0
                except RegistryError as exc:
                    retries += 1
                    if retries > 5 or exc.code not in (
                        "registry.upload_offset_mismatch",
                        "network.unreachable",
                    ):
                        raise
                    offset = parse_upload_offset(self._request("GET", url))
                if progress is not None:
                    progress(offset, size)
        data = self._request("POST", f"{url}/complete", upload=True, json=options)
        return parse_publish_result(data)

    # ---------------------------------------------------------------- publishing blob by blob
    # (MIP 2: ask which blobs are missing, one resumable upload per blob, then the manifest;
    # the loop that drives them is runtime.blob_publish)

    def blobs_missing(self, digests: Sequence[str]) -> tuple[str, ...]:
        """``POST /api/v1/blobs/missing``: the asked digests this publisher still has to upload."""
        body = {"digests": list(digests)}
        data = self._request("POST", "api/v1/blobs/missing", upload=True, json=body)
        return parse_blobs_missing(data, digests)

    def blob_upload_open(self, sha256: str, size: int) -> BlobUpload:
        """Open (or find again, at its offset) the upload of one blob; ``completed`` if present."""
        body = {"sha256": sha256, "size": size}
        data = self._request("POST", "api/v1/blobs/uploads", upload=True, json=body)
        return parse_blob_upload(data)

    def blob_upload_get(self, upload_id: str) -> BlobUpload:
        return parse_blob_upload(self._request("GET", _blob_upload_url(upload_id)))

    def blob_upload_append(self, upload_id: str, offset: int, data: bytes) -> BlobUpload:
        """``PATCH`` one chunk at ``offset``; the chunk that reaches the size completes it."""
        headers = {"Upload-Offset": str(offset), "Content-Type": "application/octet-stream"}
        url = _blob_upload_url(upload_id)
        answer = self._request("PATCH", url, upload=True, content=data, headers=headers)
        return parse_blob_upload(answer)

    def blob_upload_complete(self, upload_id: str) -> BlobUpload:
        url = f"{_blob_upload_url(upload_id)}/complete"
        return parse_blob_upload(self._request("POST", url, upload=True))

    def blob_upload_cancel(self, upload_id: str) -> None:
        self._request("DELETE", _blob_upload_url(upload_id), upload=True)

    def publish_manifest(
        self,
        manifest_bytes: bytes,
        signatures: Sequence[Signature],
        *,
        private: bool = False,
        price_amount_minor: int = 0,
        price_currency: str = "",
    ) -> PublishResult:
        """``POST /api/v1/packs/publish-manifest``: publish once every blob is on the registry."""
        body = {
            "manifest_b64": base64.b64encode(manifest_bytes).decode("ascii"),
            "signatures": [s.to_dict() for s in signatures],
            "private": private,
            "price_amount_minor": price_amount_minor,
            "price_currency": price_currency,
        }
        data = self._request("POST", "api/v1/packs/publish-manifest", upload=True, json=body)
        return parse_publish_result(data)

    def check_manifest(
        self, manifest_bytes: bytes, signatures: Sequence[Signature]
    ) -> PublishCheck:
        """``POST /api/v1/packs/check-manifest``: a publish's checks and scan, nothing published."""
        body = {
            "manifest_b64": base64.b64encode(manifest_bytes).decode("ascii"),
            "signatures": [s.to_dict() for s in signatures],
        }
        data = self._request("POST", "api/v1/packs/check-manifest", upload=True, json=body)
        return parse_publish_check(data)


@dataclass(frozen=True)
class BlobBody:
    """An open blob download: status (200, 206 or 416), headers, and the body's blocks.

    A block may be a view of a reused buffer: it is valid until the next is asked for.
    """

    status_code: int
    headers: Mapping[str, str]
    chunks: Iterator[bytes] | Iterator[memoryview]


def _httpx_chunks(response: httpx.Response) -> Iterator[bytes]:
    try:  # as received: re-chunking to a fixed size would copy every byte once more
        yield from response.iter_bytes()
    except httpx.TransportError as exc:
        raise RegistryError(
            f"download interrupted: {exc}", code="network.download_interrupted"
        ) from exc


def _blob_upload_url(upload_id: str) -> str:
    return f"api/v1/blobs/uploads/{quote(upload_id, safe='')}"
