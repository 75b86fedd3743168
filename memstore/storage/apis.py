"""The storage API: serve a blob through a signed download URL (the MIP 1 path).

``GET /api/v1/blobs/<sha256>?exp=&sig=``, the URL form resolve handed out before
``/api/v1/blobs/sha256/<hex>`` (:mod:`memstore.packs.blob_apis`), which also takes
these signatures. The signature is checked by
:func:`memstore.storage.backends.check_download_signature`; the bytes are served
with HTTP Range by :func:`memstore.storage.responses.blob_response`. Routed by
:mod:`memstore.urls`. Not here: who may download what (the packs API's resolve
decides that before it hands out a URL).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from ..api.serializers import ErrorOut
from ..errors import ForbiddenError, NotFoundError
from .backends import check_download_signature
from .models import Blob
from .responses import blob_response
from .services import get_blob_storage

__all__ = ["BlobDownloadView"]


class BlobDownloadView(APIView):
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="blob_download",
        parameters=[
            OpenApiParameter("exp", str, required=True),
            OpenApiParameter("sig", str, required=True),
            OpenApiParameter("filename", str, required=False),
        ],
        responses={
            (200, "application/octet-stream"): bytes,
            (206, "application/octet-stream"): bytes,
            403: ErrorOut,
            404: ErrorOut,
            416: None,
        },
        summary="Download a blob through a signed URL (local storage only)",
    )
    def get(self, request: Request, sha256: str) -> HttpResponseBase:
        storage = get_blob_storage()
        filename = request.query_params.get("filename", "")
        ok = check_download_signature(
            settings.SECRET_KEY,
            sha256,
            exp=request.query_params.get("exp", ""),
            sig=request.query_params.get("sig", ""),
            filename=filename,
        )
        if not ok:
            raise ForbiddenError(
                "the download link is invalid or expired", code="registry.bad_download_signature"
            )
        row = Blob.objects.filter(sha256=sha256).first()
        if row is None:
            raise NotFoundError(f"no blob sha256:{sha256}", code="blob.not_found", sha256=sha256)
        return blob_response(
            request,
            storage=storage,
            sha256=sha256,
            size=row.size,
            ttl=settings.MEMSTORE_URL_TTL,
            filename=filename,
        )
