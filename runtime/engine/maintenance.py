"""MemLifecycle policies: expiry by TTL, archiving of unused memories, merging duplicates.

Run by ``memos maintain`` and by the engine itself on open when the last run
is older than its interval (see :mod:`runtime.engine.engine`). Every action is
a lifecycle transition, so it creates a version and an audit entry and can be
rolled back.

* **Expiry**: a memory whose ``expires_at`` has passed moves to ``expired``.
* **Archiving**: a retrievable memory not used (or, if never used, not
  created) within ``archive_after`` moves to ``archived``.
* **Merging**: retrievable plaintext memories with the same normalised text,
  or (up to ``semantic_merge_limit`` memories) cosine similarity at least
  ``merge_similarity`` within the same pack and access policy, are merged into
  one survivor (highest priority, then most used, then oldest): the others
  move to ``merged`` with ``merged_into`` set, the survivor gains their tags
  and their access counts.
* **Vector file**: rewritten without unused rows (left by edits) when more
  than half of its rows (and at least 10,000) are unused.
* **Cold KV caches**: activation forms not used for ``demote_kv_after`` are
  deleted (files freed, plaintext kept; see :mod:`runtime.engine.transform`).

Not here: SQL (the store's methods) or the transitions' rules (:mod:`.lifecycle`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from .host import PolicyHost
from .lifecycle import RETRIEVABLE, Event, State
from .transform import TransformPolicy, demote_cold
from .types import Memory

__all__ = ["MaintenancePolicy", "MaintenanceReport", "maintain"]

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class MaintenancePolicy:
    archive_after: timedelta | None = timedelta(days=90)
    merge_duplicates: bool = True
    merge_similarity: float = 0.97
    semantic_merge_limit: int = 20_000
    demote_kv_after: timedelta | None = timedelta(days=7)
    compact_orphaned_fraction: float = 0.5  # rewrite vectors.f32 when this share of rows is unused
    compact_min_rows: int = 10_000


@dataclass
class MaintenanceReport:
    expired: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)  # (merged, into)
    demoted: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "expired": self.expired,
            "archived": self.archived,
            "merged": [{"memory": a, "into": b} for a, b in self.merged],
            "demoted": self.demoted,
            "dry_run": self.dry_run,
        }


def _normal(text: str) -> str:
    return _SPACE.sub(" ", text.strip().lower())


def _survivor_key(m: Memory) -> tuple[float, int, float, str]:
    return (-m.priority, -m.access_count, m.created_at.timestamp(), m.id)


def maintain(
    engine: PolicyHost, policy: MaintenancePolicy, *, actor: str | None, dry_run: bool = False
) -> MaintenanceReport:
    report = MaintenanceReport(dry_run=dry_run)
    now = engine.clock()
    store = engine.store
    # Expiry
    live_states = (*RETRIEVABLE, State.ARCHIVED, State.MERGED)
    for _, m in store.expiring(live_states, now.timestamp()):
        report.expired.append(m.id)
        if not dry_run:
            engine.transition(
                m.id, Event.EXPIRE, actor=actor, system=True, reason="TTL/expiry passed"
            )
    # Archiving
    if policy.archive_after is not None:
        cutoff = (now - policy.archive_after).timestamp()
        reason = f"unused for {policy.archive_after.days} days"
        for _, m in store.unused_since(tuple(RETRIEVABLE), cutoff):
            report.archived.append(m.id)
            if not dry_run:
                engine.transition(m.id, Event.ARCHIVE, actor=actor, system=True, reason=reason)
    # Merging
    if policy.merge_duplicates:
        for loser, survivor in _duplicates(engine, policy):
            report.merged.append((loser.id, survivor.id))
            if not dry_run:
                _merge(engine, loser, survivor, actor)
    if policy.demote_kv_after is not None and not dry_run:
        demote = TransformPolicy(demote_after=policy.demote_kv_after)
        report.demoted = demote_cold(engine, demote, actor=actor).demoted
    if not dry_run and store.meta("embedding_model") is not None:
        total = engine.vectors.count()
        used = store.vector_row_count()
        unused = total - used
        if total >= policy.compact_min_rows and unused > policy.compact_orphaned_fraction * total:
            engine.compact_vectors()
    if not dry_run:
        store.set_meta("last_maintain_at", str(now.timestamp()))
        engine.audit("maintain", actor=actor, **report.to_dict())
    return report


def _duplicates(engine: PolicyHost, policy: MaintenancePolicy) -> list[tuple[Memory, Memory]]:
    rows = engine.store.plaintext_scopes(tuple(RETRIEVABLE))
    if len(rows) < 2:
        return []
    # Only light tuples for all rows; Memory objects are built for duplicates only.
    scope = {r[0]: (r[2], r[3]) for r in rows}  # rowid -> (pack, access policy JSON)
    vec_of = {r[0]: r[1] for r in rows}
    parent = {r: r for r in scope}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    groups: dict[tuple[Any, ...], int] = {}
    for r in rows:
        key = (r[2], r[3], _normal(r[4]))
        first = groups.setdefault(key, r[0])
        if first != r[0]:
            union(first, r[0])
    with_vec = [r for r in scope if vec_of.get(r) is not None]
    if 1 < len(with_vec) <= policy.semantic_merge_limit and engine.store.meta("embedding_model"):
        mat = engine.vectors.rows(np.array([vec_of[r] for r in with_vec], dtype=np.int64))
        block = 1024
        for start in range(0, len(with_vec), block):
            sims = mat[start : start + block] @ mat.T
            ii, jj = np.nonzero(sims >= policy.merge_similarity)
            for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
                a, b = with_vec[start + i], with_vec[j]
                if a < b and scope[a] == scope[b]:
                    union(a, b)
    clusters: dict[int, list[int]] = {}
    for rowid in scope:
        clusters.setdefault(find(rowid), []).append(rowid)
    dup_rows = [r for members in clusters.values() if len(members) > 1 for r in members]
    memories = engine.store.by_rowids(dup_rows)
    out: list[tuple[Memory, Memory]] = []
    for members in clusters.values():
        if len(members) < 2:
            continue
        cluster = sorted((memories[r] for r in members), key=_survivor_key)
        out.extend((loser, cluster[0]) for loser in cluster[1:])
    return out


def _merge(engine: PolicyHost, loser: Memory, survivor: Memory, actor: str | None) -> None:
    current, _, _ = engine.require(survivor.id)
    tags = tuple(dict.fromkeys((*current.tags, *loser.tags)))
    if tags != current.tags:
        engine.update(survivor.id, tags=tags, actor=actor, system=True)
    engine.transition(
        loser.id,
        Event.MERGE,
        actor=actor,
        system=True,
        merged_into=survivor.id,
        reason="duplicate",
    )
    engine.store.add_uses(survivor.id, loser.access_count)
