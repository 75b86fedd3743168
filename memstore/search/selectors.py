"""Hybrid search over memories and packs.

Two candidate lists are computed in PostgreSQL — nearest neighbours by cosine
distance through the HNSW index (pgvector), and full-text matches ranked by
``ts_rank`` (``websearch_to_tsquery``) — and fused with reciprocal rank fusion
(score = sum of 1 / (60 + rank)) in the same SQL statement (``_fusion``: one
round trip). Neighbours less similar than ``MEMSTORE_SEARCH_MIN_SIMILARITY``
(cosine, default 0.25) are dropped, so a query about nothing published finds
nothing instead of the least unrelated memories; text matches always count.
Filters apply to both lists, and only the current version of each visible pack
is searched.

Paid packs: a reader who may not download the pack (not a member of its
namespace, no active entitlement) has its memories matched and ranked only
where the pack page shows them anyway (the publisher's previews, shown in
full); the rest is filtered out before ranking, so neither its words nor its
vectors move a stranger's results. Every snippet is a fixed prefix of the
memory, never a window chosen by the query; paid hits carry no ``text``
unless the reader may read the pack.

Queries are embedded by :func:`query_vector` (cached and batched,
``query_embedding``), with the same embedder that ingestion used for the
memories (``embedding``). Not here: writes to the index (``services``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import Length
from pgvector import HalfVector
from pgvector.django import CosineDistance

from ..accounts.actor import Actor
from ..accounts.models import Membership
from ..packs.cards import PREVIEW_CHARS
from ..packs.models import Pack, PackVersion
from ..packs.selectors import active_entitlements
from . import _fusion
from ._fusion import Leg
from .models import IndexedMemory, PackDocument, embedding_half
from .query_embedding import default_embedder

__all__ = [
    "PACK_SORTS",
    "MemoryHit",
    "PackHit",
    "SearchFilters",
    "SearchPage",
    "memories_search",
    "packs_search",
    "query_vector",
    "vector_distance",
]

CANDIDATES = 100
#: How pack results may be ordered; "relevance" needs a query (without one: "recent").
PACK_SORTS = ("relevance", "installs", "recent", "price", "quality", "likes")
BROWSE_LIMIT = 1000
#: A hit's snippet: the first characters of the memory (a fixed prefix, whatever the query).
SNIPPET = 240


@dataclass(frozen=True)
class SearchFilters:
    memory_type: str | None = None
    license: str | None = None
    price: str | None = None  # "free" | "paid"
    base_model: str | None = None
    namespace: str | None = None
    pack: str | None = None  # "namespace/name"
    #: One version, current or not (internal: the registry's evaluation run; no API field).
    version_id: int | None = None


@dataclass(frozen=True)
class MemoryHit:
    pack: str
    version: str
    cube_id: str
    record_id: str
    memory_type: str
    snippet: str
    text: str | None
    tags: list[str]
    license: str
    paid: bool
    score: float


@dataclass(frozen=True)
class PackHit:
    pack: str
    version: str
    title: str
    description: str
    license: str
    price_amount_minor: int
    price_currency: str
    memory_types: list[str]
    tags: list[str]
    downloads: int
    score: float
    likes: int = 0
    quality: float | None = None  # recall@5 measured by the registry (None: no questions)
    quality_questions: int = 0
    base_models: list[str] = field(default_factory=list)
    published_at: datetime | None = None


@dataclass(frozen=True)
class SearchPage:
    results: list[Any]
    page: int
    page_size: int
    total: int
    has_next: bool
    extra: dict[str, Any] = field(default_factory=dict)


def query_vector(text: str) -> np.ndarray:
    """The query's embedding, in the vector space of the index (compute once, pass to both).

    Cached and batched (``query_embedding``): a repeated query costs no forward pass."""
    return default_embedder().vector(text)


def _visible(actor: Actor, prefix: str) -> Q:
    public = Q(**{f"{prefix}private": False})
    if actor.user is None or not actor.can_read_with_credentials():
        return public
    mine = Membership.objects.filter(user=actor.user).values("namespace_id")
    return public | Q(**{f"{prefix}namespace_id__in": mine})


def _filtered(qs: QuerySet[Any], filters: SearchFilters, v: str) -> QuerySet[Any]:
    """Apply filters; ``v`` is the path to the PackVersion (``"version__"``)."""
    if filters.license:
        qs = qs.filter(**{f"{v}license__iexact": filters.license})
    if filters.price == "free":
        qs = qs.filter(**{f"{v}price_amount_minor": 0})
    elif filters.price == "paid":
        qs = qs.filter(**{f"{v}price_amount_minor__gt": 0})
    if filters.base_model:
        qs = qs.filter(**{f"{v}base_models__contains": [filters.base_model]})
    if filters.namespace:
        qs = qs.filter(**{f"{v}pack__namespace__name": filters.namespace})
    if filters.pack:
        namespace, _, name = filters.pack.partition("/")
        qs = qs.filter(**{f"{v}pack__namespace__name": namespace, f"{v}pack__name": name})
    return qs


def vector_distance(vector: Any) -> CosineDistance:
    """Cosine distance of a row's embedding to ``vector``, in the half precision the HNSW
    indexes are built on (``models.embedding_half``): the one expression they serve."""
    return CosineDistance(embedding_half(), HalfVector(np.asarray(vector, dtype=np.float32)))


def _vector_leg(qs: QuerySet[Any], vector: Any, candidates: int) -> Leg:
    """Nearest neighbours (the HNSW index serves the ORDER BY); the similarity floor is
    applied after the LIMIT, in the fusion, so the index keeps serving it."""
    floor = float(settings.MEMSTORE_SEARCH_MIN_SIMILARITY)
    neighbours = (
        qs.filter(embedding__isnull=False)
        .annotate(distance=vector_distance(vector))
        .order_by("distance")
        .values("id", "distance")[:candidates]
    )
    if floor <= 0:
        return Leg(neighbours, "distance ASC, id")
    return Leg(neighbours, "distance ASC, id", "1.0::float8 - distance >= %s", (floor,))


def _text_leg(qs: QuerySet[Any], query: str, candidates: int) -> Leg:
    tsquery = SearchQuery(query, search_type="websearch", config="english")
    matches = (
        qs.filter(search_vector=tsquery)
        .annotate(rank=SearchRank(F("search_vector"), tsquery))
        .order_by("-rank", "id")
        .values("id", "rank")[:candidates]
    )
    return Leg(matches, "rank DESC, id")


def _readable_packs(actor: Actor) -> set[int]:
    """The packs whose paid text ``actor`` may read: its namespaces', or bought (one query)."""
    if actor.user is None or not actor.can_read_with_credentials():
        return set()
    mine = Membership.objects.filter(user=actor.user).values("namespace_id")
    owned = Pack.objects.filter(namespace_id__in=mine).values_list("pk", flat=True)
    bought = active_entitlements(user=actor.user).values_list("pack_id", flat=True)
    return set(owned.union(bought))


