"""Issue 17 item 1: hybrid fusion in one SQL statement gives the results the two-query
fusion in Python gave (the code before it, kept here as the reference).

A small corpus of free packs (no paid text, so the reader's rights change nothing),
indexed with the bag-of-words fake embedder; every query is checked for hits, order,
scores and totals, for memories and for packs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import F, QuerySet

from memstore.accounts.actor import ANONYMOUS
from memstore.search import _fusion
from memstore.search._fusion import fuse
from memstore.search.models import IndexedMemory, PackDocument
from memstore.search.selectors import (
    SearchFilters,
    memories_search,
    packs_search,
    vector_distance,
)
from memstore.testing.factories import publisher

from .corpus import fake_vector, indexed_pack

pytestmark = pytest.mark.django_db

TOPICS = {
    "acme/keys": [
        "Rotate the signing keys every quarter and revoke the old ones.",
        "Keep the root key offline, in a safe, with two people present.",
        "A leaked token must be revoked at once; rotate the keys after.",
        "Signing keys live in the namespace settings of the registry.",
    ],
    "acme/garden": [
        "Water tomatoes in the morning, never the leaves.",
        "Prune the roses in late winter, before the buds open.",
        "Compost needs green and brown layers, kept moist.",
        "Tomatoes like sun; rotate the beds every year.",
    ],
    "acme/kitchen": [
        "Knead the dough ten minutes, then rest it under a cloth.",
        "A sharp knife is safer than a blunt one.",
        "Rest the meat before slicing it, keys to a juicy roast.",
        "Salt the water for pasta like the sea.",
    ],
}
QUERIES = [
    "rotate keys",
    "tomatoes",
    "rest",
    "signing keys revoke",
    "water",
    "knife safe",
    "nothing like this at all",
    "keys OR roses",
]


@pytest.fixture
def corpus(tmp_path: Path, local_storage: Any) -> None:
    user, _, key = publisher("acme", "alice")
    for name, texts in TOPICS.items():
        memories = [(f"m{i}", t) for i, t in enumerate(texts)]
        indexed_pack(tmp_path, user, key, name=name, memories=memories, description=name)


def _old_ranked_ids(qs: QuerySet[Any], query: str, vector: Any, candidates: int) -> Any:
    """The two legs as the selectors ran them before (two queries, floor in Python)."""
    tsquery = SearchQuery(query, search_type="websearch", config="english")
    floor = float(settings.MEMSTORE_SEARCH_MIN_SIMILARITY)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [int(settings.MEMSTORE_HNSW_EF_SEARCH)])
            cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        neighbours = (
            qs.filter(embedding__isnull=False)
            .annotate(distance=vector_distance(vector))
            .order_by("distance")
            .values_list("id", "distance")[:candidates]
        )
        by_vector = [pk for pk, d in neighbours if floor <= 0 or 1.0 - d >= floor]
    by_text = list(
        qs.filter(search_vector=tsquery)
        .annotate(rank=SearchRank(F("search_vector"), tsquery))
        .order_by("-rank", "id")
        .values_list("id", flat=True)[:candidates]
    )
    return by_vector, by_text


def _old_memories(query: str) -> list[tuple[int, float]]:
    qs = IndexedMemory.objects.filter(
        version__pack__private=False, version__search_document__current=True
    )
    return fuse(*_old_ranked_ids(qs, query, fake_vector(query), 100))


def _old_packs(query: str) -> list[tuple[int, float]]:
    qs = PackDocument.objects.filter(pack__private=False, current=True)
    by_vector, by_text = _old_ranked_ids(qs, query, fake_vector(query), 100)
    docs = {f"{d.pack.full_name}": d.pk for d in qs.select_related("pack__namespace")}
    memory_packs: list[int] = []
    for pk, _ in _old_memories(query)[:100]:
        doc = docs[IndexedMemory.objects.get(pk=pk).version.pack.full_name]
        if doc not in memory_packs:
            memory_packs.append(doc)
    return fuse(by_vector, by_text, memory_packs)


@pytest.mark.parametrize("floor", [0.25, 0.0])
def test_one_statement_fusion_agrees_with_the_two_query_fusion(
    corpus: None, settings: Any, floor: float
) -> None:
    settings.MEMSTORE_SEARCH_MIN_SIMILARITY = floor
    for query in QUERIES:
        vector = fake_vector(query)
        old = _old_memories(query)
        new = memories_search(actor=ANONYMOUS, query=query, vector=vector, page_size=100)
        by_pk = {
            (m.version.pack.full_name, m.record_id): m.pk
            for m in IndexedMemory.objects.select_related("version__pack__namespace")
        }
        assert new.total == len(old), query
        assert [(by_pk[(h.pack, h.record_id)], h.score) for h in new.results] == [
            (pk, round(score, 6)) for pk, score in old
        ], query
        old_packs = _old_packs(query)
        packs = packs_search(actor=ANONYMOUS, query=query, vector=vector, page_size=100)
        names = {d.pk: d.pack.full_name for d in PackDocument.objects.select_related("pack")}
        assert [(h.pack, h.score) for h in packs.results] == [
            (names[pk], round(score, 6)) for pk, score in old_packs
        ], query


def test_filters_and_paging_still_apply_in_the_one_statement(corpus: None) -> None:
    hits = memories_search(
        actor=ANONYMOUS,
        query="rotate",
        vector=fake_vector("rotate"),
        filters=SearchFilters(pack="acme/garden"),
    )
    assert hits.results and {h.pack for h in hits.results} == {"acme/garden"}
    vector = fake_vector("rotate keys")
    first = memories_search(actor=ANONYMOUS, query="rotate keys", vector=vector, page_size=2)
    second = memories_search(
        actor=ANONYMOUS, query="rotate keys", vector=vector, page=2, page_size=2
    )
    everything = memories_search(actor=ANONYMOUS, query="rotate keys", vector=vector, page_size=4)
    assert first.results + second.results == everything.results
    assert first.has_next and first.total == everything.total


@pytest.mark.django_db(transaction=True)
def test_the_hnsw_settings_hold_for_the_statement_only(corpus: None, settings: Any) -> None:
    """Outside a transaction the SETs and the search run as one implicit transaction:
    the search sees them, and the connection is left as it was."""
    settings.MEMSTORE_HNSW_EF_SEARCH = 123
    assert connection.get_autocommit() and not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        before = cursor.fetchone()
    seen = _fusion.run(
        ["x AS (SELECT 1)"], [], "SELECT 1, current_setting('hnsw.ef_search')::float8 FROM x"
    )
    assert seen == [(1, 123.0)]
    hits = memories_search(actor=ANONYMOUS, query="tomatoes", vector=fake_vector("tomatoes"))
    assert hits.results and hits.results[0].pack == "acme/garden"
    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        assert cursor.fetchone() == before != ("123",)


@pytest.mark.parametrize("model", [IndexedMemory, PackDocument])
def test_the_vector_leg_can_be_served_by_the_half_precision_index(
    corpus: None, model: Any
) -> None:
    """The searches order by the very expression the HNSW indexes are built on: were the
    two to drift (a cast, a dimension), every search would silently scan the table."""
    index = {
        IndexedMemory: "memory_embedding_half_hnsw",
        PackDocument: "packdoc_embedding_half_hnsw",
    }
    qs = (
        model.objects.annotate(distance=vector_distance(fake_vector("tomatoes")))
        .order_by("distance")
        .values("id")[:10]
    )
    sql, params = qs.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Index Scan using {index[model]}" in plan, plan
