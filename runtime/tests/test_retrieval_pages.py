"""The search reads only the memories it shows: :func:`visible_ranked` over a ranking
chooses exactly what :func:`visible` over every candidate chooses, and counts the same
withheld ones, while decoding a page of rows instead of all of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocol import AccessPolicy
from runtime.engine.engine import Engine
from runtime.engine.lifecycle import RETRIEVABLE
from runtime.engine.retrieval import hybrid, ranked, visible, visible_ranked


@pytest.fixture
def crowded(engine: Engine) -> Engine:
    """60 memories about the same thing; every third is private to bob."""
    for i in range(60):
        access = AccessPolicy("private", ("bob",)) if i % 3 == 0 else None
        kwargs = {"access": access} if access else {}
        engine.add(f"deploy checklist step {i} for the payments service", **kwargs)
    return engine


@pytest.mark.parametrize(
    ("principal", "k"), [("carol", 10), ("bob", 10), ("carol", 1), ("carol", 45)]
)
def test_paged_choice_equals_the_full_one(crowded: Engine, principal: str, k: int) -> None:
    now = datetime.now(UTC)
    options = crowded._rank_options(None, tuple(RETRIEVABLE), 100, True, True, 0.0)
    everything = hybrid("payments deploy checklist", store=crowded.store, **options)
    order = ranked("payments deploy checklist", store=crowded.store, **options)
    assert [c.rowid for c in everything] == [r.rowid for r in order]
    want, want_denied = visible(everything, principal=principal, now=now, k=k)
    got, got_denied = visible_ranked(order, store=crowded.store, principal=principal, now=now, k=k)
    assert [c.memory.id for c in got] == [c.memory.id for c in want]
    assert got_denied == want_denied
    assert (want_denied > 0) == (principal == "carol")  # bob reads his own; carol is refused


def test_a_search_decodes_a_page_not_every_candidate(
    crowded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[int] = []
    by_rowids = crowded.store.by_rowids

    def counting(rowids):  # type: ignore[no-untyped-def]
        read.extend(rowids)
        return by_rowids(rowids)

    monkeypatch.setattr(crowded.store, "by_rowids", counting)
    hits = crowded.search("payments deploy checklist", principal="carol", k=5, record=False)
    assert len(hits) == 5
    assert 0 < len(read) <= 16  # one page, of the 60 candidates