def _matchable(qs: QuerySet[Any], readable: set[int]) -> QuerySet[Any]:
    """The memories a reader's query may match and rank: free packs', the paid packs'
    they may read, and of other paid packs only the previews the pack page shows in full.

    Filtered before ranking, so a paid memory a stranger may not read moves nobody's
    rank: its words and its vector are no oracle (README, "Search and paid packs")."""
    public = Q(version__price_amount_minor=0) | Q(preview=True, text_chars__lte=PREVIEW_CHARS)
    if readable:
        public |= Q(version__pack_id__in=readable)
    matchable: QuerySet[Any] = qs.alias(text_chars=Length("text")).filter(public)
    return matchable


def _snippet(text: str, paid: bool) -> tuple[str, str | None]:
    """A hit's snippet and text: a fixed prefix, never a window chosen by the query.

    ``paid`` (a paid pack the reader may not read) only reaches here for a preview memory
    the pack page shows in full; it gets the same prefix and no ``text``."""
    short = text if len(text) <= SNIPPET else text[:SNIPPET].rstrip() + "…"
    return short, None if paid else text


def _page(fused: list[tuple[int, float]], page: int, page_size: int) -> list[tuple[int, float]]:
    start = (page - 1) * page_size
    return fused[start : start + page_size]


def _memory_legs(
    actor: Actor, query: str, filters: SearchFilters, vector: Any, candidates: int
) -> tuple[list[Leg], set[int]]:
    """The two ranked lists over the memories ``actor`` may match, and its readable packs."""
    qs = IndexedMemory.objects.filter(_visible(actor, "version__pack__"))
    if filters.version_id is not None:
        qs = qs.filter(version_id=filters.version_id)
    else:
        qs = qs.filter(version__search_document__current=True)
    if filters.memory_type:
        qs = qs.filter(memory_type=filters.memory_type)
    readable = _readable_packs(actor)
    qs = _matchable(_filtered(qs, filters, "version__"), readable)
    if vector is None:
        vector = query_vector(query)
    return [_vector_leg(qs, vector, candidates), _text_leg(qs, query, candidates)], readable


