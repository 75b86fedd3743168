"""A small search corpus for the search tests: packs published for real, indexed with a
deterministic bag-of-words embedder (no model), so vector similarity follows shared words.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

from memstore.accounts.actor import Actor
from memstore.packs.models import PackVersion
from memstore.packs.services import FREE, Price, pack_publish
from memstore.search import services as search_services
from memstore.testing.packs import build_pack


def fake_vector(text: str) -> np.ndarray:
    """Sum of one fixed random direction per word, L2-normalised (words shared: similar)."""
    total = np.zeros(384, dtype=np.float64)
    for word in text.lower().split():
        word = word.strip(".,;:!?")
        if word:
            total += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(384)
    if not total.any():
        total[0] = 1.0
    vector: np.ndarray = (total / np.linalg.norm(total)).astype(np.float32)
    return vector


def indexed_pack(
    tmp_path: Path,
    user: Any,
    key: Any,
    *,
    name: str,
    memories: list[tuple[str, str]],
    price: int = 0,
    description: str = "",
) -> PackVersion:
    """Publish ``name`` with ``memories`` ((record id, text), in index order) and index them."""
    version = pack_publish(
        actor=Actor(user=user, scopes=None),
        pack_file=build_pack(
            tmp_path,
            name=name,
            keys=[key],
            memories=[text for _, text in memories],
            description=description,
        ),
        price=Price(price, "EUR") if price else FREE,
    )
    rows: list[tuple[str, str, list[str], str]] = [
        ("notes", record, [], text) for record, text in memories
    ]
    search_services.memories_index_replace(
        version=version, rows=rows, vectors=np.stack([fake_vector(t) for _, t in memories])
    )
    doc = search_services.pack_document_text(version)
    search_services.pack_document_replace(version=version, text=doc, vector=fake_vector(doc))
    search_services.pack_document_refresh(pack_id=version.pack_id)
    return version
