"""Ingested packs, then pack search: it sorts by installs, recency, price, measured quality
and likes, and browses without a query; the API validates the sort. (Here, not under search:
search may not import ingest.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from rest_framework.test import APIClient

from memstore.accounts.actor import ANONYMOUS, Actor
from memstore.accounts.models import User
from memstore.ingest.services import ingest_run
from memstore.packs.models import Pack, PackLike, PackVersion, VersionEvaluation
from memstore.packs.services import Price, pack_publish
from memstore.search.selectors import SearchFilters, packs_search
from memstore.testing.factories import UserFactory
from memstore.testing.packs import build_pack

pytestmark = [pytest.mark.model, pytest.mark.django_db]


def new_user() -> User:
    return cast(User, UserFactory())  # type: ignore[no-untyped-call]


@pytest.fixture
def three(tmp_path: Path, alice: Any, alice_actor: Actor, local_storage: Any) -> list[str]:
    """acme/a (old, 1 install, 3 EUR, quality 0.4, 2 likes), b (9 installs, free, 0.9),
    c (newest, 5 installs, 1 EUR, no questions, 1 like)."""
    _, _, key = alice
    specs = [("a", 1, 300, 0.4, 2), ("b", 9, 0, 0.9, 0), ("c", 5, 100, None, 1)]
    for i, (name, installs, price, quality, likes) in enumerate(specs):
        version = pack_publish(
            actor=alice_actor,
            pack_file=build_pack(
                tmp_path, name=f"acme/{name}", keys=[key], memories=[f"Tide tables, part {name}."]
            ),
            price=Price(price, "EUR") if price else Price(),
            storage=local_storage,
        )
        ingest_run(version_id=version.pk, storage=local_storage)
        PackVersion.objects.filter(pk=version.pk).update(
            published_at=version.published_at + timedelta(days=i)
        )
        Pack.objects.filter(pk=version.pack_id).update(download_count=installs)
        if quality is not None:
            VersionEvaluation.objects.create(
                version=version, questions=4, recall_at_5=quality, mrr=0.5
            )
        for _ in range(likes):
            PackLike.objects.create(user=new_user(), pack_id=version.pack_id)
    return ["acme/a", "acme/b", "acme/c"]


def order(sort: str, query: str = "", **filters: Any) -> list[str]:
    page = packs_search(actor=ANONYMOUS, query=query, sort=sort, filters=SearchFilters(**filters))
    return [hit.pack for hit in page.results]


def test_each_sort_orders_the_catalogue(three: list[str]) -> None:
    assert order("installs") == ["acme/b", "acme/c", "acme/a"]
    assert order("recent") == ["acme/c", "acme/b", "acme/a"]
    assert order("relevance") == order("recent")  # no query: relevance means newest
    assert order("price") == ["acme/b", "acme/c", "acme/a"]
    assert order("quality") == ["acme/b", "acme/a", "acme/c"]  # unmeasured last
    assert order("likes") == ["acme/a", "acme/c", "acme/b"]
    assert order("installs", price="paid") == ["acme/c", "acme/a"]
    assert order("likes", query="tide tables") == ["acme/a", "acme/c", "acme/b"]


def test_hits_carry_signals_and_the_api_sorts_and_refuses_unknown_sorts(three: list[str]) -> None:
    client = APIClient()
    body = client.get("/api/v1/search/packs", {"sort": "quality"}).json()
    assert body["sort"] == "quality"
    first = body["results"][0]
    assert (first["pack"], first["quality"], first["quality_questions"]) == ("acme/b", 0.9, 4)
    assert first["downloads"] == 9 and first["likes"] == 0
    assert body["results"][2]["quality"] is None
    bad = client.get("/api/v1/search/packs", {"sort": "random"})
    assert bad.status_code == 400
