"""The storage API: serve a blob through a signed download URL (local storage only).

S3 storage hands out presigned URLs to the bucket instead; the signature of a local
URL is checked by :func:`memstore.storage.backends.check_download_signature`. Routed
by :mod:`memstore.urls`. Not here: who may download what (the packs API's
resolve decides that before it hands out a URL).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from ..api.serializers import ErrorOut
from ..errors import ForbiddenError
from .backends import check_download_signature
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
        responses={(200, "application/octet-stream"): bytes, 403: ErrorOut},
        summary="Download a blob through a signed URL (local storage only)",
    )
    def get(self, request: Request, sha256: str) -> FileResponse:
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
        response = FileResponse(
            storage.open(sha256),
            content_type="application/octet-stream",
            as_attachment=bool(filename),
            filename=filename or sha256,
        )
        response["Cache-Control"] = "private, max-age=300"
        return response
