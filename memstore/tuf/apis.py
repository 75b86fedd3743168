"""The TUF API: metadata files as python-tuf's ``ngclient`` asks for them, key statements.

``GET /api/v1/tuf/<file>``: ``<V>.root.json``, ``timestamp.json``,
``<V>.snapshot.json``, ``<V>.targets.json``, ``<V>.ns-<namespace>.json``
(consistent snapshots), the exact signed bytes, public, never cached by a
proxy for long (``timestamp.json``: no-cache). Serving the timestamp
re-signs it when it is past half its lifetime (the online key is on the web
host; a beat task is not needed to keep clients from seeing it expire).

``POST /api/v1/tuf/namespaces/<ns>/keys/<keyid>/endorse`` (an older key's
signature over the new key) and ``.../compromised`` (since when).
Not here: rules (:mod:`.services`).
"""

from __future__ import annotations

import json
from datetime import datetime

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from protocol import Signature

from ..accounts import selectors as account_selectors
from ..accounts.authentication import actor_of
from ..api.common import ERRORS, MetadataThrottle, valid_input
from ..errors import InvalidRequestError, NotFoundError
from . import services
from .models import KeyStatement
from .repository import EXPIRY
from .selectors import metadata_file

__all__ = ["KeyCompromisedView", "KeyEndorseView", "MetadataFileView"]


class MetadataFileView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_scope = "metadata"
    throttle_classes = [MetadataThrottle]

    @extend_schema(operation_id="tuf_metadata", responses={200: bytes, **ERRORS})
    def get(self, request: Request, filename: str) -> HttpResponse:
        if not services.ensure_repository():
            raise services.TufNotConfiguredError("this registry serves no TUF metadata")
        data = metadata_file(filename)
        if filename == "timestamp.json" and (data is None or _half_gone(data)):
            services.timestamp_fresh()  # under the repository's lock; rare
            data = metadata_file(filename)
        if data is None:
            raise NotFoundError(f"no TUF metadata {filename}", code="tuf.not_found")
        response = HttpResponse(data, content_type="application/json")
        immutable = filename != "timestamp.json"
        response["Cache-Control"] = "public, max-age=31536000, immutable" if immutable else (
            "no-cache"
        )
        return response


def _half_gone(timestamp: bytes) -> bool:
    """Whether a timestamp has less than half its lifetime left (cheap: no signature check)."""
    try:
        expires = datetime.fromisoformat(json.loads(timestamp)["signed"]["expires"])
    except (ValueError, KeyError, TypeError):
        return True
    return expires - timezone.now() < EXPIRY["timestamp"] / 2


class EndorseIn(serializers.Serializer[dict[str, object]]):
    signature = serializers.DictField(child=serializers.CharField())


class CompromisedIn(serializers.Serializer[dict[str, object]]):
    since = serializers.DateTimeField()


class StatementOut(serializers.Serializer[dict[str, object]]):
    keyid = serializers.CharField()
    endorsed_by = serializers.CharField()
    compromised_since = serializers.DateTimeField(allow_null=True)


def _statement(st: KeyStatement) -> Response:
    data: dict[str, object] = {"keyid": st.keyid, "endorsed_by": st.endorsed_by,
            "compromised_since": st.compromised_since}  # fmt: skip
    return Response(StatementOut(data).data)


class KeyEndorseView(APIView):
    @extend_schema(operation_id="tuf_key_endorse", request=EndorseIn,
                   responses={200: StatementOut, **ERRORS})  # fmt: skip
    def post(self, request: Request, namespace: str, keyid: str) -> Response:
        data = valid_input(EndorseIn, request.data)
        try:
            signature = Signature.from_dict(data["signature"])
        except Exception as exc:
            raise InvalidRequestError("not a signature", code="tuf.bad_endorsement") from exc
        st = services.key_endorse(
            actor=actor_of(request), namespace=account_selectors.namespace_get(name=namespace),
            keyid=keyid, signature=signature,
        )  # fmt: skip
        return _statement(st)


class KeyCompromisedView(APIView):
    @extend_schema(operation_id="tuf_key_compromised", request=CompromisedIn,
                   responses={200: StatementOut, **ERRORS})  # fmt: skip
    def post(self, request: Request, namespace: str, keyid: str) -> Response:
        data = valid_input(CompromisedIn, request.data)
        st = services.key_compromised(
            actor=actor_of(request), namespace=account_selectors.namespace_get(name=namespace),
            keyid=keyid, since=data["since"],
        )  # fmt: skip
        return _statement(st)
