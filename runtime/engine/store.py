"""The engine's queries over memories, versions and the full-text index.

:class:`Store` is the only place that writes SQL against ``engine.db``
(schema and connection: :mod:`runtime.engine.schema`; installed packs and KV
caches: :mod:`runtime.engine.store_packs`; the audit log and use counters:
:mod:`runtime.engine.store_audit`). Everything else calls its
methods with typed values: symbolic conditions arrive as
:class:`~runtime.engine.types.Filters` plus the lifecycle states to search,
and come back as :class:`~runtime.engine.types.Memory` objects keyed by
``rowid`` (the key of the full-text index and of the vector rows).

Not here: business rules (see :mod:`runtime.engine.engine`), ranking
(:mod:`runtime.engine.retrieval`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from protocol import MemoryType

from ..errors import EngineError
from .keyword import RARE_ROWS, match_queries, split
from .lifecycle import State
from .rows import (
    COLUMNS,
    SNAPSHOT_FIELDS,
    dumps,
    memory_from_snapshot,
    memory_values,
    row_to_memory,
    snapshot_of,
    version_entry,
)
from .store_audit import AuditQueries
from .store_packs import PackQueries
from .types import Filters, Memory, VersionEntry, to_epoch

__all__ = ["SNAPSHOT_FIELDS", "Store", "memory_from_snapshot", "snapshot_of"]

_META_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _where(filters: Filters, states: Sequence[State]) -> tuple[str, list[Any]]:
    """The SQL condition (over alias ``m``) for symbolic filters and states."""
    where = [f"m.state IN ({_marks(states)})"]
    params: list[Any] = [s.value for s in states]
    for tag in filters.tags:
        where.append("EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ?)")
        params.append(tag)
    if filters.pack is not None:
        where.append("m.pack = ?")
        params.append(filters.pack)
    if filters.memory_types:
        where.append(f"m.memory_type IN ({_marks(filters.memory_types)})")
        params.extend(filters.memory_types)
    for column, op, value in (
        ("created_at", ">=", filters.created_after),
        ("created_at", "<", filters.created_before),
        ("updated_at", ">=", filters.updated_after),
        ("updated_at", "<", filters.updated_before),
    ):
        if value is not None:
            where.append(f"m.{column} {op} ?")
            params.append(to_epoch(value))
    for key, value in filters.metadata.items():
        if not _META_KEY.match(key):
            raise EngineError(f"bad metadata key {key!r}", code="engine.bad_filter")
        where.append(f"json_extract(m.metadata, '$.\"{key}\"') IS json_extract(?, '$')")
        params.append(json.dumps(value))
    return " AND ".join(where), params


class Store(PackQueries, AuditQueries):
    """Thin typed access to the SQLite database. One connection per Store."""

    def __init__(
        self, path: Path, *, busy_timeout_s: float = 60.0, shared_by_threads: bool = False
    ) -> None:
        super().__init__(path, busy_timeout_s=busy_timeout_s, shared_by_threads=shared_by_threads)
        self._phrase_rows: dict[str, int] = {}
        self._phrase_rows_at: str | None = None

    # ---- memories

    def get(self, memory_id: str) -> tuple[Memory, int, int | None] | None:
        """(memory, rowid, vec_row) or None."""
        row = self.db.execute(
            f"SELECT {COLUMNS} FROM memories WHERE id = ?",  # noqa: S608 - constant columns
            (memory_id,),
        ).fetchone()
        return None if row is None else (row_to_memory(row), row["rowid"], row["vec_row"])

    def by_rowids(self, rowids: Sequence[int]) -> dict[int, Memory]:
        out: dict[int, Memory] = {}
        for start in range(0, len(rowids), 500):
            chunk = list(rowids[start : start + 500])
            sql = f"SELECT {COLUMNS} FROM memories WHERE rowid IN ({_marks(chunk)})"  # noqa: S608
            for row in self.db.execute(sql, chunk):
                out[row["rowid"]] = row_to_memory(row)
        return out

    def rank_keys(self, rowids: Sequence[int]) -> dict[int, tuple[float, str]]:
        """(priority, id) of each rowid: the tie-breakers of a ranking, without reading
        (and JSON-decoding) the whole row as :meth:`by_rowids` does."""
        out: dict[int, tuple[float, str]] = {}
        for start in range(0, len(rowids), 500):
            chunk = list(rowids[start : start + 500])
            sql = f"SELECT rowid, priority, id FROM memories WHERE rowid IN ({_marks(chunk)})"  # noqa: S608
            for rowid, priority, memory_id in self.db.execute(sql, chunk):
                out[int(rowid)] = (float(priority), str(memory_id))
        return out

    def _select(
        self, where: str, params: Sequence[Any], *, order: str = "m.rowid", limit: int | None = None
    ) -> list[tuple[int, Memory]]:
        sql = f"SELECT {COLUMNS} FROM memories m WHERE {where} ORDER BY {order}"  # noqa: S608
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [(r["rowid"], row_to_memory(r)) for r in self.db.execute(sql, list(params))]

    def select(
        self, filters: Filters, states: Sequence[State], *, limit: int | None = None
    ) -> list[tuple[int, Memory]]:
        """(rowid, memory) of the memories that pass ``filters`` in ``states``, oldest first."""
        where, params = _where(filters, states)
        return self._select(where, params, limit=limit)

    def has_memories(self) -> bool:
        return self.db.execute("SELECT 1 FROM memories LIMIT 1").fetchone() is not None

    def memory_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM memories").fetchone()[0])

    def pack_cubes(self, packs: Sequence[str], states: Sequence[State]) -> list[tuple[int, Memory]]:
        """The activation and parameter memories of ``packs`` in ``states``."""
        where = (
            f"m.memory_type != ? AND m.pack IN ({_marks(packs)}) AND m.state IN ({_marks(states)})"
        )
        return self._select(where, [MemoryType.PLAINTEXT.value, *packs, *(s.value for s in states)])

    def expiring(self, states: Sequence[State], at: float) -> list[tuple[int, Memory]]:
        """Memories in ``states`` whose ``expires_at`` is at or before ``at``."""
        where = f"m.state IN ({_marks(states)}) AND m.expires_at IS NOT NULL AND m.expires_at <= ?"
        return self._select(where, [*(s.value for s in states), at])

    def unused_since(self, states: Sequence[State], cutoff: float) -> list[tuple[int, Memory]]:
        """Memories in ``states`` last used (or, never used, created) before ``cutoff``."""
        where = f"m.state IN ({_marks(states)}) AND COALESCE(m.last_accessed_at, m.created_at) < ?"
        return self._select(where, [*(s.value for s in states), cutoff])

    def plaintext_scopes(
        self, states: Sequence[State]
    ) -> list[tuple[int, int | None, str | None, str, str]]:
        """(rowid, vec_row, pack, access policy JSON, text) of plaintext memories in ``states``.

        Light tuples for every row, for the duplicate search of maintenance.
        """
        rows = self.db.execute(
            "SELECT rowid, vec_row, pack, access, text FROM memories "  # noqa: S608
            f"WHERE memory_type = ? AND state IN ({_marks(states)})",
            [MemoryType.PLAINTEXT.value, *(s.value for s in states)],
        ).fetchall()
        return [(int(r[0]), r[1], r[2], str(r[3]), str(r[4])) for r in rows]

    def insert(
        self, memory: Memory, vec_row: int | None, *, event: str, actor: str | None, at: float
    ) -> int:
        cur = self.db.execute(
            "INSERT INTO memories (id, memory_type, text, state, version, created_at, updated_at, "
            "tags, metadata, pack, pack_version, cube_id, priority, access_count, "
            "last_accessed_at, expires_at, access, usage_terms, source, merged_into, fingerprint, "
            "payloads, token_count, vec_row) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (*memory_values(memory), vec_row),
        )
        rowid = int(cur.lastrowid or 0)
        self.db.execute(
            "INSERT INTO memories_fts(rowid, text, tags) VALUES (?, ?, ?)",
            (rowid, memory.text, " ".join(memory.tags)),
        )
        self._version(memory, event=event, actor=actor, at=at)
        return rowid

    def update(
        self,
        rowid: int,
        memory: Memory,
        vec_row: int | None,
        *,
        event: str,
        actor: str | None,
        at: float,
    ) -> None:
        self.db.execute(
            "UPDATE memories SET id=?, memory_type=?, text=?, state=?, version=?, created_at=?, "
            "updated_at=?, tags=?, metadata=?, pack=?, pack_version=?, cube_id=?, priority=?, "
            "access_count=?, last_accessed_at=?, expires_at=?, access=?, usage_terms=?, source=?, "
            "merged_into=?, fingerprint=?, payloads=?, token_count=?, vec_row=? WHERE rowid=?",
            (*memory_values(memory), vec_row, rowid),
        )
        self.db.execute("DELETE FROM memories_fts WHERE rowid = ?", (rowid,))
        self.db.execute(
            "INSERT INTO memories_fts(rowid, text, tags) VALUES (?, ?, ?)",
            (rowid, memory.text, " ".join(memory.tags)),
        )
        self._version(memory, event=event, actor=actor, at=at)

    def delete_rows(self, rowids: Sequence[int]) -> None:
        for rowid in rowids:
            self.db.execute("DELETE FROM memories WHERE rowid = ?", (rowid,))
            self.db.execute("DELETE FROM memories_fts WHERE rowid = ?", (rowid,))

    def _version(self, memory: Memory, *, event: str, actor: str | None, at: float) -> None:
        self.db.execute(
            "INSERT INTO memory_versions(memory_id, version, at, event, actor, snapshot) "
            "VALUES (?,?,?,?,?,?)",
            (memory.id, memory.version, at, event, actor, dumps(snapshot_of(memory))),
        )

    # ---- versions

    def versions(self, memory_id: str) -> list[VersionEntry]:
        rows = self.db.execute(
            "SELECT * FROM memory_versions WHERE memory_id = ? ORDER BY version", (memory_id,)
        ).fetchall()
        return [version_entry(r) for r in rows]

    def version(self, memory_id: str, version: int) -> VersionEntry | None:
        row = self.db.execute(
            "SELECT * FROM memory_versions WHERE memory_id = ? AND version = ?",
            (memory_id, version),
        ).fetchone()
        return None if row is None else version_entry(row)

    def version_as_of(self, memory_id: str, at: float) -> VersionEntry | None:
        row = self.db.execute(
            "SELECT * FROM memory_versions WHERE memory_id = ? AND at <= ? "
            "ORDER BY version DESC LIMIT 1",
            (memory_id, at),
        ).fetchone()
        return None if row is None else version_entry(row)

    # ---- search

    def keyword_in(
        self,
        phrases: Sequence[str],
        filters: Filters,
        states: Sequence[State],
        limit: int,
        *,
        rare_rows: int = RARE_ROWS,
    ) -> list[tuple[int, float]]:
        """(rowid, bm25) best first, of the memories that pass ``filters`` in ``states``
        and match any of ``phrases`` (FTS5 phrases, quoted: see ``retrieval.fts_terms``).

        BM25 is exact (every phrase is scored), but only memories holding one of
        the rarer phrases are ranked, up to ``rare_rows`` matching rows
        (:func:`~runtime.engine.keyword.split`). With selective filters only the
        rows that pass them are ranked; with the state filter alone the best BM25
        rows are taken first (four times ``limit``) and the other states dropped,
        which is much faster.
        """
        rare, common = split(phrases, self.phrase_rows(phrases), rare_rows)
        where, params = _where(filters, states)
        if filters.symbolic:
            sql = (
                "SELECT f.rowid, bm25(memories_fts) AS score FROM memories_fts f "  # noqa: S608
                f"JOIN memories m ON m.rowid = f.rowid WHERE memories_fts MATCH ? AND {where} "
                "ORDER BY score LIMIT ?"
            )
            args: list[Any] = [*params, limit]
        else:
            sql = (
                "SELECT f.rowid, f.score FROM (SELECT rowid, bm25(memories_fts) AS score "  # noqa: S608
                "FROM memories_fts WHERE memories_fts MATCH ? ORDER BY score LIMIT ?) f "
                f"JOIN memories m ON m.rowid = f.rowid WHERE {where} ORDER BY f.score LIMIT ?"
            )
            args = [limit * 4, *params, limit]
        best: dict[int, float] = {}
        for match in match_queries(rare, common):
            for rowid, score in self.db.execute(sql, [match, *args]):
                # bm25 is lower-is-better, and the query with every phrase scores lowest
                best[int(rowid)] = min(float(score), best.get(int(rowid), float("inf")))
        return sorted(best.items(), key=lambda item: (item[1], item[0]))[:limit]

    def phrase_rows(self, phrases: Sequence[str]) -> dict[str, int]:
        """How many memories match each FTS5 phrase, cached until the generation changes
        (counting is cheap next to ranking: FTS5 walks a posting list without scoring)."""
        generation = self.meta("generation")
        cache = self._phrase_rows
        if self._phrase_rows_at != generation or len(cache) > 65536:
            cache = self._phrase_rows = {}
            self._phrase_rows_at = generation
        for phrase in phrases:
            if phrase not in cache:
                sql = "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?"
                cache[phrase] = int(self.db.execute(sql, (phrase,)).fetchone()[0])
        return {phrase: cache[phrase] for phrase in phrases}

    def matching_rowids(self, filters: Filters, states: Sequence[State]) -> set[int]:
        where, params = _where(filters, states)
        sql = f"SELECT m.rowid FROM memories m WHERE {where}"  # noqa: S608 - built from constants
        return {int(r[0]) for r in self.db.execute(sql, params)}

    def by_priority(self, filters: Filters, states: Sequence[State], limit: int) -> list[int]:
        """Rowids that pass ``filters``, highest priority first, then most recently updated."""
        where, params = _where(filters, states)
        sql = (
            f"SELECT m.rowid FROM memories m WHERE {where} "  # noqa: S608 - built from constants
            "ORDER BY m.priority DESC, m.updated_at DESC LIMIT ?"
        )
        return [int(r[0]) for r in self.db.execute(sql, [*params, limit])]

    # ---- vector rows

    def live_vectors(self, states: Sequence[str]) -> list[tuple[int, int]]:
        rows = self.db.execute(
            "SELECT vec_row, rowid FROM memories "  # noqa: S608 - only placeholders interpolated
            f"WHERE vec_row IS NOT NULL AND state IN ({_marks(states)}) ORDER BY vec_row",
            list(states),
        ).fetchall()
        return [(int(r[0]), int(r[1])) for r in rows]

    def vector_rows(self) -> list[tuple[int, int]]:
        """(rowid, vec_row) of every memory with a vector, in vector-file order."""
        rows = self.db.execute(
            "SELECT rowid, vec_row FROM memories WHERE vec_row IS NOT NULL ORDER BY vec_row"
        ).fetchall()
        return [(int(r[0]), int(r[1])) for r in rows]

    def vector_row_count(self) -> int:
        sql = "SELECT COUNT(*) FROM memories WHERE vec_row IS NOT NULL"
        return int(self.db.execute(sql).fetchone()[0])

    def renumber_vectors(self, rowids: Sequence[int], vector_file: str) -> None:
        """Point memory ``rowids[i]`` at row ``i`` of ``vector_file``, in one transaction."""
        with self.write():
            self.db.executemany(
                "UPDATE memories SET vec_row = ? WHERE rowid = ?",
                [(i, rowid) for i, rowid in enumerate(rowids)],
            )
            self.db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_file', ?)", (vector_file,)
            )
            self.bump_generation()
