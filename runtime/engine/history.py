"""Time Machine: a memory as it was at a past time, and the content a rollback restores.

Every change to a memory stores a full snapshot (``memory_versions``), so a
past state is read, not recomputed. A rollback restores a version's content
and lifecycle state as a *new* version, keeping the memory's creation time and
its use counters (behaviour, not content).

Not here: access checks, audit entries and the write itself (the engine's
``as_of`` and ``rollback``), SQL (:mod:`runtime.engine.store`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ..errors import NotFoundError
from .rows import memory_from_snapshot
from .store import Store
from .types import Memory, to_epoch

__all__ = ["memory_as_of", "rollback_target"]


def memory_as_of(store: Store, memory_id: str, when: datetime) -> Memory:
    """The memory's version in force at ``when``; ``engine.not_yet`` before it existed."""
    entry = store.version_as_of(memory_id, to_epoch(when))
    if entry is None:
        if store.get(memory_id) is None:
            raise NotFoundError(f"no memory {memory_id!r}", memory_id=memory_id)
        raise NotFoundError(
            f"memory {memory_id!r} did not exist at {when.isoformat()}", code="engine.not_yet"
        )
    return memory_from_snapshot(memory_id, entry.version, entry.snapshot)


def rollback_target(store: Store, current: Memory, version: int) -> Memory:
    """``current`` with version ``version``'s content and state (numbered as ``current``)."""
    entry = store.version(current.id, version)
    if entry is None:
        raise NotFoundError(
            f"memory {current.id!r} has no version {version}",
            code="engine.no_such_version",
            available=[v.version for v in store.versions(current.id)],
        )
    target = memory_from_snapshot(current.id, current.version, entry.snapshot)
    return replace(
        target, access_count=current.access_count, last_accessed_at=current.last_accessed_at,
        created_at=current.created_at,
    )
