"""The blob API: read a blob by digest (Range), ask which are missing, upload one, publish.

* ``GET|HEAD /api/v1/blobs/sha256/<hex>``: the bytes, whole or a single range
  (:func:`memstore.storage.responses.blob_response`: 206/416 here for local storage,
  a 302 to a presigned URL that serves Range for S3). Served to a request that
  carries a valid signed-URL signature (the ``blobs[].url`` of a resolve answer), or
  whose actor may download some version that references the blob
  (:func:`memstore.packs.selectors.blob_readable`, the one download rule). Anyone
  else gets 404 ``blob.not_found``, exactly as for a digest nobody stored.
* ``POST /api/v1/blobs/missing``, ``POST /api/v1/blobs/uploads``,
  ``GET|PATCH|DELETE /api/v1/blobs/uploads/<id>``, ``POST .../<id>/complete``:
  :mod:`memstore.packs.blob_uploads`.
* ``POST /api/v1/packs/publish-manifest``: :mod:`memstore.packs.blob_publish`.

Routed by :mod:`memstore.urls`. Not here: any rule (the services and selectors).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from django.conf import settings
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from protocol import Signature

from ..accounts.authentication import actor_of
from ..api.common import (
    ERRORS,
    PublishThrottle,
    RawBytesParser,
    content_length,
    respond,
    valid_input,
)
from ..api.serializers import ErrorOut
from ..errors import InvalidRequestError, NotFoundError, TooLargeError
from ..storage.backends import check_download_signature
from ..storage.models import Blob
from ..storage.responses import blob_response
from ..storage.services import get_blob_storage
from . import blob_serializers as bs
from . import blob_uploads, presenters
from . import serializers as s
from .blob_publish import pack_check_manifest, pack_publish_manifest
from .publishing import Price
from .selectors import blob_readable

__all__ = [
    "BlobUploadCompleteView",
    "BlobUploadCreateView",
    "BlobUploadDetailView",
    "BlobView",
    "BlobsMissingView",
    "PublishManifestView",
]


def _blob_not_found(sha256: str) -> NotFoundError:
    return NotFoundError(f"no blob sha256:{sha256}", code="blob.not_found", sha256=sha256)


class BlobView(APIView):
    throttle_classes: list[Any] = []

    def _serve(self, request: Request, sha256: str) -> HttpResponseBase:
        row = Blob.objects.filter(sha256=sha256).first()
        signed = check_download_signature(
            settings.SECRET_KEY,
            sha256,
            exp=request.query_params.get("exp", ""),
            sig=request.query_params.get("sig", ""),
            filename=request.query_params.get("filename", ""),
        )
        if row is None or not (signed or blob_readable(actor=actor_of(request), sha256=sha256)):
            raise _blob_not_found(sha256)
        return blob_response(
            request,
            storage=get_blob_storage(),
            sha256=sha256,
            size=row.size,
            ttl=settings.MEMSTORE_URL_TTL,
            filename=request.query_params.get("filename", "") if signed else "",
        )

    @extend_schema(
        operation_id="blob_get",
        parameters=[
            OpenApiParameter("Range", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("exp", str, required=False),
            OpenApiParameter("sig", str, required=False),
        ],
        responses={
            (200, "application/octet-stream"): bytes,
            (206, "application/octet-stream"): bytes,
            302: None,
            404: ErrorOut,
            416: None,
        },
        summary="A blob by digest, whole or one byte range (S3: redirect to a presigned URL)",
    )
    def get(self, request: Request, sha256: str) -> HttpResponseBase:
        return self._serve(request, sha256)

    @extend_schema(operation_id="blob_head", responses={200: None, 206: None, 404: None})
    def head(self, request: Request, sha256: str) -> HttpResponseBase:
        return self._serve(request, sha256)


class BlobsMissingView(APIView):
    @extend_schema(
        operation_id="blobs_missing",
        request=bs.BlobsMissingIn,
        responses={200: bs.BlobsMissingOut, **ERRORS},
        summary="Which of these blobs the publisher still has to upload",
    )
    def post(self, request: Request) -> Response:
        data = valid_input(bs.BlobsMissingIn, request.data)
        missing = blob_uploads.blobs_missing(actor=actor_of(request), digests=data["digests"])
        return respond(bs.BlobsMissingOut, {"missing": missing})


class BlobUploadCreateView(APIView):
    @extend_schema(
        operation_id="blob_upload_create",
        request=bs.BlobUploadCreateIn,
        responses={201: bs.BlobUploadOut, 200: bs.BlobUploadOut, **ERRORS, 413: ErrorOut},
        summary="Open (or find) the resumable upload of one blob",
    )
    def post(self, request: Request) -> Response:
        data = valid_input(bs.BlobUploadCreateIn, request.data)
        upload, created = blob_uploads.blob_upload_create(
            actor=actor_of(request), sha256=data["sha256"], size=data["size"]
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return respond(bs.BlobUploadOut, presenters.blob_upload_dict(upload), code)


class BlobUploadDetailView(APIView):
    parser_classes = [RawBytesParser, JSONParser]

    @extend_schema(operation_id="blob_upload_get", responses={200: bs.BlobUploadOut, **ERRORS})
    def get(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload = blob_uploads.blob_upload_get(actor=actor_of(request), upload_id=upload_id)
        return respond(bs.BlobUploadOut, presenters.blob_upload_dict(upload))

    @extend_schema(
        operation_id="blob_upload_append",
        request={"application/octet-stream": bytes},
        parameters=[OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True)],
        responses={200: bs.BlobUploadOut, **ERRORS, 413: ErrorOut},
        summary="Append a chunk at Upload-Offset; the last chunk completes the upload",
    )
    def patch(self, request: Request, upload_id: uuid.UUID) -> Response:
        max_chunk: int = settings.MEMSTORE_UPLOAD_CHUNK_BYTES
        if content_length(request) > max_chunk:  # refuse before reading the body into memory
            raise TooLargeError(
                f"a chunk may be at most {max_chunk} bytes",
                code="upload.chunk_too_large",
                limit=max_chunk,
            )
        try:
            offset = int(request.headers.get("Upload-Offset", ""))
        except ValueError:
            offset = -1
        data = request.data if isinstance(request.data, bytes) else b""
        upload = blob_uploads.blob_upload_append(
            actor=actor_of(request), upload_id=upload_id, offset=offset, data=data
        )
        return respond(bs.BlobUploadOut, presenters.blob_upload_dict(upload))

    @extend_schema(operation_id="blob_upload_cancel", responses={204: None, **ERRORS})
    def delete(self, request: Request, upload_id: uuid.UUID) -> Response:
        blob_uploads.blob_upload_cancel(actor=actor_of(request), upload_id=upload_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BlobUploadCompleteView(APIView):
    @extend_schema(
        operation_id="blob_upload_complete",
        request=None,
        responses={200: bs.BlobUploadOut, **ERRORS},
        summary="Complete a blob upload (verifies size and sha256; a retry is a no-op)",
    )
    def post(self, request: Request, upload_id: uuid.UUID) -> Response:
        upload = blob_uploads.blob_upload_complete(actor=actor_of(request), upload_id=upload_id)
        return respond(bs.BlobUploadOut, presenters.blob_upload_dict(upload))


def _manifest_bytes(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(
            "manifest_b64 is not base64", code="registry.invalid_request", fields=["manifest_b64"]
        ) from None


class CheckManifestView(APIView):
    """What a publish of this manifest would say, without publishing (``--dry-run``)."""

    throttle_scope = "publish"
    throttle_classes = [PublishThrottle]

    @extend_schema(
        operation_id="pack_check_manifest",
        request=bs.CheckManifestIn,
        responses={200: bs.CheckManifestOut, **ERRORS, 413: ErrorOut, 429: ErrorOut},
        summary="Run a publish's checks and scan on a signed manifest; publish nothing",
    )
    def post(self, request: Request) -> Response:
        data = valid_input(bs.CheckManifestIn, request.data)
        manifest, report = pack_check_manifest(
            actor=actor_of(request),
            manifest_bytes=_manifest_bytes(data["manifest_b64"]),
            signatures=[Signature.from_dict(sig) for sig in data["signatures"]],
        )
        body = {
            "name": manifest.name, "version": manifest.version,
            "memories_scanned": report.memories,
            "findings": [f.to_dict() for f in report.findings],
        }  # fmt: skip
        return respond(bs.CheckManifestOut, body)


class PublishManifestView(APIView):
    throttle_scope = "publish"
    throttle_classes = [PublishThrottle]

    @extend_schema(
        operation_id="pack_publish_manifest",
        request=bs.PublishManifestIn,
        responses={201: s.PublishOut, **ERRORS, 413: ErrorOut, 429: ErrorOut},
        summary="Publish a signed manifest whose blobs were uploaded before",
    )
    def post(self, request: Request) -> Response:
        data = valid_input(bs.PublishManifestIn, request.data)
        version = pack_publish_manifest(
            actor=actor_of(request),
            manifest_bytes=_manifest_bytes(data["manifest_b64"]),
            signatures=[Signature.from_dict(sig) for sig in data["signatures"]],
            private=data["private"],
            price=Price(
                amount_minor=int(data.get("price_amount_minor") or 0),
                currency=str(data.get("price_currency") or "").upper(),
            ),
        )
        return respond(s.PublishOut, presenters.publish_dict(version), status.HTTP_201_CREATED)
