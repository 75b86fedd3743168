"""The REST API views: one small view per operation; logic lives in services/selectors."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from protocol import parse_ref

from ..accounts import selectors as account_selectors
from ..accounts import services as account_services
from ..accounts.models import Role
from ..errors import ForbiddenError, NotAuthenticatedError, TooLargeError
from ..packs import selectors as pack_selectors
from ..packs import services as pack_services
from ..packs import uploads
from ..packs.models import PackVersion, UploadSession
from ..search import selectors as search_selectors
from ..storage.backends import check_download_signature
from ..storage.services import get_blob_storage
from . import presenters
from . import serializers as s
from .common import RawBytesParser, actor_of

ERRORS = {400: s.ErrorOut, 401: s.ErrorOut, 403: s.ErrorOut, 404: s.ErrorOut, 409: s.ErrorOut}


def _valid(serializer_class: type[Any], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    validated: dict[str, Any] = serializer.validated_data
    return validated


def _out(serializer_class: type[Any], data: Any, code: int = 200) -> Response:
    return Response(serializer_class(data).data, status=code)


class PublishThrottle(ScopedRateThrottle):
    scope_attr = "throttle_scope"


# ------------------------------------------------------------------- resolve and download


class ResolveView(APIView):
    @extend_schema(
        operation_id="resolve",
        parameters=[s.ResolveQueryIn],
        responses={200: s.ResolveOut, **ERRORS, 410: s.ErrorOut},
        summary="Resolve NS/NAME[@SPEC] to a manifest, signatures, keys and download URLs",
    )
    def get(self, request: Request, namespace: str, name: str) -> Response:
        query = _valid(s.ResolveQueryIn, request.query_params)
        spec = query["spec"] or "*"
        parse_ref(f"{namespace}/{name}@{spec}")  # ref.invalid on bad syntax
        resolution = pack_selectors.version_resolve(
            actor=actor_of(request), namespace=namespace, name=name, spec=spec
        )
        pack_services.version_record_download(version=resolution.version)
        body = presenters.resolve_dict(resolution, request, get_blob_storage())
        return _out(s.ResolveOut, body)


class BlobDownloadView(APIView):
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="blob_download",
        parameters=[
            OpenApiParameter("exp", str, required=True),
            OpenApiParameter("sig", str, required=True),
            OpenApiParameter("filename", str, required=False),
        ],
        responses={(200, "application/octet-stream"): bytes, 403: s.ErrorOut},
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


# ------------------------------------------------------------------- publish


def _price(data: dict[str, Any]) -> pack_services.Price:
    return pack_services.Price(
        amount_minor=int(data.get("price_amount_minor") or 0),
        currency=str(data.get("price_currency") or "").upper(),
    )


def _content_length(request: Request) -> int:
    """The announced body size (0 when absent or malformed), read before the body is."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _check_length(request: Request) -> None:
    limit: int = settings.MEMSTORE_MAX_PACK_BYTES
    length = _content_length(request)
    if length > limit + 64 * 1024:
        raise TooLargeError(
            f"the request is {length} bytes; the pack limit is {limit}", limit=limit
        )


class PublishView(APIView):
    parser_classes = [MultiPartParser, FormParser]
    throttle_scope = "publish"
    throttle_classes = [PublishThrottle]

    @extend_schema(
        operation_id="pack_publish",
        request={"multipart/form-data": s.PublishIn},
        responses={201: s.PublishOut, **ERRORS, 413: s.ErrorOut, 429: s.ErrorOut},
        summary="Publish a .memcube in one request",
    )
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        if actor.user is None:
            raise NotAuthenticatedError("publishing needs an account and a token")
        _check_length(request)
        data = _valid(s.PublishIn, request.data)
        upload = data["file"]
        limit: int = settings.MEMSTORE_MAX_PACK_BYTES
        if upload.size is not None and upload.size > limit:
            raise TooLargeError(
                f"the pack is {upload.size} bytes; the limit is {limit}", limit=limit
            )
        with tempfile.TemporaryDirectory(prefix="memstore-upload-") as tmp:
            path = Path(tmp) / "upload.memcube"
            with open(path, "wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            version = pack_services.pack_publish(
                actor=actor, pack_file=path, private=data["private"], price=_price(data)
            )
        return _out(s.PublishOut, presenters.publish_dict(version), status.HTTP_201_CREATED)


