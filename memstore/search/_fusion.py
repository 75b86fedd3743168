"""Reciprocal rank fusion in one SQL statement: every ranking a search fuses, one round trip.

The selectors build each candidate list as a Django queryset (so filters and visibility
stay ORM code); this module compiles them into ``MATERIALIZED`` CTEs and fuses them in
PostgreSQL: score = sum over lists of 1 / (60 + rank), best first, ties by id. The
HNSW settings go in the same string (``SET LOCAL`` before the ``WITH``), which
PostgreSQL runs as one implicit transaction when there is no outer one: a search is one
round trip instead of six (begin, two settings, the vector leg, commit, the text leg).
Several statements in one ``execute`` need psycopg 3's client-side binding, Django's
default (the ``server_side_binding`` database option would refuse them); safe behind a
transaction pooler too, since both ``SET LOCAL`` settings end with their transaction.

The vector leg is re-sorted by distance inside SQL (``hnsw.iterative_scan =
relaxed_order`` may return neighbours slightly out of order; pgvector's advice is to
re-sort in a materialised CTE). The sums add the lists in the order given, in
float8, so the scores are the same doubles the Python fusion (``fuse``) computes.

Only our own identifiers and the legs' compiled SQL are formatted into the string
(hence the ``noqa: S608``); every value travels as a parameter.

Not here: which rows a reader may see or match (``selectors``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

__all__ = ["RRF_K", "Leg", "fuse", "fused", "fused_statement"]

RRF_K = 60


@dataclass(frozen=True)
class Leg:
    """One ranked list: ``qs`` selects ``id`` and ``key``; rank is by ``order`` (SQL)."""

    qs: QuerySet[Any]
    order: str  # e.g. "distance ASC, id" over the leg's columns
    where: str = ""  # kept rows, e.g. "distance <= 0.75" (SQL over the leg's columns)
    where_params: tuple[Any, ...] = ()


def fuse(*rankings: list[int]) -> list[tuple[int, float]]:
    """Reciprocal rank fusion in Python (the reference the SQL agrees with)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, pk in enumerate(ranking, start=1):
            scores[pk] = scores.get(pk, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _compiled(qs: QuerySet[Any]) -> tuple[str, list[Any]]:
    sql, params = qs.query.get_compiler(using=qs.db).as_sql()
    return sql, list(params)


def ranked_ctes(prefix: str, legs: list[Leg]) -> tuple[list[str], list[Any], list[str]]:
    """CTEs ``<prefix>_leg<i>`` (the rows) and ``<prefix>_rank<i>`` (id, r); their names."""
    ctes: list[str] = []
    params: list[Any] = []
    names: list[str] = []
    for i, leg in enumerate(legs):
        sql, leg_params = _compiled(leg.qs)
        where = f"WHERE {leg.where}" if leg.where else ""
        ctes.append(f"{prefix}_leg{i} AS MATERIALIZED ({sql})")
        ctes.append(
            f"{prefix}_rank{i} AS (SELECT id, row_number() OVER (ORDER BY {leg.order}) AS r"  # noqa: S608
            f" FROM {prefix}_leg{i} {where})"
        )
        params += leg_params + list(leg.where_params)
        names.append(f"{prefix}_rank{i}")
    return ctes, params, names


def fusion_select(prefix: str, ranks: list[str]) -> str:
    """SELECT id, score over the named rank CTEs (lists summed in the order given)."""
    ids = " UNION ".join(f"SELECT id FROM {name}" for name in ranks)  # noqa: S608
    terms = " + ".join(
        f"COALESCE(1.0::float8 / ({RRF_K} + {name}.r), 0.0::float8)" for name in ranks
    )
    joins = " ".join(f"LEFT JOIN {name} ON {name}.id = {prefix}_ids.id" for name in ranks)
    return f"SELECT {prefix}_ids.id, {terms} AS score FROM ({ids}) AS {prefix}_ids {joins}"  # noqa: S608


def run(ctes: list[str], params: list[Any], select: str) -> list[tuple[int, float]]:
    """Run ``WITH ctes select`` with the HNSW settings, in one round trip."""
    ef = int(settings.MEMSTORE_HNSW_EF_SEARCH)
    sql = (
        f"SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.iterative_scan = relaxed_order; "
        f"WITH {', '.join(ctes)} {select}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while cursor.description is None and cursor.nextset():
            pass  # past the two SETs to the SELECT's rows
        return [(int(pk), float(score)) for pk, score in cursor.fetchall()]


def fused_statement(legs: list[Leg]) -> tuple[list[str], list[Any], str]:
    """The CTEs, parameters and SELECT of :func:`fused` (what :func:`run` sends after the
    HNSW settings), for callers that need the statement itself, such as a query plan."""
    ctes, params, ranks = ranked_ctes("f", legs)
    return ctes, params, fusion_select("f", ranks) + " ORDER BY score DESC, id"


def fused(legs: list[Leg]) -> list[tuple[int, float]]:
    """The fused ranking of ``legs``: (id, score), best first, ties by id."""
    return run(*fused_statement(legs))
