"""The transparency log's API: tree head, entries, inclusion and consistency proofs (public).

``GET /api/v1/log/tree-head``; ``GET /api/v1/log/entries?start=&end=`` (at most
:data:`MAX_ENTRIES` per call);
``GET /api/v1/log/proof/inclusion?leaf=|hash=|manifest_sha256=&size=``;
``GET /api/v1/log/proof/consistency?first=&second=``. Hashes are hex, entry bodies base64 (the
exact leaf bytes). Never cached: a tree head is only worth what its freshness is.
Not here: appending (:mod:`.services`).
"""

from __future__ import annotations

import base64
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..api.common import ERRORS, MetadataThrottle, respond, valid_input
from ..errors import InvalidRequestError
from . import services
from .models import LogEntry

__all__ = ["ConsistencyProofView", "EntriesView", "InclusionProofView", "TreeHeadView"]

MAX_ENTRIES = 1000


class TreeHeadOut(serializers.Serializer[dict[str, Any]]):
    size = serializers.IntegerField()
    root_hash = serializers.CharField()
    timestamp = serializers.IntegerField()
    log_id = serializers.CharField()
    signature = serializers.CharField()
    public_key = serializers.CharField()


class EntryOut(serializers.Serializer[dict[str, Any]]):
    index = serializers.IntegerField()
    leaf_hash = serializers.CharField()
    body = serializers.CharField()


class EntriesIn(serializers.Serializer[dict[str, Any]]):
    start = serializers.IntegerField(min_value=0)
    end = serializers.IntegerField(min_value=0)


class EntriesOut(serializers.Serializer[dict[str, Any]]):
    entries = EntryOut(many=True)


class InclusionIn(serializers.Serializer[dict[str, Any]]):
    size = serializers.IntegerField(min_value=1)
    leaf = serializers.IntegerField(min_value=0, required=False)
    hash = serializers.RegexField(r"^[0-9a-f]{64}$", required=False)
    manifest_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", required=False)


class InclusionOut(serializers.Serializer[dict[str, Any]]):
    entry = EntryOut()
    size = serializers.IntegerField()
    path = serializers.ListField(child=serializers.CharField())


class ConsistencyIn(serializers.Serializer[dict[str, Any]]):
    first = serializers.IntegerField(min_value=0)
    second = serializers.IntegerField(min_value=0)


class ConsistencyOut(serializers.Serializer[dict[str, Any]]):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    path = serializers.ListField(child=serializers.CharField())


def _entry(entry: LogEntry) -> dict[str, Any]:
    return {
        "index": entry.index,
        "leaf_hash": entry.leaf_hash,
        "body": base64.b64encode(bytes(entry.body)).decode("ascii"),
    }


def _no_store(response: Response) -> Response:
    response["Cache-Control"] = "no-store"
    return response


class _Public(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_scope = "metadata"
    throttle_classes = [MetadataThrottle]


class TreeHeadView(_Public):
    @extend_schema(operation_id="log_tree_head", responses={200: TreeHeadOut, **ERRORS})
    def get(self, request: Request) -> Response:
        key = services.log_key()
        head = services.tree_head(key)
        body = {**head.to_dict(), "public_key": key.public_key.to_text()}
        return _no_store(respond(TreeHeadOut, body))


class EntriesView(_Public):
    @extend_schema(operation_id="log_entries", parameters=[EntriesIn],
                   responses={200: EntriesOut, **ERRORS})  # fmt: skip
    def get(self, request: Request) -> Response:
        query = valid_input(EntriesIn, request.query_params)
        start, end = query["start"], query["end"]
        if not start <= end <= start + MAX_ENTRIES:
            raise InvalidRequestError(
                f"ask for 0 to {MAX_ENTRIES} entries, start <= end",
                code="registry.log_bad_range",
            )
        rows = LogEntry.objects.filter(index__gte=start, index__lt=end).order_by("index")
        return _no_store(respond(EntriesOut, {"entries": [_entry(e) for e in rows]}))


class InclusionProofView(_Public):
    @extend_schema(operation_id="log_inclusion_proof", parameters=[InclusionIn],
                   responses={200: InclusionOut, **ERRORS})  # fmt: skip
    def get(self, request: Request) -> Response:
        query = valid_input(InclusionIn, request.query_params)
        entry, path = services.inclusion_proof(
            size=query["size"], leaf=query.get("leaf"), leaf_hash=query.get("hash"),
            manifest_sha256=query.get("manifest_sha256"),
        )  # fmt: skip
        body = {"entry": _entry(entry), "size": query["size"], "path": [p.hex() for p in path]}
        return _no_store(respond(InclusionOut, body))


class ConsistencyProofView(_Public):
    @extend_schema(operation_id="log_consistency_proof", parameters=[ConsistencyIn],
                   responses={200: ConsistencyOut, **ERRORS})  # fmt: skip
    def get(self, request: Request) -> Response:
        query = valid_input(ConsistencyIn, request.query_params)
        path = services.consistency_proof(first=query["first"], second=query["second"])
        body = {**query, "path": [p.hex() for p in path]}
        return _no_store(respond(ConsistencyOut, body))
