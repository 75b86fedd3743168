"""The accounts API: API tokens, who am I, namespaces and their members, signing keys.

One small view per operation (several operations share a URL, one method each), each
with its own input and output serializers (:mod:`memstore.accounts.serializers`); the
services raise the registry's coded errors and the one exception handler
(:mod:`memstore.api.errors`) answers them. Routed by :mod:`memstore.urls`.

Not here: any rule (``services``, ``selectors``) or the web UI's account pages.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import authenticate
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..api.common import ERRORS, PublishThrottle, respond, valid_input
from ..api.serializers import ErrorOut
from ..errors import NotAuthenticatedError
from . import selectors as account_selectors
from . import serializers as s
from . import services as account_services
from .actor import system_actor as session_actor
from .authentication import actor_of
from .models import Role
from .presenters import key_dict, namespace_dict

__all__ = [
    "KeyListCreateView",
    "KeyRevokeView",
    "NamespaceCreateView",
    "NamespaceDetailView",
    "NamespaceMemberView",
    "NamespaceTransferView",
    "TokenCreateView",
    "TokenRevokeView",
    "WhoAmIView",
]


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
        data = valid_input(s.TokenCreateIn, request.data)
        actor = actor_of(request)
        if data.get("username"):
            user = authenticate(
                request._request, username=data["username"], password=data.get("password", "")
            )
            if user is None:
                raise NotAuthenticatedError(
                    "wrong username or password", code="registry.bad_credentials"
                )
            actor = session_actor(user)  # a password login acts as a session
        if actor.user is None:
            raise NotAuthenticatedError("give a username and password")
        days = data.get("expires_in_days")
        token, raw = account_services.api_token_create(
            user=actor.user,
            name=data["name"],
            scopes=data.get("scopes"),
            expires_at=None if days is None else timezone.now() + timedelta(days=days),
            actor=actor,
        )
        return respond(
            s.TokenOut,
            {
                "id": token.id,
                "token": raw,
                "name": token.name,
                "scopes": token.scopes,
                "created_at": token.created_at,
                "expires_at": token.expires_at,
            },
            status.HTTP_201_CREATED,
        )


class TokenRevokeView(APIView):
    @extend_schema(operation_id="token_revoke", responses={204: None, **ERRORS})
    def delete(self, request: Request, token_id: int) -> Response:
        account_services.api_token_revoke(actor=actor_of(request), token_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WhoAmIView(APIView):
    @extend_schema(operation_id="whoami", responses={200: s.WhoAmIOut, 401: ErrorOut})
    def get(self, request: Request) -> Response:
        actor = actor_of(request)
        if actor.user is None:
            raise NotAuthenticatedError("not signed in")
        memberships = account_selectors.namespaces_of(user=actor.user)
        return respond(
            s.WhoAmIOut,
            {
                "username": actor.user.username,
                "namespaces": [{"name": m.namespace.name, "role": m.role} for m in memberships],
                "scopes": sorted(actor.scopes) if actor.scopes is not None else None,
            },
        )


class NamespaceCreateView(APIView):
    @extend_schema(
        operation_id="namespace_create",
        request=s.NamespaceCreateIn,
        responses={201: s.NamespaceOut, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = valid_input(s.NamespaceCreateIn, request.data)
        namespace = account_services.namespace_create(
            actor=actor_of(request), name=data["name"], display_name=data["display_name"]
        )
        return respond(s.NamespaceOut, namespace_dict(namespace), status.HTTP_201_CREATED)


class NamespaceDetailView(APIView):
    @extend_schema(operation_id="namespace_get", responses={200: s.NamespaceOut, **ERRORS})
    def get(self, request: Request, namespace: str) -> Response:
        found = account_selectors.namespace_get(name=namespace)
        return respond(s.NamespaceOut, namespace_dict(found))


class NamespaceMemberView(APIView):
    @extend_schema(
        operation_id="namespace_member_set", request=s.MemberIn, responses={204: None, **ERRORS}
    )
    def post(self, request: Request, namespace: str) -> Response:
        data = valid_input(s.MemberIn, request.data)
        account_services.membership_set(
            actor=actor_of(request),
            namespace=account_selectors.namespace_get(name=namespace),
            username=data["username"],
            role=None if data["role"] == "none" else Role(data["role"]),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class NamespaceTransferView(APIView):
    @extend_schema(
        operation_id="namespace_transfer",
        request=s.NamespaceTransferIn,
        responses={200: s.NamespaceTransferOut, **ERRORS},
    )
    def post(self, request: Request, namespace: str) -> Response:
        data = valid_input(s.NamespaceTransferIn, request.data)
        found = account_services.namespace_transfer(
            namespace=account_selectors.namespace_get(name=namespace),
            to_owner=data["to_owner"],
            actor=actor_of(request),
        )
        return respond(s.NamespaceTransferOut, {"namespace": found.name, "owner": data["to_owner"]})


class KeyListCreateView(APIView):
    @extend_schema(operation_id="key_list", responses={200: s.KeyOut(many=True), **ERRORS})
    def get(self, request: Request, namespace: str) -> Response:
        found = account_selectors.namespace_get(name=namespace)
        return Response(
            [s.KeyOut(key_dict(k)).data for k in account_selectors.namespace_keys(namespace=found)]
        )

    @extend_schema(
        operation_id="key_register", request=s.KeyCreateIn, responses={201: s.KeyOut, **ERRORS}
    )
    def post(self, request: Request, namespace: str) -> Response:
        data = valid_input(s.KeyCreateIn, request.data)
        key = account_services.signing_key_register(
            actor=actor_of(request),
            namespace=account_selectors.namespace_get(name=namespace),
            public_key=data["public_key"],
            label=data["label"],
        )
        return respond(s.KeyOut, key_dict(key), status.HTTP_201_CREATED)


class KeyRevokeView(APIView):
    @extend_schema(
        operation_id="key_revoke", request=s.KeyRevokeIn, responses={200: s.KeyOut, **ERRORS}
    )
    def post(self, request: Request, namespace: str, keyid: str) -> Response:
        data = valid_input(s.KeyRevokeIn, request.data)
        key = account_services.signing_key_revoke(
            actor=actor_of(request),
            namespace=account_selectors.namespace_get(name=namespace),
            keyid=keyid,
            reason=data["reason"],
        )
        return respond(s.KeyOut, key_dict(key))