#: Columns of a hit's row that building the page never reads.
_HIT_DEFERRED = (
    "embedding",
    "version__manifest",
    "version__manifest_bytes",
    "version__description",
)


def memories_search(
    *,
    actor: Actor,
    query: str,
    filters: SearchFilters = SearchFilters(),
    page: int = 1,
    page_size: int = 10,
    candidates: int = CANDIDATES,
    vector: Any = None,
) -> SearchPage:
    """Hybrid search over the memories of the current version of visible packs."""
    legs, readable = _memory_legs(actor, query, filters, vector, max(candidates, page * page_size))
    fused = _fusion.fused(legs)
    chosen = _page(fused, page, page_size)
    # Not the hits' vectors (384 floats each, parsed from text) nor their versions'
    # manifests: a page shows neither, and they were most of the rows' bytes.
    rows = {
        m.pk: m
        for m in IndexedMemory.objects.select_related("version__pack__namespace")
        .defer(*_HIT_DEFERRED)
        .filter(pk__in=[pk for pk, _ in chosen])
    }
    results: list[MemoryHit] = []
    for pk, score in chosen:
        memory = rows[pk]
        version = memory.version
        snippet, text = _snippet(memory.text, version.is_paid and version.pack_id not in readable)
        results.append(
            MemoryHit(
                pack=version.pack.full_name,
                version=version.version,
                cube_id=memory.cube_id,
                record_id=memory.record_id,
                memory_type=memory.memory_type,
                snippet=snippet,
                text=text,
                tags=list(memory.tags),
                license=version.license,
                paid=version.is_paid,
                score=round(score, 6),
            )
        )
    return SearchPage(
        results=results,
        page=page,
        page_size=page_size,
        total=len(fused),
        has_next=len(fused) > page * page_size,
    )