def _session_dict(session: UploadSession) -> dict[str, Any]:
    return {
        "id": session.id,
        "size": session.size,
        "sha256": session.sha256,
        "offset": session.offset,
        "status": session.status,
        "expires_at": session.expires_at,
        "max_chunk_bytes": settings.MEMSTORE_UPLOAD_CHUNK_BYTES,
    }


class UploadCreateView(APIView):
    throttle_scope = "publish"
    throttle_classes = [PublishThrottle]

    @extend_schema(
        operation_id="upload_create",
        request=s.UploadCreateIn,
        responses={201: s.UploadOut, **ERRORS, 413: s.ErrorOut},
        summary="Open a resumable upload session",
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.UploadCreateIn, request.data)
        session = uploads.upload_session_create(
            actor=actor_of(request), size=data["size"], sha256=data["sha256"]
        )
        return _out(s.UploadOut, _session_dict(session), status.HTTP_201_CREATED)


class UploadDetailView(APIView):
    parser_classes = [RawBytesParser, JSONParser]

    @extend_schema(operation_id="upload_get", responses={200: s.UploadOut, **ERRORS})
    def get(self, request: Request, session_id: uuid.UUID) -> Response:
        session = uploads.upload_session_get(actor=actor_of(request), session_id=session_id)
        return _out(s.UploadOut, _session_dict(session))

    @extend_schema(
        operation_id="upload_append",
        request={"application/octet-stream": bytes},
        parameters=[OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True)],
        responses={200: s.UploadOut, **ERRORS, 413: s.ErrorOut},
        summary="Append a chunk at Upload-Offset",
    )
    def patch(self, request: Request, session_id: uuid.UUID) -> Response:
        max_chunk: int = settings.MEMSTORE_UPLOAD_CHUNK_BYTES
        if _content_length(request) > max_chunk:  # refuse before reading the body into memory
            raise TooLargeError(f"a chunk may be at most {max_chunk} bytes", limit=max_chunk)
        try:
            offset = int(request.headers.get("Upload-Offset", ""))
        except ValueError:
            offset = -1
        data = request.data if isinstance(request.data, bytes) else b""
        session = uploads.upload_session_append(
            actor=actor_of(request), session_id=session_id, offset=offset, data=data
        )
        return _out(s.UploadOut, _session_dict(session))

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
        data = _valid(s.UploadCompleteIn, request.data)
        version = uploads.upload_session_complete(
            actor=actor_of(request),
            session_id=session_id,
            private=data["private"],
            price=_price(data),
        )
        return _out(s.PublishOut, presenters.publish_dict(version), status.HTTP_201_CREATED)


# ------------------------------------------------------------------- packs


