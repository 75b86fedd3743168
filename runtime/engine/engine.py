"""The local MemOS engine: one object over the store, the vectors and the policies.

``Engine(home, embedder=...)`` opens (or creates) ``$MEMOS_HOME/engine/``.
Every change to a memory goes through here so that it gets a version and an
audit entry, and every read is checked against the memory's access policy
for the calling principal and audited with who read what; every change is
checked for write permission (:mod:`runtime.engine.governance`). Reads move
use counters and activate generated memories in place: never a new version.
That recording is queued and written after the read answers, in batches
(:mod:`runtime.engine.usage`: what a clean close and a crash do to it); the
engine writes the queue before each of its writes and before each read that
reports counters, states or the audit log (``usage_linger_s=None``: at once).

The embedder is injected (:class:`runtime.engine.interfaces.Embedder`); the
engine never chooses a model itself. Which one a home uses (MiniLM by
default, see :mod:`runtime.models.embedding`) is decided where the engine is
built (the SDK). An engine opened without one can read and write memories but
not embed or search semantically (``engine.no_embedder``).

Scheduled maintenance: when the engine opens and the last run of
:func:`runtime.engine.maintenance.maintain` is older than
``maintain_every`` (24 hours by default, ``None`` to disable), it runs the
policies (expiry, archiving, merging) before returning. This needs no daemon,
costs nothing when the runtime is idle, and an engine that is used daily is
maintained daily; ``memos maintain`` runs them on demand.

Not here: SQL (:mod:`runtime.engine.store`), ranking
(:mod:`runtime.engine.retrieval`), downloading or verifying packs
(:mod:`runtime.install`), ranking for injection (:mod:`runtime.engine.scheduler`).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from filelock import FileLock

from protocol import AccessPolicy, MemoryType

from ..errors import EngineError, NotFoundError
from .embedding import QueryCache
from .governance import require_access
from .history import memory_as_of, rollback_target
from .index import VectorIndex
from .interfaces import Clock, Embedder
from .lifecycle import RETRIEVABLE, Event, GuardContext, State, next_state
from .maintenance import MaintenancePolicy, MaintenanceReport, maintain
from .retrieval import RRF_K, Candidate, LiveVectors, fts_query, hybrid, ranked, visible_ranked
from .store import Store
from .types import AuditEntry, Filters, Memory, NewMemory, SearchHit, VersionEntry, to_epoch
from .usage import UsageLog, Use
from .vectors import VectorFile

__all__ = ["RRF_K", "Candidate", "Engine", "NewMemory", "fts_query", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        usage_linger_s: float | None = 0.2,
        usage_max_pending: int = 256,
        query_cache_size: int = 1024,
    ) -> None:
        self.home = Path(home)
        self.dir = self.home / "engine"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.home / "locks").mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.store = Store(self.dir / "engine.db")
        self.index = VectorIndex(self.store, self.dir, embedder)
        self._live = LiveVectors(self.store)
        self.queries = QueryCache(query_cache_size)
        self.write_lock = FileLock(str(self.home / "locks" / "engine.lock"), timeout=600)
        self.usage = UsageLog(
            self.store.path, self.write_lock, linger_s=usage_linger_s, max_pending=usage_max_pending
        )
        # An engine never closed still writes its queued uses at interpreter exit.
        self._finalizer = weakref.finalize(self, self.usage.close)
        self.maintenance_policy = maintenance_policy
        if maintain_every is not None:
            self.maybe_maintain(maintain_every)

    def close(self) -> None:
        self._finalizer()
        self.store.close()

    def flush_usage(self) -> None:
        """Write the queued uses of earlier reads now (see :mod:`runtime.engine.usage`)."""
        self.usage.flush()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ embedding

    @property
    def embedder(self) -> Embedder:
        return self.index.embedder

    @property
    def vectors(self) -> VectorFile:
        return self.index.file

    def query_vector(self, query: str) -> npt.NDArray[np.float32]:
        """The embedder's vector for a search query, through the bounded query cache."""
        return self.queries.vector(self.embedder, query)

    def compact_vectors(self) -> dict[str, int]:
        """Rewrite the vector file with only the rows memories refer to (edits leave old rows).

        Atomic: see :meth:`runtime.engine.index.VectorIndex.compact`.
        """
        self.flush_usage()
        with self.write_lock:
            before, after, done = self.index.compact()
            if not done:
                return {"rows_before": before, "rows_after": after}
            self._live.reset()
        self.audit("compact_vectors", actor=None, rows_before=before, rows_after=after)
        return {"rows_before": before, "rows_after": after}

    def embed_items(self, items: Sequence[NewMemory]) -> npt.NDArray[np.float32]:
        """Vectors for new memories: reuse a record's own embedding when it is from our model."""
        return self.index.embed_items(items)

    # ------------------------------------------------------------------ audit

    def audit(
        self, action: str, *, actor: str | None, target: str | None = None, **detail: Any
    ) -> None:
        at = to_epoch(self.clock())
        self.store.audit(at=at, actor=actor, action=action, target=target, detail=detail)

    def audit_log(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        self.flush_usage()
        return self.store.audit_entries(
            actor=actor,
            action=action,
            target=target,
            since=to_epoch(since) if since else None,
            limit=limit,
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
        plain = [i for i, item in enumerate(items) if item.memory_type is MemoryType.PLAINTEXT]
        # Embed before taking the write lock: other writers need not wait for the model.
        self.flush_usage()
        vecs = None
        if plain:
            vecs = vectors if vectors is not None else self.embed_items([items[i] for i in plain])
        with self.write_lock:
            vec_rows: dict[int, int] = {}
            if plain and vecs is not None:
                first = self.vectors.append(np.asarray(vecs, dtype=np.float32))
                vec_rows = {i: first + n for n, i in enumerate(plain)}
            with self.store.write():
                for i, item in enumerate(items):
                    memory = item.build(ids[i], now)
                    self.store.insert(
                        memory, vec_rows.get(i), event=event, actor=actor, at=to_epoch(now)
                    )
                self.bump_generation()
        if audit and len(items) <= 50:
            for memory_id in ids:
                self.audit("create", actor=actor, target=memory_id)
        elif audit:
            self.audit("create", actor=actor, target=None, count=len(ids), first=ids[0])
        return ids

    @staticmethod
    def build_memory(memory_id: str, item: NewMemory, now: datetime) -> Memory:
        return item.build(memory_id, now)

    def bump_generation(self) -> None:
        self.store.bump_generation()

    def require(self, memory_id: str) -> tuple[Memory, int, int | None]:
        found = self.store.get(memory_id)
        if found is None:
            raise NotFoundError(f"no memory {memory_id!r}", memory_id=memory_id)
        return found

    def _save(
        self,
        rowid: int,
        old: Memory,
        new: Memory,
        vec_row: int | None,
        *,
        event: str,
        actor: str | None,
    ) -> Memory:
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
        system: bool = False,
        text: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        priority: float | None = None,
        expires_at: datetime | None = None,
        access: AccessPolicy | None = None,
    ) -> Memory:
        """Change a memory's content; creates a new version.

        ``actor`` needs write permission (:meth:`check_write`) unless ``system``
        (maintenance policies acting on every memory).
        """
        self.flush_usage()
        with self.write_lock:
            old, rowid, vec_row = self.require(memory_id)
            if not system:
                self.check_write(old, actor, action="update")
            new = old
            if text is not None and text != old.text:
                new = replace(new, text=text)
                if old.memory_type is MemoryType.PLAINTEXT:
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
        system: bool = False,
        force: bool = False,
        merged_into: str | None = None,
        new_expires_at: datetime | None = None,
        reason: str = "",
    ) -> Memory:
        """Move a memory through its lifecycle; illegal moves raise LifecycleError.

        ``actor`` needs write permission unless ``system`` (maintenance).
        """
        event = Event(event)
        self.flush_usage()
        with self.write_lock:
            old, rowid, vec_row = self.require(memory_id)
            if not system:
                self.check_write(old, actor, action=f"transition:{event.value}")
            ctx = GuardContext(self.clock(), old.expires_at, new_expires_at, merged_into)
            state = next_state(old.state, event, ctx, force=force)
            new = replace(old, state=state)
            if event is Event.MERGE:
                new = replace(new, merged_into=merged_into)
            if event is Event.RENEW:
                new = replace(new, expires_at=new_expires_at)
            saved = self._save(rowid, old, new, vec_row, event=event.value, actor=actor)
        moved = {"from": old.state.value, "to": state.value, "version": saved.version}
        self.audit(
            "transition", actor=actor, target=memory_id, event=event.value, **moved, reason=reason
        )
        return saved

    def rollback(self, memory_id: str, version: int, *, actor: str | None = None) -> Memory:
        """Restore version ``version``'s content and state as exactly one new version.

        Needs write permission on the memory as it is now.
        """
        self.flush_usage()
        with self.write_lock:
            old, rowid, vec_row = self.require(memory_id)
            self.check_write(old, actor, action=f"rollback:{version}")
            target = rollback_target(self.store, old, version)
            if target.text != old.text and target.memory_type is MemoryType.PLAINTEXT:
                vec_row = self.vectors.append(self.embedder.embed([target.text]))
            event = f"rollback:{version}"
            saved = self._save(rowid, old, target, vec_row, event=event, actor=actor)
        moved = {"from": old.state.value, "to": saved.state.value}
        self.audit(
            "rollback",
            actor=actor,
            target=memory_id,
            to_version=version,
            new_version=saved.version,
            **moved,
        )
        return saved

    # ------------------------------------------------------------------ reads

    def _check_access(self, memory: Memory, principal: str | None, *, action: str = "read") -> None:
        require_access(self.audit, memory, principal, attempted=action, write=False)

    def check_write(self, memory: Memory, principal: str | None, *, action: str) -> None:
        """Refuse (and audit) a change the memory's access policy does not allow."""
        require_access(self.audit, memory, principal, attempted=action, write=True)

    def get(self, memory_id: str, *, principal: str | None = None, record: bool = True) -> Memory:
        self.flush_usage()
        memory, rowid, _ = self.require(memory_id)
        self._check_access(memory, principal)
        if record:
            self.record_use([(rowid, memory)], principal=principal, action="read")
        return memory

    def list_memories(
        self,
        filters: Filters | None = None,
        *,
        limit: int = 100,
        principal: str | None = None,
        all_states: bool = False,
    ) -> list[Memory]:
        self.flush_usage()
        default = State if all_states else RETRIEVABLE
        states = list(filters.states if filters and filters.states else default)
        rows = self.store.select(filters or Filters(), states, limit=limit)
        return [m for _, m in rows if m.access.allows(principal)]

    def history(self, memory_id: str, *, principal: str | None = None) -> list[VersionEntry]:
        """Every version of a memory, for a principal its current policy allows (audited)."""
        self.flush_usage()
        memory, _, _ = self.require(memory_id)
        self._check_access(memory, principal, action="history")
        versions = self.store.versions(memory_id)
        self.audit("history", actor=principal, target=memory_id, versions=len(versions))
        return versions

    def as_of(self, memory_id: str, when: datetime, *, principal: str | None = None) -> Memory:
        """The memory as it was at ``when`` (Time Machine)."""
        self.flush_usage()
        memory = memory_as_of(self.store, memory_id, when)
        self._check_access(memory, principal, action="as_of")
        self.audit(
            "read",
            actor=principal,
            target=memory_id,
            as_of=when.isoformat(),
            version=memory.version,
        )
        return memory

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
        options = self._rank_options(
            filters, states, candidates, semantic, keyword, min_similarity
        )
        return hybrid(query, store=self.store, **options)

    def _rank_options(
        self,
        filters: Filters | None,
        states: Sequence[State],
        candidates: int,
        semantic: bool,
        keyword: bool,
        min_similarity: float | None,
    ) -> dict[str, Any]:
        """The arguments of :func:`~.retrieval.ranked` for a retrieval on this engine."""
        floor = self.embedder.relevance_floor if min_similarity is None else min_similarity
        filters = filters or Filters()
        if filters.states:
            states = filters.states
        indexed = semantic and self.index.indexed
        return {
            "live": self._live,
            "vectors": (lambda: self.vectors) if indexed else None,
            "embed_query": self.query_vector,
            "filters": filters,
            "states": states,
            "candidates": candidates,
            "keyword": keyword,
            "floor": floor,
        }

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
        options = self._rank_options(filters, states, max(50, 5 * k), True, True, min_similarity)
        order = ranked(query, store=self.store, **options)
        # Only the memories shown (and any withheld before them) are read and decoded.
        chosen, denied = visible_ranked(
            order, store=self.store, principal=principal, now=now, k=k
        )
        hits = [
            SearchHit(c.memory, c.rrf, c.semantic_rank, c.keyword_rank, c.similarity)
            for c in chosen
        ]
        if record:
            used = [(c.rowid, c.memory) for c in chosen]
            self.record_use(
                used, principal=principal, action="search", query=query, withheld=denied
            )
        return hits

    def record_use(
        self,
        used: Sequence[tuple[int, Memory]],
        *,
        principal: str | None,
        action: str,
        **detail: Any,
    ) -> None:
        """Count a use of each memory, activate generated ones, and audit who read what.

        A read is not a content change: counters and the lifecycle state move
        in place, no version is added (the activation is in the audit log).
        Queued and written after the read returns (:mod:`runtime.engine.usage`).
        """
        memories = tuple((rowid, m.id, m.state is State.GENERATED) for rowid, m in used)
        self.usage.add(Use(to_epoch(self.clock()), principal, action, memories, detail))

    # ------------------------------------------------------------------ maintenance

    def maybe_maintain(self, every: timedelta) -> MaintenanceReport | None:
        last = self.store.meta("last_maintain_at")
        now = self.clock()
        if last is not None and now.timestamp() - float(last) < every.total_seconds():
            return None
        if not self.store.has_memories():
            self.store.set_meta("last_maintain_at", str(now.timestamp()))
            return None
        return self.maintain(actor="memos-scheduler")

    def maintain(self, *, actor: str | None = None, dry_run: bool = False) -> MaintenanceReport:
        self.flush_usage()
        policy = self.maintenance_policy or MaintenancePolicy()
        return maintain(self, policy, actor=actor, dry_run=dry_run)
