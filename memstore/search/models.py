"""The search index: one row per plaintext memory, one document per pack.

Each ingested version has a ``PackDocument``; the one marked ``current`` is
the version of its pack that search shows (the highest ingested version that
is neither yanked nor deleted). Memories of other versions stay indexed but
are not returned. ``IndexedMemory.preview`` marks the memories a paid pack
shows before purchase, the only ones search matches for a stranger.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from ..packs.models import Pack, PackVersion
from .embedding import DIMENSION

EMBEDDING_DIM = DIMENSION  # the embedder's width (the migrations spell out 384)
# Shipped HNSW settings (the benchmarks in bench/ measure recall at these).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


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
            HnswIndex(
                name="memory_embedding_hnsw",
                fields=["embedding"],
                m=HNSW_M,
                ef_construction=HNSW_EF_CONSTRUCTION,
                opclasses=["vector_cosine_ops"],
            ),
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
            HnswIndex(
                name="packdoc_embedding_hnsw",
                fields=["embedding"],
                m=HNSW_M,
                ef_construction=HNSW_EF_CONSTRUCTION,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search_vector"], name="packdoc_search_vector_gin"),
        ]

    def __str__(self) -> str:
        return f"document of version {self.version_id}"
