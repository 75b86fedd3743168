"""The search API: hybrid search over memories and over packs, with the same filters.

One small view per operation, each validating its query with
:class:`~memstore.search.serializers.SearchQueryIn` and answering with its own output
serializer; routed by :mod:`memstore.urls`. Not here: the search itself
(:mod:`memstore.search.selectors`).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..accounts.authentication import actor_of
from ..api.common import respond, valid_input
from ..api.serializers import ErrorOut
from . import selectors as search_selectors
from . import serializers as s

__all__ = ["MemorySearchView", "PackSearchView"]


def _filters(query: dict[str, Any]) -> search_selectors.SearchFilters:
    return search_selectors.SearchFilters(
        memory_type=query.get("memory_type"),
        license=query.get("license"),
        price=query.get("price"),
        base_model=query.get("base_model"),
        namespace=query.get("namespace"),
        pack=query.get("pack"),
    )


class MemorySearchView(APIView):
    @extend_schema(
        operation_id="search_memories",
        parameters=[s.SearchQueryIn],
        responses={200: s.MemorySearchOut, 400: ErrorOut},
    )
    def get(self, request: Request) -> Response:
        query = valid_input(s.SearchQueryIn, request.query_params)
        page = search_selectors.memories_search(
            actor=actor_of(request),
            query=query["q"],
            filters=_filters(query),
            page=query["page"],
            page_size=query["page_size"],
        )
        return respond(s.MemorySearchOut, page.__dict__)


class PackSearchView(APIView):
    @extend_schema(
        operation_id="search_packs",
        parameters=[s.PackSearchQueryIn],
        responses={200: s.PackSearchOut, 400: ErrorOut},
    )
    def get(self, request: Request) -> Response:
        query = valid_input(s.PackSearchQueryIn, request.query_params)
        page = search_selectors.packs_search(
            actor=actor_of(request),
            query=query["q"],
            filters=_filters(query),
            page=query["page"],
            page_size=query["page_size"],
            sort=query["sort"],
        )
        return respond(s.PackSearchOut, {**page.__dict__, "sort": page.extra["sort"]})
