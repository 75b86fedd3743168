"""The HNSW indexes move to half precision (``models.embedding_half``).

The new index is built before the old one is dropped, both without blocking writes
(``CONCURRENTLY``, hence ``atomic = False``): a registry keeps publishing and searching
while it builds (minutes per million memories; ``docker/README.md``, "Capacity"), and
there is never a moment with no vector index. Searches switch when the code does: they
order by the half-precision expression, which only the new index serves.
"""

from django.contrib.postgres.indexes import OpClass
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations
from django.db.models.functions import Cast
from pgvector.django import HalfVectorField, HnswIndex


def _hnsw(name: str) -> HnswIndex:
    return HnswIndex(
        OpClass(Cast("embedding", HalfVectorField(dimensions=384)), name="halfvec_cosine_ops"),
        name=name,
        m=16,
        ef_construction=64,
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("search", "0002_indexedmemory_preview"),
    ]

    operations = [
        AddIndexConcurrently("indexedmemory", _hnsw("memory_embedding_half_hnsw")),
        RemoveIndexConcurrently("indexedmemory", "memory_embedding_hnsw"),
        AddIndexConcurrently("packdocument", _hnsw("packdoc_embedding_half_hnsw")),
        RemoveIndexConcurrently("packdocument", "packdoc_embedding_hnsw"),
    ]
