"""A small OCI distribution client on httpx: blobs by digest, manifests by tag or digest.

The subset of the OCI distribution API a MIP client needs, for one repository:

* ``HEAD /v2/<repo>/blobs/<digest>`` -- :meth:`OCIClient.has_blob` (push skips blobs the
  registry has);
* ``POST /v2/<repo>/blobs/uploads/`` then ``PUT <location>?digest=`` with the bytes (monolithic)
  or ``PATCH`` chunks with ``Content-Range`` first (chunked, for blobs over ``monolithic_max``) --
  :meth:`OCIClient.upload_blob`;
* ``PUT|GET /v2/<repo>/manifests/<ref>`` with the OCI image manifest media type -- the digest of
  what was sent or received is checked against the one the registry announces
  (``Docker-Content-Digest``) and, for a digest reference, the one asked for;
* ``GET /v2/<repo>/blobs/<digest>`` -- :meth:`OCIClient.open_blob` streams the bytes while hashing
  them, never past the declared size, and raises at the end if the digest differs (the consumer
  commits nothing before the iterator is exhausted); :meth:`OCIClient.open_blob_at` resumes with
  HTTP Range. Redirects (registries that hand blobs to a CDN or S3) are followed.

Credentials are an ``httpx.Auth`` passed in; :meth:`OCIClient.for_reference` defaults to
:class:`~runtime.oci.auth.TokenAuth` (the Bearer-token challenge hosted registries use, anonymous
unless given a username and password); loopback test registries send no challenge. Every failure
is an :class:`~runtime.oci.errors.OCIError` with a stable ``oci.*`` code.

Not here: what a pack's manifest looks like (:mod:`.mapping`), pushing or installing a pack.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ..pack_blobs import BlobFile
from .auth import TokenAuth
from .errors import OCIError
from .mapping import OCI_MANIFEST_MEDIA_TYPE
from .reference import OCIReference

__all__ = ["OCIClient"]

_CHUNK = 256 * 1024
_ERROR_BODY = 64 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def _registry_errors(body: bytes) -> list[str]:
    try:
        doc = json.loads(body)
        return [str(e.get("code")) for e in doc.get("errors", []) if isinstance(e, dict)]
    except (ValueError, AttributeError, TypeError):
        return []


def _refusal(response: httpx.Response, what: str, body: bytes = b"") -> OCIError:
    status = response.status_code
    codes = _registry_errors(body)
    code = {401: "oci.unauthorized", 403: "oci.forbidden"}.get(status, "oci.http")
    said = f" ({', '.join(codes)})" if codes else ""
    return OCIError(f"{what}: the registry answered HTTP {status}{said}", code=code,
                    status=status, registry_errors=codes)  # fmt: skip


def _network(exc: httpx.TransportError, what: str) -> OCIError:
    return OCIError(f"{what}: {exc}", code="oci.network")


def _error_body(response: httpx.Response) -> bytes:
    body = b""
    for chunk in response.iter_bytes(_CHUNK):
        body += chunk
        if len(body) >= _ERROR_BODY:
            break
    return body[:_ERROR_BODY]


def verified_chunks(chunks: Iterator[bytes], digest: str, size: int) -> Iterator[bytes]:
    """Yield ``chunks`` while hashing them: never a byte past ``size``; raise at the end
    (``oci.blob_size_mismatch``, ``oci.blob_digest_mismatch``) if they are not the blob."""
    h = hashlib.sha256()
    done = 0
    for chunk in chunks:
        if done + len(chunk) > size:
            raise OCIError(f"blob {digest} is longer than its declared {size} bytes: refused",
                           code="oci.blob_size_mismatch", digest=digest)  # fmt: skip
        done += len(chunk)
        h.update(chunk)
        yield chunk
    if done != size:
        raise OCIError(f"blob {digest} ended after {done} of its {size} bytes: refused",
                       code="oci.blob_size_mismatch", digest=digest)  # fmt: skip
    if "sha256:" + h.hexdigest() != digest:
        raise OCIError(f"blob {digest} does not match its digest: refused",
                       code="oci.blob_digest_mismatch", digest=digest)  # fmt: skip


class OCIClient:
    """Talks to one repository of an OCI distribution registry."""

    def __init__(
        self,
        base_url: str,
        repository: str,
        *,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
        timeout: float = 60.0,
        chunk_size: int = 16 * 1024**2,
        monolithic_max: int = 64 * 1024**2,
    ) -> None:
        self.repository = repository
        self.chunk_size = chunk_size
        self.monolithic_max = monolithic_max
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), transport=transport, auth=auth,
            timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True,
            headers={"User-Agent": "memos-oci"},
        )  # fmt: skip

    @classmethod
    def for_reference(
        cls,
        reference: OCIReference,
        *,
        plain_http: bool | None = None,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> OCIClient:
        """A client for ``reference``'s repository (plain HTTP for loopback hosts); without
        ``auth``, anonymous tokens are fetched when the registry asks (:class:`TokenAuth`)."""
        return cls(reference.base_url(plain_http=plain_http), reference.repository,
                   transport=transport, auth=auth or TokenAuth())  # fmt: skip

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OCIClient:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _path(self, kind: str, ref: str) -> str:
        return f"/v2/{self.repository}/{kind}/{ref}"

    def _send(self, method: str, url: str | httpx.URL, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise _network(exc, what) from exc
        except httpx.StreamError as exc:  # a streamed body asked for twice (a token renewed)
            raise OCIError(f"{what}: {exc}; push again (blobs already sent are kept)",
                           code="oci.upload_failed") from exc  # fmt: skip
        return response

    # ------------------------------------------------------------------ blobs

    def has_blob(self, digest: str) -> bool:
        """Whether the repository already has blob ``digest`` (``HEAD``)."""
        what = f"checking for blob {digest}"
        response = self._send("HEAD", self._path("blobs", digest), what)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise _refusal(response, what)

    def upload_blob(self, digest: str, size: int, source: Path | bytes | BlobFile) -> None:
        """Upload blob ``digest`` from a file, a range of one, or bytes: one ``PUT``, or
        ``PATCH`` chunks first."""
        if isinstance(source, Path):
            source = BlobFile(source, 0, size)
        what = f"uploading blob {digest}"
        started = self._send("POST", f"/v2/{self.repository}/blobs/uploads/", what)
        if started.status_code != 202:
            raise _refusal(started, what, started.content[:_ERROR_BODY])
        location = self._location(started, what)
        if size > self.monolithic_max:
            for offset in range(0, size, self.chunk_size):
                length = min(self.chunk_size, size - offset)
                body = (source[offset : offset + length] if isinstance(source, bytes)
                        else b"".join(source.chunks(offset, length)))  # fmt: skip
                sent = self._send(
                    "PATCH", location, what, content=body,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Range": f"{offset}-{offset + length - 1}",
                             "Content-Length": str(length)},
                )  # fmt: skip
                if sent.status_code != 202:
                    raise _refusal(sent, what, sent.content[:_ERROR_BODY])
                location = self._location(sent, what)
            content: bytes | Iterator[bytes] = b""
            length_header = "0"
        else:
            content = source if isinstance(source, bytes) else source.chunks()
            length_header = str(size)
        done = self._send(
            "PUT", location.copy_merge_params({"digest": digest}), what, content=content,
            headers={"Content-Type": "application/octet-stream", "Content-Length": length_header},
        )  # fmt: skip
        if done.status_code not in (201, 204):
            raise _refusal(done, what, done.content[:_ERROR_BODY])
        announced = done.headers.get("docker-content-digest")
        if announced is not None and announced != digest:
            raise OCIError(f"{what}: the registry stored {announced} instead",
                           code="oci.upload_failed")  # fmt: skip

    @staticmethod
    def _location(response: httpx.Response, what: str) -> httpx.URL:
        location = response.headers.get("location")
        if not location:
            raise OCIError(
                f"{what}: the registry gave no upload location", code="oci.upload_failed"
            )
        return response.url.join(location)

    def read_blob(self, digest: str, size: int) -> bytes:
        """A small blob (config, signature) in memory, verified."""
        with self.open_blob(digest, size) as chunks:
            return b"".join(chunks)

    @contextmanager
    def open_blob(self, digest: str, size: int) -> Iterator[Iterator[bytes]]:
        """Stream blob ``digest`` of ``size`` bytes, verified (see :func:`verified_chunks`)."""
        with self.open_blob_at(digest, 0) as (_start, chunks):
            yield verified_chunks(chunks, digest, size)

    @contextmanager
    def open_blob_at(self, digest: str, offset: int) -> Iterator[tuple[int, Iterator[bytes]]]:
        """Stream blob ``digest`` from ``offset`` (HTTP Range): yields ``(start, chunks)``, where
        ``start`` is ``offset`` when the registry honoured the range and 0 when it restarted.
        The caller checks size and digest (the runtime's cache fetch does)."""
        what = f"fetching blob {digest}"
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        request = self._http.build_request("GET", self._path("blobs", digest), headers=headers)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _network(exc, what) from exc
        try:
            if response.status_code == 404:
                raise OCIError(f"the registry has no blob {digest}", code="oci.blob_missing",
                               status=404, digest=digest)  # fmt: skip
            if response.status_code == 416:
                yield offset, iter(())
                return
            if response.status_code not in (200, 206):
                raise _refusal(response, what, _error_body(response))
            start = 0
            if response.status_code == 206:
                match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
                if not match or int(match.group(1)) != offset:
                    raise OCIError(f"{what}: the registry answered another byte range",
                                   code="oci.network")  # fmt: skip
                start = offset
            yield start, self._chunks(response, what)
        finally:
            response.close()

    @staticmethod
    def _chunks(response: httpx.Response, what: str) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(_CHUNK)
        except httpx.TransportError as exc:
            raise _network(exc, what) from exc

    # ------------------------------------------------------------------ manifests

    def put_manifest(self, ref: str, data: bytes) -> str:
        """Store OCI manifest ``data`` under tag (or digest) ``ref``; return its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        what = f"pushing manifest {self.repository}:{ref}"
        response = self._send(
            "PUT", self._path("manifests", ref), what, content=data,
            headers={"Content-Type": OCI_MANIFEST_MEDIA_TYPE},
        )  # fmt: skip
        if response.status_code not in (200, 201):
            raise _refusal(response, what, response.content[:_ERROR_BODY])
        announced = response.headers.get("docker-content-digest")
        if announced is not None and announced != digest:
            raise OCIError(f"{what}: the registry stored {announced}, not {digest}",
                           code="oci.manifest_digest_mismatch")  # fmt: skip
        return digest

    def get_manifest(self, ref: str, *, limit: int) -> tuple[bytes, str]:
        """The OCI manifest bytes under ``ref`` (at most ``limit`` bytes) and their digest."""
        what = f"fetching manifest {self.repository}:{ref}"
        request = self._http.build_request(
            "GET", self._path("manifests", ref), headers={"Accept": OCI_MANIFEST_MEDIA_TYPE}
        )
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _network(exc, what) from exc
        try:
            if response.status_code == 404:
                raise OCIError(f"{self.repository} has no manifest {ref}", code="oci.not_found",
                               status=404)  # fmt: skip
            if response.status_code != 200:
                raise _refusal(response, what, _error_body(response))
            media_type = response.headers.get("content-type", "").split(";")[0].strip()
            if media_type and media_type != OCI_MANIFEST_MEDIA_TYPE:
                raise OCIError(f"{what}: it is a {media_type!r}, not an OCI image manifest",
                               code="oci.not_a_pack")  # fmt: skip
            data = b""
            for chunk in self._chunks(response, what):
                data += chunk
                if len(data) > limit:
                    raise OCIError(f"{what}: over {limit} bytes", code="oci.too_large")
        finally:
            response.close()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        announced = response.headers.get("docker-content-digest")
        expected = ref if ref.startswith("sha256:") else announced
        if expected is not None and expected != digest:
            raise OCIError(f"{what}: its bytes are {digest}, not {expected}: refused",
                           code="oci.manifest_digest_mismatch")  # fmt: skip
        return data, digest
