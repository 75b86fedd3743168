"""The likes API: ``GET``/``PUT``/``DELETE /api/v1/packs/<ns>/<name>/like``.

``PUT`` likes and ``DELETE`` unlikes, both idempotent, both for a signed-in
account (a token, or a browser session with its CSRF token, DRF's session rule);
``GET`` answers the count and whether the caller likes it. Not here: the rule
(:mod:`memstore.packs.likes`).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..accounts.authentication import actor_of
from ..api.common import respond
from ..api.serializers import ErrorOut
from . import selectors as pack_selectors
from .likes import like_set, like_state

__all__ = ["PackLikeView"]


class LikeOut(serializers.Serializer):  # type: ignore[type-arg]
    likes = serializers.IntegerField()
    liked = serializers.BooleanField()


_ERRORS = {401: ErrorOut, 404: ErrorOut}


class PackLikeView(APIView):
    @extend_schema(operation_id="pack_like_get", responses={200: LikeOut, 404: ErrorOut})
    def get(self, request: Request, namespace: str, name: str) -> Response:
        actor = actor_of(request)
        pack = pack_selectors.pack_get(actor=actor, namespace=namespace, name=name)
        return respond(LikeOut, like_state(actor=actor, pack=pack))

    @extend_schema(operation_id="pack_like", request=None, responses={200: LikeOut, **_ERRORS})
    def put(self, request: Request, namespace: str, name: str) -> Response:
        actor = actor_of(request)
        pack = pack_selectors.pack_get(actor=actor, namespace=namespace, name=name)
        return respond(LikeOut, like_set(actor=actor, pack=pack, liked=True))

    @extend_schema(operation_id="pack_unlike", responses={200: LikeOut, **_ERRORS})
    def delete(self, request: Request, namespace: str, name: str) -> Response:
        actor = actor_of(request)
        pack = pack_selectors.pack_get(actor=actor, namespace=namespace, name=name)
        return respond(LikeOut, like_set(actor=actor, pack=pack, liked=False))
