"""Writes to the search index leave it fast to read: the full-text index is flushed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from memstore.search.models import IndexedMemory
from memstore.search.services import TEXT_INDEX
from memstore.testing.factories import publisher

from .corpus import fake_vector, indexed_pack


def _pending_pages() -> int:
    """Flush the pending list by hand and say how many pages it held (0: already flushed)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [TEXT_INDEX])
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_an_indexed_version_leaves_no_pending_full_text_entries(
    tmp_path: Path, local_storage: Any
) -> None:
    user, _, key = publisher("acme", "alice")
    memories = [(f"m{i}", f"tomatoes number {i} want sun and water") for i in range(50)]
    version = indexed_pack(tmp_path, user, key, name="acme/garden", memories=memories)
    assert _pending_pages() == 0
    # The control: rows written past the service leave entries pending, so the check
    # above can fail.
    IndexedMemory.objects.bulk_create(
        IndexedMemory(
            version=version,
            cube_id="raw",
            record_id=str(i),
            text=f"radishes number {i}",
            embedding=fake_vector("radishes"),
        )
        for i in range(50)
    )
    assert _pending_pages() > 0
