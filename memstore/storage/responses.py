"""The HTTP answer that serves one blob, whole or a byte range, from either backend.

* The ``ETag`` is the quoted sha256 (a strong validator: the bytes never change), and
  every answer says ``Accept-Ranges: bytes``.
* ``GET`` on a storage with a :meth:`~memstore.storage.backends.BlobStorage.redirect_url`
  (S3) answers ``302`` to a short-lived presigned URL: S3 then serves the bytes and the
  Range itself (206, 416), so large blobs never flow through a registry worker. S3's own
  ``ETag`` is not the digest: clients resume with ``Range`` alone (the bytes at a digest
  never change), not ``If-Range``.
* Otherwise (local files) the registry streams the bytes: ``206`` with ``Content-Range``
  for a single satisfiable range (:mod:`memstore.storage.ranges`), ``416`` with
  ``Content-Range: bytes */size`` for an unsatisfiable one, ``200`` for the whole blob
  (also when ``If-Range`` names another validator).
* ``HEAD`` is answered here for both backends, from the size the registry recorded.

Not here: who may read the blob (the callers decide before they call), parsing ranges.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase

from .backends import BlobStorage
from .ranges import ByteRange, RangeNotSatisfiable, parse_range

__all__ = ["blob_response"]

_CHUNK = 1024 * 1024


def _etag(sha256: str) -> str:
    return f'"{sha256}"'


def _stream(fh: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    try:
        if start:
            if fh.seekable():
                fh.seek(start)
            else:  # pragma: no cover - every local file is seekable
                remaining = start
                while remaining > 0:
                    skipped = fh.read(min(_CHUNK, remaining))
                    if not skipped:
                        return
                    remaining -= len(skipped)
        left = length
        while left > 0:
            chunk = fh.read(min(_CHUNK, left))
            if not chunk:
                return  # the file is shorter than recorded: the client sees a short body
            left -= len(chunk)
            yield chunk
    finally:
        fh.close()


def _selected(request: HttpRequest, sha256: str, size: int) -> ByteRange | None:
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != _etag(sha256):
        return None  # another representation (or a date): send the whole blob
    return parse_range(request.headers.get("Range"), size)


def _headers(response: HttpResponseBase, sha256: str, filename: str) -> HttpResponseBase:
    response["ETag"] = _etag(sha256)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=300"
    if filename:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def blob_response(
    request: HttpRequest,
    *,
    storage: BlobStorage,
    sha256: str,
    size: int,
    ttl: int,
    filename: str = "",
) -> HttpResponseBase:
    """Serve ``sha256`` (``size`` bytes) for ``request``, GET or HEAD (module docstring)."""
    head = request.method == "HEAD"
    if not head:
        target = storage.redirect_url(sha256, ttl=ttl, filename=filename or None)
        if target is not None:
            redirect = HttpResponseRedirect(target)
            redirect["Cache-Control"] = "no-store"
            redirect["ETag"] = _etag(sha256)
            return redirect
    try:
        selected = _selected(request, sha256, size)
    except RangeNotSatisfiable as exc:
        refused = HttpResponse(status=416)
        refused["Content-Range"] = exc.content_range
        return _headers(refused, sha256, filename)
    start, length = (0, size) if selected is None else (selected.start, selected.length)
    response: HttpResponseBase
    if head:
        response = HttpResponse(content_type="application/octet-stream")
    else:
        response = StreamingHttpResponse(
            _stream(storage.open(sha256), start, length), content_type="application/octet-stream"
        )
    if selected is not None:
        response.status_code = 206
        response["Content-Range"] = selected.content_range
    response["Content-Length"] = str(length)
    return _headers(response, sha256, filename)
