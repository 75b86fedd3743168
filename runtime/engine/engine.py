"""The local MemOS engine: one object over the store, the vectors and the policies.

``Engine(home)`` opens (or creates) ``$MEMOS_HOME/engine/``. Every change to
a memory goes through here so that it gets a version and an audit entry, and
every read is checked against the memory's access policy for the calling
principal and audited with who read what.

Scheduled maintenance: when the engine opens and the last run of
:func:`runtime.engine.maintenance.maintain` is older than
``maintain_every`` (24 hours by default, ``None`` to disable), it runs the
policies (expiry, archiving, merging) before returning. This needs no daemon,
costs nothing when the runtime is idle, and an engine that is used daily is
maintained daily; ``memos maintain`` runs them on demand.

Not here: downloading or verifying packs (:mod:`runtime.install`), ranking
for injection (:mod:`runtime.engine.scheduler`).
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from filelock import FileLock

from protocol import AccessPolicy, ModelFingerprint

from ..errors import AccessDeniedError, EngineError, NotFoundError
from .interfaces import Clock, Embedder
from .lifecycle import RETRIEVABLE, Event, GuardContext, State, next_state
from .maintenance import MaintenancePolicy, MaintenanceReport, maintain
from .store import Store, memory_from_snapshot
from .types import AuditEntry, Filters, Memory, SearchHit, VersionEntry, to_epoch
from .vectors import VectorFile

__all__ = ["RRF_K", "Candidate", "Engine", "NewMemory", "utc_now"]

RRF_K = 60
_WORD = re.compile(r"\w+", re.UNICODE)
_META_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewMemory:
    """A memory to add (from the SDK, the CLI or a pack)."""

    text: str
    id: str | None = None
    memory_type: str = "plaintext"
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    priority: float = 0.5
    state: State = State.GENERATED
    created_at: datetime | None = None
    expires_at: datetime | None = None
    access: AccessPolicy = field(default_factory=AccessPolicy)
    usage_terms: str | None = None
    source: str | None = None
    pack: str | None = None
    pack_version: str | None = None
    cube_id: str | None = None
    fingerprint: ModelFingerprint | None = None
    payloads: Mapping[str, str] = field(default_factory=dict)
    token_count: int | None = None
    embedding: tuple[float, ...] | None = None
    embedding_model: str | None = None
    access_count: int = 0


@dataclass(frozen=True)
class Candidate:
    """A retrieval result before access control and scheduling."""

    rowid: int
    memory: Memory
    rrf: float
    semantic_rank: int | None
    keyword_rank: int | None
    similarity: float | None


_STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from", "has", "have", "how", "i", "if", "in", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "should", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to", "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your"]
)


def fts_query(text: str) -> str | None:
    """User text -> a safe FTS5 query: content words quoted, OR-ed (BM25 ranks the rest).

    Stop words are dropped (they would make BM25 favour memories that merely
    share "the" or "is"); the index stems with Porter, so "backup" finds
    "backups".
    """
    words = [w for w in _WORD.findall(text.lower()) if (len(w) > 1 or w.isdigit()) and w not in _STOPWORDS]
    if not words:
        return None
    unique = list(dict.fromkeys(words))[:32]
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in unique)


def filter_sql(filters: Filters, states: Sequence[State]) -> tuple[str, list[Any]]:
    """The SQL condition (over alias ``m``) for symbolic filters."""
    where = [f"m.state IN ({','.join('?' * len(states))})"]
    params: list[Any] = [s.value for s in states]
    for tag in filters.tags:
        where.append("EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ?)")
        params.append(tag)
    if filters.pack is not None:
        where.append("m.pack = ?")
        params.append(filters.pack)
    if filters.memory_types:
        where.append(f"m.memory_type IN ({','.join('?' * len(filters.memory_types))})")
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


class Engine:
    """The local memory engine. Not thread-safe: one per thread (processes may share a home)."""

    def __init__(
        self,
        home: Path,
        *,
        embedder: Embedder | None = None,
        clock: Clock = utc_now,
        maintain_every: timedelta | None = timedelta(hours=24),
        maintenance_policy: MaintenancePolicy | None = None,
    ) -> None:
        self.home = Path(home)
        self.dir = self.home / "engine"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.home / "locks").mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.store = Store(self.dir / "engine.db")
        self._embedder = embedder
        self._vectors: VectorFile | None = None
        self._live_key: tuple[str | None, tuple[str, ...]] | None = None
        self._live: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None
        self.write_lock = FileLock(str(self.home / "locks" / "engine.lock"), timeout=600)
        self.maintenance_policy = maintenance_policy
        if maintain_every is not None:
            self.maybe_maintain(maintain_every)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ embedding

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from .embedding import default_embedder

            self._embedder = default_embedder()
        return self._embedder

    @property
    def vectors(self) -> VectorFile:
        if self._vectors is None:
            name, dim = self.store.meta("embedding_model"), self.store.meta("embedding_dimension")
            if name is None:
                name, dim = self.embedder.model_name, str(self.embedder.dimension)
                self.store.set_meta("embedding_model", name)
                self.store.set_meta("embedding_dimension", dim)
            elif self._embedder is not None and name != self._embedder.model_name:
                raise EngineError(
                    f"this engine's vectors were made by {name}, not {self._embedder.model_name}",
                    code="engine.embedder_mismatch",
                )
            self._vectors = VectorFile(self.dir / self._vector_file_name(), int(dim or 0))
        elif self._vectors.path.name != self._vector_file_name():  # compacted by another process
            self._vectors = VectorFile(self.dir / self._vector_file_name(), self._vectors.dimension)
        return self._vectors

    def _vector_file_name(self) -> str:
        return self.store.meta("vector_file") or "vectors.f32"

    def compact_vectors(self) -> dict[str, int]:
        """Rewrite the vector file with only the rows memories refer to (edits leave old rows).

        Atomic: the new file is complete before one transaction renumbers the
        rows and names it; a crash before that leaves the old file in use.
        """
        with self.write_lock:
            if self.store.meta("embedding_model") is None:
                return {"rows_before": 0, "rows_after": 0}
            old = self.vectors
            rows = self.store.db.execute(
                "SELECT rowid, vec_row FROM memories WHERE vec_row IS NOT NULL ORDER BY vec_row"
            ).fetchall()
            total = old.count()
            if len(rows) == total:
                return {"rows_before": total, "rows_after": total}
            new = VectorFile(self.dir / f"vectors-{uuid.uuid4().hex[:12]}.f32", old.dimension)
            src = np.array([int(r[1]) for r in rows], dtype=np.int64)
            for start in range(0, len(src), 65536):
                new.append(old.rows(src[start : start + 65536]))
            if not rows:
                new.path.touch()
            with self.store.write():
                self.store.db.executemany(
                    "UPDATE memories SET vec_row = ? WHERE rowid = ?",
                    [(i, int(r[0])) for i, r in enumerate(rows)],
                )
                self.store.db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_file', ?)", (new.path.name,)
                )
                self.bump_generation()
            for stale in self.dir.glob("vectors*.f32"):
                if stale.name != new.path.name:
                    stale.unlink(missing_ok=True)
            self._vectors = new
            self._live = None
        self.audit("compact_vectors", actor=None, rows_before=total, rows_after=len(rows))
        return {"rows_before": total, "rows_after": len(rows)}

    def embed_items(self, items: Sequence[NewMemory]) -> npt.NDArray[np.float32]:
        """Vectors for new memories: reuse a record's own embedding when it is from our model."""
        vectors = self.vectors
        out = np.zeros((len(items), vectors.dimension), dtype=np.float32)
        todo: list[int] = []
        model = self.store.meta("embedding_model") or ""
        for i, item in enumerate(items):
            if (
                item.embedding is not None
                and item.embedding_model is not None
                and item.embedding_model.rsplit("/", 1)[-1] == model
                and len(item.embedding) == vectors.dimension
            ):
                vec = np.asarray(item.embedding, dtype=np.float32)
                norm = float(np.linalg.norm(vec))
                out[i] = vec / norm if norm > 0 else vec
            else:
                todo.append(i)
        if todo:
            out[todo] = self.embedder.embed([items[i].text for i in todo])
        return out

    # ------------------------------------------------------------------ audit

    def audit(self, action: str, *, actor: str | None, target: str | None = None, **detail: Any) -> None:
        self.store.audit(at=to_epoch(self.clock()), actor=actor, action=action, target=target, detail=detail)

    def audit_log(
        self, *, actor: str | None = None, action: str | None = None, target: str | None = None,
        since: datetime | None = None, limit: int = 100,
    ) -> list[AuditEntry]:
        return self.store.audit_entries(
            actor=actor, action=action, target=target,
            since=to_epoch(since) if since else None, limit=limit,
        )

    # ------------------------------------------------------------------ writes

    def add(self, text: str, *, actor: str | None = None, **fields: Any) -> Memory:
        """Add one plaintext memory; returns it (version 1, state generated)."""
        (memory_id,) = self.add_many([NewMemory(text=text, **fields)], actor=actor)
        return self.require(memory_id)[0]

    def add_many(
        self,
        items: Sequence[NewMemory],
        *,
        actor: str | None = None,
        vectors: npt.NDArray[np.float32] | None = None,
        event: str = "create",
        audit: bool = True,
    ) -> list[str]:
        """Add memories in one transaction; plaintext ones are embedded and indexed.

        ``vectors``, when given, are the plaintext items' vectors in order (no model call).
        """
        now = self.clock()
        ids = [item.id or f"local/{uuid.uuid4().hex[:16]}" for item in items]
        plain = [i for i, item in enumerate(items) if item.memory_type == "plaintext"]
        # Embed before taking the write lock: other writers need not wait for the model.
        vecs = (vectors if vectors is not None else self.embed_items([items[i] for i in plain])) if plain else None
        with self.write_lock:
            vec_rows: dict[int, int] = {}
            if plain and vecs is not None:
                first = self.vectors.append(np.asarray(vecs, dtype=np.float32))
                vec_rows = {i: first + n for n, i in enumerate(plain)}
            with self.store.write():
                for i, item in enumerate(items):
                    memory = self.build_memory(ids[i], item, now)
                    self.store.insert(memory, vec_rows.get(i), event=event, actor=actor, at=to_epoch(now))
                self.bump_generation()
        if audit and len(items) <= 50:
            for memory_id in ids:
                self.audit("create", actor=actor, target=memory_id)
        elif audit:
            self.audit("create", actor=actor, target=None, count=len(ids), first=ids[0])
        return ids

    @staticmethod
    def build_memory(memory_id: str, item: NewMemory, now: datetime) -> Memory:
        return Memory(
            id=memory_id,
            memory_type=item.memory_type,
            text=item.text,
            state=item.state,
            version=1,
            created_at=item.created_at or now,
            updated_at=now,
            tags=tuple(item.tags),
            metadata=dict(item.metadata),
            pack=item.pack,
            pack_version=item.pack_version,
            cube_id=item.cube_id,
            priority=float(item.priority),
            access_count=item.access_count,
            expires_at=item.expires_at,
            access=item.access,
            usage_terms=item.usage_terms,
            source=item.source,
            fingerprint=item.fingerprint,
            payloads=dict(item.payloads),
            token_count=item.token_count,
        )

    def bump_generation(self) -> None:
        self.store.db.execute(
            "INSERT INTO meta(key, value) VALUES ('generation', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    def require(self, memory_id: str) -> tuple[Memory, int, int | None]:
        found = self.store.get(memory_id)
        if found is None:
            raise NotFoundError(f"no memory {memory_id!r}", memory_id=memory_id)
        return found

    def _save(self, rowid: int, old: Memory, new: Memory, vec_row: int | None, *, event: str, actor: str | None) -> Memory:
        now = self.clock()
        new = replace(new, version=old.version + 1, updated_at=now)
        with self.store.write():
            current = self.store.get(old.id)
            if current is None or current[0].version != old.version:
                raise EngineError(
                    f"memory {old.id} changed concurrently; retry", code="engine.conflict"
                )
            self.store.update(rowid, new, vec_row, event=event, actor=actor, at=to_epoch(now))
            self.bump_generation()
        return new

    def update(
        self,
        memory_id: str,
        *,
        actor: str | None = None,
        text: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        priority: float | None = None,
        expires_at: datetime | None = None,
        access: AccessPolicy | None = None,
    ) -> Memory:
        """Change a memory's content; creates a new version."""
        with self.write_lock:
            old, rowid, vec_row = self.require(memory_id)
            new = old
            if text is not None and text != old.text:
                new = replace(new, text=text)
                if old.memory_type == "plaintext":
                    vec_row = self.vectors.append(self.embedder.embed([text]))
            changes: dict[str, Any] = {
                "tags": tuple(tags) if tags is not None else None,
                "metadata": dict(metadata) if metadata is not None else None,
                "priority": float(priority) if priority is not None else None,
                "expires_at": expires_at,
                "access": access,
            }
            new = replace(new, **{k: v for k, v in changes.items() if v is not None})
            saved = self._save(rowid, old, new, vec_row, event="update", actor=actor)
        self.audit("update", actor=actor, target=memory_id, version=saved.version)
        return saved

    def transition(
        self,
        memory_id: str,
        event: Event | str,
        *,
        actor: str | None = None,
        force: bool = False,
        merged_into: str | None = None,
        new_expires_at: datetime | None = None,
        reason: str = "",
    ) -> Memory:
        """Move a memory through its lifecycle; illegal moves raise LifecycleError."""
        event = Event(event)
        with self.write_lock:
            old, rowid, vec_row = self.require(memory_id)
            ctx = GuardContext(self.clock(), old.expires_at, new_expires_at, merged_into)
            state = next_state(old.state, event, ctx, force=force)
            new = replace(old, state=state)
            if event is Event.MERGE:
                new = replace(new, merged_into=merged_into)
            if event is Event.RENEW:
                new = replace(new, expires_at=new_expires_at)
            saved = self._save(rowid, old, new, vec_row, event=event.value, actor=actor)
        self.audit(
            "transition", actor=actor, target=memory_id, event=event.value,
            **{"from": old.state.value, "to": state.value, "version": saved.version, "reason": reason},
        )
        return saved

    def history(self, memory_id: str) -> list[VersionEntry]:
        versions = self.store.versions(memory_id)
        if not versions:
            raise NotFoundError(f"no memory {memory_id!r}", memory_id=memory_id)
        return versions

    def as_of(self, memory_id: str, when: datetime, *, principal: str | None = None) -> Memory:
        """The memory as it was at ``when`` (Time Machine)."""
        entry = self.store.version_as_of(memory_id, to_epoch(when))
        if entry is None:
            self.require(memory_id)
            raise NotFoundError(f"memory {memory_id!r} did not exist at {when.isoformat()}", code="engine.not_yet")
        memory = memory_from_snapshot(memory_id, entry.version, entry.snapshot)
        self._check_access(memory, principal)
        self.audit("read", actor=principal, target=memory_id, as_of=when.isoformat(), version=entry.version)
        return memory

    def rollback(self, memory_id: str, version: int, *, actor: str | None = None) -> Memory:
        """Restore version ``version``'s content and state as a new version."""
        with self.write_lock:
            old, rowid, vec_row = self.require(memory_id)
            entry = self.store.version(memory_id, version)
            if entry is None:
                raise NotFoundError(
                    f"memory {memory_id!r} has no version {version}", code="engine.no_such_version",
                    available=[v.version for v in self.store.versions(memory_id)],
                )
            target = memory_from_snapshot(memory_id, old.version, entry.snapshot)
            target = replace(
                target, access_count=old.access_count, last_accessed_at=old.last_accessed_at,
                created_at=old.created_at,
            )
            if target.text != old.text and target.memory_type == "plaintext":
                vec_row = self.vectors.append(self.embedder.embed([target.text]))
            saved = self._save(rowid, old, target, vec_row, event=f"rollback:{version}", actor=actor)
        self.audit(
            "rollback", actor=actor, target=memory_id, to_version=version, new_version=saved.version,
            **{"from": old.state.value, "to": saved.state.value},
        )
        return saved

    # ------------------------------------------------------------------ reads

    def _check_access(self, memory: Memory, principal: str | None) -> None:
        if not memory.access.allows(principal):
            self.audit("access_denied", actor=principal, target=memory.id)
            raise AccessDeniedError(
                f"{principal or 'anonymous'} may not read {memory.id} ({memory.access.visibility})",
                memory_id=memory.id,
            )

    def get(self, memory_id: str, *, principal: str | None = None, record: bool = True) -> Memory:
        memory, rowid, _ = self.require(memory_id)
        self._check_access(memory, principal)
        if record:
            self.record_use([(rowid, memory)], principal=principal, action="read")
        return memory

    def list_memories(self, filters: Filters | None = None, *, limit: int = 100, principal: str | None = None,
             all_states: bool = False) -> list[Memory]:
        states = list(filters.states if filters and filters.states else (State if all_states else RETRIEVABLE))
        where, params = filter_sql(filters or Filters(), states)
        rows = self.store.query(where, params, order="m.rowid", limit=limit)
        return [m for _, m in rows if m.access.allows(principal)]

    def _live_vectors(self, states: Sequence[State]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        key = (self.store.meta("generation"), tuple(sorted(s.value for s in states)))
        if self._live is None or self._live_key != key:
            pairs = self.store.live_vectors([s.value for s in states])
            arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
            self._live = (arr[:, 0].copy(), arr[:, 1].copy())
            self._live_key = key
        return self._live

    def retrieve(
        self,
        query: str,
        *,
        filters: Filters | None = None,
        states: Sequence[State] = tuple(RETRIEVABLE),
        candidates: int = 50,
        semantic: bool = True,
        keyword: bool = True,
        min_similarity: float | None = None,
    ) -> list[Candidate]:
        """Hybrid retrieval (semantic + keyword + symbolic), fused by reciprocal rank fusion.

        Semantic matches below ``min_similarity`` (default: the embedder's
        ``relevance_floor``) are dropped, so a query about nothing stored finds
        nothing rather than the k least unrelated memories (0 or less: keep every
        semantic match); keyword matches stay.
        No access control here: callers (search, plan) decide and explain.
        """
        floor = self.embedder.relevance_floor if min_similarity is None else min_similarity
        filters = filters or Filters()
        if filters.states:
            states = filters.states
        where, params = filter_sql(filters, states)
        symbolic = bool(
            filters.tags or filters.pack or filters.memory_types or filters.metadata
            or filters.created_after or filters.created_before or filters.updated_after
            or filters.updated_before
        )
        sem: list[tuple[int, float]] = []
        if semantic and query.strip() and self.store.meta("embedding_model") is not None:
            vec_rows, rowids = self._live_vectors(states)
            if symbolic and vec_rows.size:
                allowed = {
                    int(r[0]) for r in self.store.db.execute(
                        f"SELECT m.rowid FROM memories m WHERE {where}", params  # noqa: S608 - built from constants
                    )
                }
                keep = np.fromiter((r in allowed for r in rowids.tolist()), dtype=bool, count=rowids.size)
                vec_rows, rowids = vec_rows[keep], rowids[keep]
            if vec_rows.size:
                qv = self.embedder.embed([query])[0]
                try:
                    positions, scores = self.vectors.top(qv, vec_rows, candidates)
                except (FileNotFoundError, IndexError):  # compacted meanwhile: read the new state
                    self._live = None
                    vec_rows, rowids = self._live_vectors(states)
                    positions, scores = self.vectors.top(qv, vec_rows, candidates)
                sem = [
                    (rowid, score)
                    for rowid, score in zip(rowids[positions].tolist(), scores.tolist(), strict=True)
                    if floor <= 0 or score >= floor
                ]
        kw: list[tuple[int, float]] = []
        match = fts_query(query) if keyword else None
        if match and symbolic:  # selective filters: rank only the rows that pass them
            sql = (
                "SELECT f.rowid, bm25(memories_fts) AS score FROM memories_fts f "  # noqa: S608
                f"JOIN memories m ON m.rowid = f.rowid WHERE memories_fts MATCH ? AND {where} "
                "ORDER BY score LIMIT ?"
            )
            kw = [(int(r[0]), float(r[1])) for r in self.store.db.execute(sql, [match, *params, candidates])]
        elif match:  # only the state filter: take the best BM25 rows first, then drop other states
            sql = (
                "SELECT f.rowid, f.score FROM (SELECT rowid, bm25(memories_fts) AS score FROM memories_fts "  # noqa: S608
                f"WHERE memories_fts MATCH ? ORDER BY score LIMIT ?) f JOIN memories m ON m.rowid = f.rowid "
                f"WHERE {where} ORDER BY f.score LIMIT ?"
            )
            kw = [(int(r[0]), float(r[1]))
                  for r in self.store.db.execute(sql, [match, candidates * 4, *params, candidates])]
        if not sem and not kw and (symbolic or not query.strip()):
            rows = self.store.db.execute(
                f"SELECT m.rowid FROM memories m WHERE {where} ORDER BY m.priority DESC, m.updated_at DESC LIMIT ?",  # noqa: S608
                [*params, candidates],
            ).fetchall()
            ordered = [int(r[0]) for r in rows]
            memories = self.store.by_rowids(ordered)
            return [Candidate(r, memories[r], 1.0 / (RRF_K + i + 1), None, None, None) for i, r in enumerate(ordered) if r in memories]
        fused: dict[int, float] = {}
        sem_rank = {rowid: i + 1 for i, (rowid, _) in enumerate(sem)}
        kw_rank = {rowid: i + 1 for i, (rowid, _) in enumerate(kw)}
        sims = dict(sem)
        for ranks in (sem_rank, kw_rank):
            for rowid, rank in ranks.items():
                fused[rowid] = fused.get(rowid, 0.0) + 1.0 / (RRF_K + rank)
        memories = self.store.by_rowids(list(fused))
        out = [
            Candidate(rowid, memories[rowid], score, sem_rank.get(rowid), kw_rank.get(rowid), sims.get(rowid))
            for rowid, score in fused.items()
            if rowid in memories
        ]
        out.sort(key=lambda c: (-c.rrf, -c.memory.priority, c.memory.id))
        return out

    def search(
        self,
        query: str,
        *,
        principal: str | None = None,
        k: int = 10,
        filters: Filters | None = None,
        include_archived: bool = False,
        record: bool = True,
        min_similarity: float | None = None,
    ) -> list[SearchHit]:
        """Hybrid search for ``principal``: only memories its access policy allows.

        ``min_similarity``: see :meth:`retrieve` (default: the embedder's floor; 0 keeps all).
        """
        states = (*RETRIEVABLE, State.ARCHIVED) if include_archived else tuple(RETRIEVABLE)
        now = self.clock()
        found = self.retrieve(
            query,
            filters=filters,
            states=states,
            candidates=max(50, 5 * k),
            min_similarity=min_similarity,
        )
        hits: list[SearchHit] = []
        chosen: list[tuple[int, Memory]] = []
        denied = 0
        for cand in found:
            m = cand.memory
            if m.expires_at is not None and m.expires_at <= now:
                continue
            if not m.access.allows(principal):
                denied += 1
                continue
            hits.append(SearchHit(m, cand.rrf, cand.semantic_rank, cand.keyword_rank, cand.similarity))
            chosen.append((cand.rowid, m))
            if len(hits) >= k:
                break
        if record:
            self.record_use(chosen, principal=principal, action="search", query=query, withheld=denied)
        return hits

    def record_use(
        self, used: Sequence[tuple[int, Memory]], *, principal: str | None, action: str, **detail: Any
    ) -> None:
        """Count a use of each memory, activate generated ones, and audit who read what."""
        now = self.clock()
        self.store.touch([rowid for rowid, _ in used], to_epoch(now))
        for _, memory in used:
            if memory.state is State.GENERATED and (memory.expires_at is None or memory.expires_at > now):
                with contextlib.suppress(EngineError):  # changed concurrently: the next use activates it
                    self.transition(memory.id, Event.ACTIVATE, actor=principal, reason=f"first use ({action})")
        self.audit(action, actor=principal, target=None, memories=[m.id for _, m in used], **detail)

    # ------------------------------------------------------------------ maintenance

    def maybe_maintain(self, every: timedelta) -> MaintenanceReport | None:
        last = self.store.meta("last_maintain_at")
        now = self.clock()
        if last is not None and now.timestamp() - float(last) < every.total_seconds():
            return None
        if self.store.db.execute("SELECT 1 FROM memories LIMIT 1").fetchone() is None:
            self.store.set_meta("last_maintain_at", str(now.timestamp()))
            return None
        return self.maintain(actor="memos-scheduler")

    def maintain(self, *, actor: str | None = None, dry_run: bool = False) -> MaintenanceReport:
        policy = self.maintenance_policy or MaintenancePolicy()
        return maintain(self, policy, actor=actor, dry_run=dry_run)