def _sort_key(sort: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """Best first; ties keep the relevance order (the caller's stable sort)."""
    if sort == "installs":
        return (-row["downloads"],)
    if sort == "recent":
        return (-row["published_at"].timestamp(),)
    if sort == "price":
        return (row["price"],)
    if sort == "quality":
        quality = row["quality"]
        return (quality is None, -(quality or 0.0), -row["questions"])
    if sort == "likes":
        return (-row["likes"],)
    return ()


def _signals(doc_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What sorting and the hits show besides relevance, per pack document, in one query."""
    rows = (
        PackDocument.objects.filter(pk__in=doc_ids)
        .annotate(likes=Count("pack__likes", distinct=True))
        .values(
            "pk",
            "likes",
            downloads=F("pack__download_count"),
            published_at=F("version__published_at"),
            price=F("version__price_amount_minor"),
            quality=F("version__evaluation__recall_at_5"),
            questions=F("version__evaluation__questions"),
        )
    )
    return {row["pk"]: {**row, "questions": row["questions"] or 0} for row in rows}


def _pack_candidates(
    actor: Actor,
    qs: QuerySet[Any],
    query: str,
    filters: SearchFilters,
    candidates: int,
    vector: Any,
) -> list[tuple[int, float]]:
    """Pack documents fused from three rankings (or every match, when there is no query).

    The third list: packs in the order of their best memory among the first
    ``candidates`` fused memory hits (the same memory search, in the same statement)."""
    if not query.strip():
        return [(pk, 0.0) for pk in qs.order_by("-id").values_list("id", flat=True)[:BROWSE_LIMIT]]
    if vector is None:
        vector = query_vector(query)
    memory_legs, _ = _memory_legs(actor, query, filters, vector, max(CANDIDATES, candidates))
    ctes, params, memory_ranks = _fusion.ranked_ctes("m", memory_legs)
    pack_ctes, pack_params, pack_ranks = _fusion.ranked_ctes(
        "p", [_vector_leg(qs, vector, candidates), _text_leg(qs, query, candidates)]
    )
    docs_sql, docs_params = qs.values("id", "pack_id").query.sql_with_params()
    ctes += pack_ctes
    ctes += [
        f"m_fused AS ({_fusion.fusion_select('m', memory_ranks)}"
        f" ORDER BY score DESC, id LIMIT {int(candidates)})",
        "m_pos AS (SELECT id, row_number() OVER (ORDER BY score DESC, id) AS pos FROM m_fused)",
        f"docs AS MATERIALIZED ({docs_sql})",
        # Identifiers are our tables'; every value travels as a parameter.
        "m_packs AS (SELECT docs.id, row_number() OVER (ORDER BY min(m_pos.pos)) AS r"  # noqa: S608
        f" FROM m_pos JOIN {IndexedMemory._meta.db_table} mem ON mem.id = m_pos.id"
        f" JOIN {PackVersion._meta.db_table} ver ON ver.id = mem.version_id"
        " JOIN docs ON docs.pack_id = ver.pack_id GROUP BY docs.id)",
    ]
    params += pack_params + list(docs_params)
    select = _fusion.fusion_select("p", [*pack_ranks, "m_packs"]) + " ORDER BY score DESC, id"
    return _fusion.run(ctes, params, select)


def packs_search(
    *,
    actor: Actor,
    query: str,
    filters: SearchFilters = SearchFilters(),
    page: int = 1,
    page_size: int = 10,
    candidates: int = CANDIDATES,
    vector: Any = None,
    sort: str = "relevance",
) -> SearchPage:
    """Hybrid search over pack summaries (title, description, keywords), then ``sort``.

    An empty ``query`` lists every visible pack that passes the filters (browsing);
    ``sort`` then defaults to "recent" (relevance means nothing without a query).
    """
    qs = PackDocument.objects.filter(_visible(actor, "pack__"), current=True)
    if filters.memory_type:
        qs = qs.filter(version__memory_types__contains=[filters.memory_type])
    qs = _filtered(qs, filters, "version__")
    if sort not in PACK_SORTS:
        sort = "relevance"
    if not query.strip() and sort == "relevance":
        sort = "recent"
    fused = _pack_candidates(actor, qs, query, filters, max(candidates, page * page_size), vector)
    signals = _signals([pk for pk, _ in fused])
    if sort != "relevance":
        fused = sorted(fused, key=lambda item: _sort_key(sort, signals[item[0]]))
    chosen = _page(fused, page, page_size)
    rows = {
        d.pk: d
        for d in PackDocument.objects.select_related("version__pack__namespace").filter(
            pk__in=[pk for pk, _ in chosen]
        )
    }
    results = []
    for pk, score in chosen:
        version = rows[pk].version
        signal = signals[pk]
        results.append(
            PackHit(
                pack=version.pack.full_name,
                version=version.version,
                title=version.title,
                description=version.description,
                license=version.license,
                price_amount_minor=version.price_amount_minor,
                price_currency=version.price_currency,
                memory_types=list(version.memory_types),
                tags=list(version.tags),
                downloads=version.pack.download_count,
                score=round(score, 6),
                likes=signal["likes"],
                quality=signal["quality"],
                quality_questions=signal["questions"],
                base_models=list(version.base_models),
                published_at=version.published_at,
            )
        )
    return SearchPage(
        results=results,
        page=page,
        page_size=page_size,
        total=len(fused),
        has_next=len(fused) > page * page_size,
        extra={"sort": sort},
    )