class PackListView(APIView):
    @extend_schema(
        operation_id="pack_list", parameters=[s.PackListQueryIn], responses={200: s.PackListOut}
    )
    def get(self, request: Request) -> Response:
        query = _valid(s.PackListQueryIn, request.query_params)
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
        return _out(
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
        return _out(s.PackOut, presenters.pack_dict(pack))


class PackDeprecateView(APIView):
    @extend_schema(
        operation_id="pack_deprecate", request=s.DeprecateIn, responses={200: s.PackOut, **ERRORS}
    )
    def post(self, request: Request, namespace: str, name: str) -> Response:
        data = _valid(s.DeprecateIn, request.data)
        actor = actor_of(request)
        pack = pack_selectors.pack_get(actor=actor, namespace=namespace, name=name)
        pack = pack_services.pack_deprecate(
            actor=actor, pack=pack, deprecated=data["deprecated"], message=data["message"]
        )
        return _out(s.PackOut, presenters.pack_dict(pack))


def _version(request: Request, namespace: str, name: str, version: str) -> PackVersion:
    pack = pack_selectors.pack_get(actor=actor_of(request), namespace=namespace, name=name)
    return pack_selectors.version_get(pack=pack, version=version)


class VersionDetailView(APIView):
    @extend_schema(
        operation_id="version_get", responses={200: s.VersionOut, **ERRORS, 410: s.ErrorOut}
    )
    def get(self, request: Request, namespace: str, name: str, version: str) -> Response:
        return _out(
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
        data = _valid(s.YankIn, request.data)
        found = _version(request, namespace, name, version)
        found = pack_services.version_yank(
            actor=actor_of(request), version=found, reason=data["reason"]
        )
        return _out(s.VersionOut, presenters.version_dict(found))


class VersionUnyankView(APIView):
    @extend_schema(
        operation_id="version_unyank", request=None, responses={200: s.VersionOut, **ERRORS}
    )
    def post(self, request: Request, namespace: str, name: str, version: str) -> Response:
        found = _version(request, namespace, name, version)
        found = pack_services.version_unyank(actor=actor_of(request), version=found)
        return _out(s.VersionOut, presenters.version_dict(found))


# ------------------------------------------------------------------- accounts


class TokenCreateView(APIView):
    throttle_scope = "publish"
    throttle_classes = [PublishThrottle]

    @extend_schema(
        operation_id="token_create",
        request=s.TokenCreateIn,
        responses={201: s.TokenOut, **ERRORS},
        summary="Create an API token (username/password, or an existing session/token)",
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.TokenCreateIn, request.data)
        user = request.user if request.user and request.user.is_authenticated else None
        if data.get("username"):
            user = authenticate(
                request._request, username=data["username"], password=data.get("password", "")
            )
            if user is None:
                raise NotAuthenticatedError(
                    "wrong username or password", code="registry.bad_credentials"
                )
        if user is None:
            raise NotAuthenticatedError("give a username and password")
        token, raw = account_services.api_token_create(
            user=user,
            name=data["name"],
            scopes=data["scopes"],
        )
        return _out(
            s.TokenOut,
            {
                "id": token.id,
                "token": raw,
                "name": token.name,
                "scopes": token.scopes,
                "created_at": token.created_at,
            },
            status.HTTP_201_CREATED,
        )


class TokenRevokeView(APIView):
    @extend_schema(operation_id="token_revoke", responses={204: None, **ERRORS})
    def delete(self, request: Request, token_id: int) -> Response:
        account_services.api_token_revoke(actor=actor_of(request), token_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WhoAmIView(APIView):
    @extend_schema(operation_id="whoami", responses={200: s.WhoAmIOut, 401: s.ErrorOut})
    def get(self, request: Request) -> Response:
        actor = actor_of(request)
        if actor.user is None:
            raise NotAuthenticatedError("not signed in")
        memberships = account_selectors.namespaces_of(user=actor.user)
        return _out(
            s.WhoAmIOut,
            {
                "username": actor.user.username,
                "namespaces": [{"name": m.namespace.name, "role": m.role} for m in memberships],
                "scopes": sorted(actor.scopes) if actor.scopes is not None else None,
            },
        )


def _namespace_dict(name: str) -> dict[str, Any]:
    namespace = account_selectors.namespace_get(name=name)
    return {
        "name": namespace.name,
        "kind": namespace.kind,
        "display_name": namespace.display_name,
        "created_at": namespace.created_at,
        "keys": [
            presenters.key_dict(k) for k in account_selectors.namespace_keys(namespace=namespace)
        ],
    }


class NamespaceCreateView(APIView):
    @extend_schema(
        operation_id="namespace_create",
        request=s.NamespaceCreateIn,
        responses={201: s.NamespaceOut, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.NamespaceCreateIn, request.data)
        namespace = account_services.namespace_create(
            actor=actor_of(request), name=data["name"], display_name=data["display_name"]
        )
        return _out(s.NamespaceOut, _namespace_dict(namespace.name), status.HTTP_201_CREATED)


class NamespaceDetailView(APIView):
    @extend_schema(operation_id="namespace_get", responses={200: s.NamespaceOut, **ERRORS})
    def get(self, request: Request, namespace: str) -> Response:
        return _out(s.NamespaceOut, _namespace_dict(namespace))


class NamespaceMemberView(APIView):
    @extend_schema(
        operation_id="namespace_member_set", request=s.MemberIn, responses={204: None, **ERRORS}
    )
    def post(self, request: Request, namespace: str) -> Response:
        data = _valid(s.MemberIn, request.data)
        account_services.membership_set(
            actor=actor_of(request),
            namespace=account_selectors.namespace_get(name=namespace),
            username=data["username"],
            role=None if data["role"] == "none" else Role(data["role"]),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class KeyListCreateView(APIView):
    @extend_schema(operation_id="key_list", responses={200: s.KeyOut(many=True), **ERRORS})
    def get(self, request: Request, namespace: str) -> Response:
        found = account_selectors.namespace_get(name=namespace)
        return Response(
            [
                s.KeyOut(presenters.key_dict(k)).data
                for k in account_selectors.namespace_keys(namespace=found)
            ]
        )

    @extend_schema(
        operation_id="key_register", request=s.KeyCreateIn, responses={201: s.KeyOut, **ERRORS}
    )
    def post(self, request: Request, namespace: str) -> Response:
        data = _valid(s.KeyCreateIn, request.data)
        key = account_services.signing_key_register(
            actor=actor_of(request),
            namespace=account_selectors.namespace_get(name=namespace),
            public_key=data["public_key"],
            label=data["label"],
        )
        return _out(s.KeyOut, presenters.key_dict(key), status.HTTP_201_CREATED)


class KeyRevokeView(APIView):
    @extend_schema(
        operation_id="key_revoke", request=s.KeyRevokeIn, responses={200: s.KeyOut, **ERRORS}
    )
    def post(self, request: Request, namespace: str, keyid: str) -> Response:
        data = _valid(s.KeyRevokeIn, request.data)
        key = account_services.signing_key_revoke(
            actor=actor_of(request),
            namespace=account_selectors.namespace_get(name=namespace),
            keyid=keyid,
            reason=data["reason"],
        )
        return _out(s.KeyOut, presenters.key_dict(key))


# ------------------------------------------------------------------- search


def _filters(query: dict[str, Any]) -> search_selectors.SearchFilters:
    return search_selectors.SearchFilters(
        memory_type=query.get("memory_type"),
        license=query.get("license"),
        price=query.get("price"),
        base_model=query.get("base_model"),
        namespace=query.get("namespace"),
    )


class MemorySearchView(APIView):
    @extend_schema(
        operation_id="search_memories",
        parameters=[s.SearchQueryIn],
        responses={200: s.MemorySearchOut, 400: s.ErrorOut},
    )
    def get(self, request: Request) -> Response:
        query = _valid(s.SearchQueryIn, request.query_params)
        page = search_selectors.memories_search(
            actor=actor_of(request),
            query=query["q"],
            filters=_filters(query),
            page=query["page"],
            page_size=query["page_size"],
        )
        return _out(s.MemorySearchOut, page.__dict__)


class PackSearchView(APIView):
    @extend_schema(
        operation_id="search_packs",
        parameters=[s.SearchQueryIn],
        responses={200: s.PackSearchOut, 400: s.ErrorOut},
    )
    def get(self, request: Request) -> Response:
        query = _valid(s.SearchQueryIn, request.query_params)
        page = search_selectors.packs_search(
            actor=actor_of(request),
            query=query["q"],
            filters=_filters(query),
            page=query["page"],
            page_size=query["page_size"],
        )
        return _out(s.PackSearchOut, page.__dict__)
