"""The keyword leg ranks only memories holding a rarer phrase (runtime/engine/keyword.py),
with the same BM25 scores as one OR query over every phrase."""

from __future__ import annotations

import pytest

from runtime.engine.engine import Engine
from runtime.engine.keyword import match_queries, split
from runtime.engine.lifecycle import RETRIEVABLE
from runtime.engine.retrieval import fts_terms
from runtime.engine.types import Filters


def test_split_takes_the_rarest_phrases_up_to_the_budget() -> None:
    rows = {"a": 900, "b": 5, "c": 40, "d": 3000}
    assert split(["a", "b", "c", "d"], rows, budget=100) == (["b", "c"], ["a", "d"])
    assert split(["a", "d"], rows, budget=100) == (["a"], ["d"])  # always one
    assert split(["b", "c"], rows, budget=100) == (["b", "c"], [])
    assert match_queries(["b"], []) == ["b"]
    assert match_queries(["b", "c"], ["a"]) == ["(b OR c) NOT (a)", "(b OR c) AND (a)"]


@pytest.fixture
def corpus(engine: Engine) -> Engine:
    """Many memories about deploys, few about the payments ledger."""
    for i in range(40):
        engine.add(f"deploy note {i}: the service was deployed and the deploy went fine")
    engine.add("payments ledger reconciliation after the deploy")
    engine.add("ledger export for payments")
    engine.add("the ledger was closed")
    return engine


def _single_query(engine: Engine, phrases: list[str], limit: int) -> list[tuple[int, float]]:
    sql = (
        "SELECT rowid, bm25(memories_fts) FROM memories_fts WHERE memories_fts MATCH ? "
        "ORDER BY 2, 1 LIMIT ?"
    )
    rows = engine.store.db.execute(sql, (" OR ".join(phrases), limit)).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def test_scores_are_those_of_one_query_over_every_phrase(corpus: Engine) -> None:
    phrases = fts_terms("payments ledger deploy")
    counts = corpus.store.phrase_rows(phrases)
    assert counts['"deploy"'] > counts['"ledger"'] > counts['"payments"'] > 0
    # Rank only rows holding "payments" or "ledger": "deploy" is common.
    got = corpus.store.keyword_in(phrases, Filters(), tuple(RETRIEVABLE), 10, rare_rows=5)
    want = _single_query(corpus, phrases, 50)
    assert len(got) == 3  # the three ledger memories; the deploy-only ones are not ranked
    assert got == want[:3]  # they are the single query's best, with its scores


def test_within_the_budget_one_query_ranks_every_match(corpus: Engine) -> None:
    phrases = fts_terms("payments ledger deploy")
    got = corpus.store.keyword_in(phrases, Filters(), tuple(RETRIEVABLE), 50)
    assert len(got) == 43  # 46 phrase rows: within the default budget, deploy-only rows too
    assert got == _single_query(corpus, phrases, 50)


def test_a_query_of_common_words_only_still_finds_them(corpus: Engine) -> None:
    phrases = fts_terms("deploy service")
    got = corpus.store.keyword_in(phrases, Filters(), tuple(RETRIEVABLE), 5, rare_rows=5)
    assert got == _single_query(corpus, phrases, 5)


def test_phrase_counts_follow_new_memories(corpus: Engine) -> None:
    assert corpus.store.phrase_rows(['"zebra"']) == {'"zebra"': 0}
    corpus.add("a zebra crossing")
    assert corpus.store.phrase_rows(['"zebra"']) == {'"zebra"': 1}
