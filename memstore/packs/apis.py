"""The packs API: resolve, publish (one request or an upload session), packs and versions.

One small view per operation (several operations share a URL, one method each); each
validates its input with its own serializer (:mod:`memstore.packs.serializers`),
calls one service or selector and shapes the answer with an output serializer. The
services raise the registry's coded errors; the one exception handler
(:mod:`memstore.api.errors`) answers them. Routed by :mod:`memstore.urls`.

Not here: any rule (``services``, ``selectors``, ``uploads``, ``upload_publish``),
blob downloads (:mod:`memstore.storage.apis`).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from protocol import parse_ref

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
from ..errors import TooLargeError
from ..storage.services import get_blob_storage
from . import presenters, uploads
from . import selectors as pack_selectors
from . import serializers as s
from . import services as pack_services
from .models import PackVersion
from .resolve_body import resolve_json
from .resolve_counts import download_record_once
from .resolve_http import RememberedNegotiation, resolve_spec
from .upload_publish import pack_publish_upload, pack_upload_admit

__all__ = [
    "PackDeprecateView",
    "PackDetailView",
    "PackListView",
    "PublishView",
    "ResolveView",
    "UploadCompleteView",
    "UploadCreateView",
    "UploadDetailView",
    "VersionDetailView",
    "VersionUnyankView",
    "VersionYankView",
]


def _price(data: dict[str, Any]) -> pack_services.Price:
    return pack_services.Price(
        amount_minor=int(data.get("price_amount_minor") or 0),
        currency=str(data.get("price_currency") or "").upper(),
    )


# ------------------------------------------------------------------- resolve


class ResolveView(APIView):
    content_negotiation_class = RememberedNegotiation  # DRF's, per Accept header once

    @extend_schema(
        operation_id="resolve",
        parameters=[s.ResolveQueryIn],
        responses={200: s.ResolveOut, **ERRORS, 410: ErrorOut},
        summary="Resolve NS/NAME[@SPEC] to a manifest, signatures, keys and download URLs",
    )
    def get(self, request: Request, namespace: str, name: str) -> HttpResponse:
        spec = resolve_spec(request.query_params)  # ResolveQueryIn's value or error
        parse_ref(f"{namespace}/{name}@{spec}")  # ref.invalid on bad syntax
        actor = actor_of(request)
        resolution = pack_selectors.version_resolve(
            actor=actor, namespace=namespace, name=name, spec=spec
        )
        # Counted once a day per account or address (MEMSTORE_NUM_PROXIES aware); a count this
        # process already made today is not sent again (:mod:`.resolve_counts`).
        address = BaseThrottle().get_ident(request)
        download_record_once(version=resolution.version, user=actor.user, address=address)
        # Pre-rendered JSON of ResolveOut's shape: no serializer pass per request (why:
        # :mod:`.resolve_body`).
        body = resolve_json(resolution, request, get_blob_storage())
        return HttpResponse(body, content_type="application/json")


# ------------------------------------------------------------------- publish


class PublishView(APIView):
    parser_classes = [MultiPartParser, FormParser]
    throttle_scope = "publish"
    throttle_classes = [PublishThrottle]

    @extend_schema(
        operation_id="pack_publish",
        request={"multipart/form-data": s.PublishIn},
        responses={201: s.PublishOut, **ERRORS, 413: ErrorOut, 429: ErrorOut},
        summary="Publish a .memcube in one request",
    )
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        pack_upload_admit(actor=actor, announced_bytes=content_length(request))
        data = valid_input(s.PublishIn, request.data)  # reads the body
        version = pack_publish_upload(
            actor=actor, upload=data["file"], private=data["private"], price=_price(data)
        )
        return respond(s.PublishOut, presenters.publish_dict(version), status.HTTP_201_CREATED)


class UploadCreateView(APIView):
    throttle_scope = "publish"
    throttle_classes = [PublishThrottle]

    @extend_schema(
        operation_id="upload_create",
        request=s.UploadCreateIn,
        responses={201: s.UploadOut, **ERRORS, 413: ErrorOut},
        summary="Open a resumable upload session",
    )
    def post(self, request: Request) -> Response:
        data = valid_input(s.UploadCreateIn, request.data)
        session = uploads.upload_session_create(
            actor=actor_of(request), size=data["size"], sha256=data["sha256"]
        )
        return respond(s.UploadOut, presenters.session_dict(session), status.HTTP_201_CREATED)


class UploadDetailView(APIView):
    parser_classes = [RawBytesParser, JSONParser]

    @extend_schema(operation_id="upload_get", responses={200: s.UploadOut, **ERRORS})
    def get(self, request: Request, session_id: uuid.UUID) -> Response:
        session = uploads.upload_session_get(actor=actor_of(request), session_id=session_id)
        return respond(s.UploadOut, presenters.session_dict(session))

    @extend_schema(
        operation_id="upload_append",
        request={"application/octet-stream": bytes},
        parameters=[OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True)],
        responses={200: s.UploadOut, **ERRORS, 413: ErrorOut},
        summary="Append a chunk at Upload-Offset",
    )
    def patch(self, request: Request, session_id: uuid.UUID) -> Response:
        max_chunk: int = settings.MEMSTORE_UPLOAD_CHUNK_BYTES
        if content_length(request) > max_chunk:  # refuse before reading the body into memory
            raise TooLargeError(f"a chunk may be at most {max_chunk} bytes", limit=max_chunk)
        try:
            offset = int(request.headers.get("Upload-Offset", ""))
        except ValueError:
            offset = -1
        data = request.data if isinstance(request.data, bytes) else b""
        session = uploads.upload_session_append(
            actor=actor_of(request), session_id=session_id, offset=offset, data=data
        )
        return respond(s.UploadOut, presenters.session_dict(session))

    @extend_schema(operation_id="upload_cancel", responses={204: None, **ERRORS})
    def delete(self, request: Request, session_id: uuid.UUID) -> Response:
        uploads.upload_session_cancel(actor=actor_of(request), session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UploadCompleteView(APIView):
    throttle_scope = "publish"
    throttle_classes = [PublishThrottle]

    @extend_schema(
        operation_id="upload_complete",
        request=s.UploadCompleteIn,
        responses={201: s.PublishOut, **ERRORS},
        summary="Finish an upload session and publish the pack",
    )
    def post(self, request: Request, session_id: uuid.UUID) -> Response:
        data = valid_input(s.UploadCompleteIn, request.data)
        version = uploads.upload_session_complete(
            actor=actor_of(request),
            session_id=session_id,
            private=data["private"],
            price=_price(data),
        )
        return respond(s.PublishOut, presenters.publish_dict(version), status.HTTP_201_CREATED)


# ------------------------------------------------------------------- packs and versions


class PackListView(APIView):
    @extend_schema(
        operation_id="pack_list", parameters=[s.PackListQueryIn], responses={200: s.PackListOut}
    )
    def get(self, request: Request) -> Response:
        query = valid_input(s.PackListQueryIn, request.query_params)
        qs = pack_selectors.packs_visible(actor=actor_of(request)).order_by(
            "namespace__name", "name"
        )
        if query.get("namespace"):
            qs = qs.filter(namespace__name=query["namespace"])
        total = qs.count()
        start = (query["page"] - 1) * query["page_size"]
        items = [
            {
                "name": p.full_name,
                "private": p.private,
                "deprecated": p.deprecated,
                "downloads": p.download_count,
            }
            for p in qs[start : start + query["page_size"]]
        ]
        return respond(
            s.PackListOut,
            {
                "results": items,
                "page": query["page"],
                "page_size": query["page_size"],
                "total": total,
            },
        )


class PackDetailView(APIView):
    @extend_schema(operation_id="pack_get", responses={200: s.PackOut, **ERRORS})
    def get(self, request: Request, namespace: str, name: str) -> Response:
        pack = pack_selectors.pack_get(actor=actor_of(request), namespace=namespace, name=name)
        return respond(s.PackOut, presenters.pack_dict(pack))


class PackDeprecateView(APIView):
    @extend_schema(
        operation_id="pack_deprecate", request=s.DeprecateIn, responses={200: s.PackOut, **ERRORS}
    )
    def post(self, request: Request, namespace: str, name: str) -> Response:
        data = valid_input(s.DeprecateIn, request.data)
        actor = actor_of(request)
        pack = pack_selectors.pack_get(actor=actor, namespace=namespace, name=name)
        pack = pack_services.pack_deprecate(
            actor=actor, pack=pack, deprecated=data["deprecated"], message=data["message"]
        )
        return respond(s.PackOut, presenters.pack_dict(pack))


def _version(request: Request, namespace: str, name: str, version: str) -> PackVersion:
    pack = pack_selectors.pack_get(actor=actor_of(request), namespace=namespace, name=name)
    return pack_selectors.version_get(pack=pack, version=version)


class VersionDetailView(APIView):
    @extend_schema(
        operation_id="version_get", responses={200: s.VersionOut, **ERRORS, 410: ErrorOut}
    )
    def get(self, request: Request, namespace: str, name: str, version: str) -> Response:
        return respond(
            s.VersionOut, presenters.version_dict(_version(request, namespace, name, version))
        )

    @extend_schema(operation_id="version_delete", responses={204: None, **ERRORS})
    def delete(self, request: Request, namespace: str, name: str, version: str) -> Response:
        found = _version(request, namespace, name, version)
        pack_services.version_delete(actor=actor_of(request), version=found)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionYankView(APIView):
    @extend_schema(
        operation_id="version_yank", request=s.YankIn, responses={200: s.VersionOut, **ERRORS}
    )
    def post(self, request: Request, namespace: str, name: str, version: str) -> Response:
        data = valid_input(s.YankIn, request.data)
        found = _version(request, namespace, name, version)
        found = pack_services.version_yank(
            actor=actor_of(request), version=found, reason=data["reason"]
        )
        return respond(s.VersionOut, presenters.version_dict(found))


class VersionUnyankView(APIView):
    @extend_schema(
        operation_id="version_unyank", request=None, responses={200: s.VersionOut, **ERRORS}
    )
    def post(self, request: Request, namespace: str, name: str, version: str) -> Response:
        found = _version(request, namespace, name, version)
        found = pack_services.version_unyank(actor=actor_of(request), version=found)
        return respond(s.VersionOut, presenters.version_dict(found))
