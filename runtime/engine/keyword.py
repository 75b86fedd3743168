"""Which memories the keyword (BM25) leg of a search ranks: those holding a rarer phrase.

SQLite's FTS5 computes BM25 for every row that matches an ``OR`` query
before it sorts: a query with a few common words ("model", "return",
"value") matches tens of thousands of rows at 100k memories, and scoring
them was most of a search's time (bench/runtime_search.py). :func:`split`
puts the rarest phrases, up to :data:`RARE_ROWS` matching rows in all, in
``rare`` and the others in ``common``; :func:`match_queries` turns the two
into two FTS5 queries that rank only rows holding a rare phrase:

* ``rare`` alone: a row's score from the rare phrases, which is its full
  score when it holds no common phrase;
* ``(rare) AND (common)``: every phrase scored, the row's full BM25 (each
  phrase counted once, with the same IDF as one ``OR`` of them all).

So every score returned is the one the single ``OR`` query gives, and the
best of the two lists is the single query's best among rows holding a
rare phrase. What is given up: rows that hold only common phrases. Their
BM25 is low (a common phrase has a small IDF); at 100k memories, 200
held-out queries (``bench/runtime_search.py``'s ``engine_only_keyword_*``
rows, load average 4-6), the top 10 kept 98.3 % of the single query's and
the top 50 96.3 %, in 5.8-6.6 / 10.0-14.7 ms p50 / p95 instead of
9.6-10.2 / 26-29 ms (three runs). At 10k memories 1 query in 200 is split.
Counting a phrase's rows costs little (FTS5 walks its posting list without
scoring) and is cached until the store's generation changes.

Not here: SQL (:meth:`runtime.engine.store.Store.keyword_in`), choosing the
phrases from the query text (:func:`runtime.engine.retrieval.fts_terms`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["RARE_ROWS", "match_queries", "split"]

#: At most this many matching rows (summed over phrases) are ranked per query,
#: unless the rarest phrase alone matches more.
RARE_ROWS = 5000


def split(
    phrases: Sequence[str], rows: Mapping[str, int], budget: int = RARE_ROWS
) -> tuple[list[str], list[str]]:
    """(rare, common): the rarest phrases while their matching rows add up to ``budget``
    (at least one), and the others, each in query order. ``rows``: rows per phrase."""
    order = sorted(range(len(phrases)), key=lambda i: (rows[phrases[i]], i))
    chosen: set[int] = set()
    total = 0
    for i in order:
        if chosen and total + rows[phrases[i]] > budget:
            break
        chosen.add(i)
        total += rows[phrases[i]]
    rare = [p for i, p in enumerate(phrases) if i in chosen]
    common = [p for i, p in enumerate(phrases) if i not in chosen]
    return rare, common


def match_queries(rare: Sequence[str], common: Sequence[str]) -> list[str]:
    """The FTS5 queries whose best rows, merged, rank the rows holding a rare phrase."""
    first = " OR ".join(rare)
    if not common:
        return [first] if rare else []
    rest = " OR ".join(common)
    return [f"({first}) NOT ({rest})", f"({first}) AND ({rest})"]
