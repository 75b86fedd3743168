"""The search index: one row per plaintext memory, one document per pack.

Each ingested version has a ``PackDocument``; the one marked ``current`` is
the version of its pack that search shows (the highest ingested version that
is neither yanked nor deleted). Memories of other versions stay indexed but
are not returned. ``IndexedMemory.preview`` marks the memories a paid pack
shows before purchase, the only ones search matches for a stranger.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models.functions import Cast
from pgvector.django import HalfVectorField, HnswIndex, VectorField

from ..packs.models import Pack, PackVersion
from .embedding import DIMENSION

EMBEDDING_DIM = DIMENSION  # the embedder's width (the migrations spell out 384)
# Shipped HNSW settings (the benchmarks in bench/ measure recall at these).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


def embedding_half() -> Cast:
    """The expression the HNSW indexes are built on and searches order by: the stored
    float32 vector cast to half precision (pgvector's ``halfvec``).

    Why: the graph holds a copy of every vector, and its pages are what a search reads;
    half precision halves the index (195 -> 112 MB at 100k memories) and the database's
    time per vector-leg query about halved with it, at the same recall@10 (0.985 vs 0.986
    at ef_search 100; ``bench/registry_bench.py``). The column keeps float32, so exact
    uses of the vectors (evaluation, re-ranking) lose nothing. Searches must use this
    same expression, or the planner cannot use the index (``selectors._vector_leg``).
    """
    return Cast("embedding", HalfVectorField(dimensions=EMBEDDING_DIM))


def _hnsw(name: str) -> HnswIndex:
    return HnswIndex(
        OpClass(embedding_half(), name="halfvec_cosine_ops"),
        name=name,
        m=HNSW_M,
        ef_construction=HNSW_EF_CONSTRUCTION,
    )


class IndexedMemory(models.Model):
    version = models.ForeignKey(PackVersion, on_delete=models.CASCADE, related_name="memories")
    cube_id = models.CharField(max_length=100)
    record_id = models.CharField(max_length=200)
    memory_type = models.CharField(max_length=20, default="plaintext")
    text = models.TextField()
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    embedding = VectorField(dimensions=EMBEDDING_DIM, null=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("text", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    #: One of the version's preview memories (``packs.cards.preview_records``): the pack
    #: page shows it before purchase, so search may match it for anyone.
    preview = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "cube_id", "record_id"], name="uniq_indexed_memory"
            ),
        ]
        indexes = [
            _hnsw("memory_embedding_half_hnsw"),
            GinIndex(fields=["search_vector"], name="memory_search_vector_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.record_id} in version {self.version_id}"


class PackDocument(models.Model):
    """A searchable summary of one ingested version; ``current`` marks the one search shows."""

    version = models.OneToOneField(
        PackVersion, on_delete=models.CASCADE, related_name="search_document"
    )
    pack = models.ForeignKey(Pack, on_delete=models.CASCADE, related_name="search_documents")
    current = models.BooleanField(default=False)
    text = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIM, null=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("text", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pack"], condition=models.Q(current=True), name="one_current_doc_per_pack"
            ),
        ]
        indexes = [
            _hnsw("packdoc_embedding_half_hnsw"),
            GinIndex(fields=["search_vector"], name="packdoc_search_vector_gin"),
        ]

    def __str__(self) -> str:
        return f"document of version {self.version_id}"
