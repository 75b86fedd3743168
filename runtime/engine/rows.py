"""How a :class:`~runtime.engine.types.Memory` becomes SQLite values and back.

One codec for the three shapes a memory takes in ``engine.db``: a
``memories`` row (:func:`row_to_memory`, :func:`memory_values`), and a version
snapshot in ``memory_versions`` (:func:`snapshot_of`,
:func:`memory_from_snapshot`). Times are float epoch seconds; lists, mappings,
access policies and fingerprints are compact JSON with sorted keys.

Not here: the schema (:mod:`runtime.engine.schema`) or any query
(:mod:`runtime.engine.store`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from protocol import AccessPolicy, MemoryType, ModelFingerprint

from .lifecycle import State
from .types import Memory, VersionEntry, from_epoch, to_epoch

__all__ = [
    "COLUMNS",
    "SNAPSHOT_FIELDS",
    "dumps",
    "memory_from_snapshot",
    "memory_values",
    "row_to_memory",
    "snapshot_of",
    "version_entry",
]

#: The content fields a version snapshot holds (behaviour counters excluded).
SNAPSHOT_FIELDS = (
    "text",
    "state",
    "tags",
    "metadata",
    "priority",
    "expires_at",
    "access",
    "usage_terms",
    "merged_into",
    "memory_type",
    "pack",
    "pack_version",
    "cube_id",
    "source",
    "fingerprint",
    "payloads",
    "token_count",
    "created_at",
    "updated_at",
)

#: Every column of ``memories``, in the order :func:`row_to_memory` reads them.
COLUMNS = (
    "rowid, id, memory_type, text, state, version, created_at, updated_at, tags, metadata, pack, "
    "pack_version, cube_id, priority, access_count, last_accessed_at, expires_at, access, "
    "usage_terms, source, merged_into, fingerprint, payloads, token_count, vec_row"
)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def row_to_memory(row: sqlite3.Row) -> Memory:
    fingerprint = row["fingerprint"]
    created = from_epoch(row["created_at"])
    updated = from_epoch(row["updated_at"])
    assert created is not None
    assert updated is not None
    return Memory(
        id=row["id"],
        memory_type=MemoryType(row["memory_type"]),
        text=row["text"],
        state=State(row["state"]),
        version=row["version"],
        created_at=created,
        updated_at=updated,
        tags=tuple(json.loads(row["tags"])),
        metadata=json.loads(row["metadata"]),
        pack=row["pack"],
        pack_version=row["pack_version"],
        cube_id=row["cube_id"],
        priority=row["priority"],
        access_count=row["access_count"],
        last_accessed_at=from_epoch(row["last_accessed_at"]),
        expires_at=from_epoch(row["expires_at"]),
        access=AccessPolicy.from_dict(json.loads(row["access"])),
        usage_terms=row["usage_terms"],
        source=row["source"],
        merged_into=row["merged_into"],
        fingerprint=ModelFingerprint.from_dict(json.loads(fingerprint)) if fingerprint else None,
        payloads=json.loads(row["payloads"]),
        token_count=row["token_count"],
    )


def memory_values(m: Memory) -> tuple[Any, ...]:
    """The ``memories`` columns from ``id`` to ``token_count`` (``rowid``/``vec_row`` excluded)."""
    return (
        m.id,
        m.memory_type.value,
        m.text,
        m.state.value,
        m.version,
        to_epoch(m.created_at),
        to_epoch(m.updated_at),
        dumps(list(m.tags)),
        dumps(dict(m.metadata)),
        m.pack,
        m.pack_version,
        m.cube_id,
        m.priority,
        m.access_count,
        to_epoch(m.last_accessed_at) if m.last_accessed_at else None,
        to_epoch(m.expires_at) if m.expires_at else None,
        dumps(m.access.to_dict()),
        m.usage_terms,
        m.source,
        m.merged_into,
        dumps(m.fingerprint.to_dict()) if m.fingerprint else None,
        dumps(dict(m.payloads)),
        m.token_count,
    )


def snapshot_of(memory: Memory) -> dict[str, Any]:
    """The versioned content of a memory as JSON-able values (times as epoch floats)."""
    return {
        "text": memory.text,
        "state": memory.state.value,
        "tags": list(memory.tags),
        "metadata": dict(memory.metadata),
        "priority": memory.priority,
        "expires_at": to_epoch(memory.expires_at) if memory.expires_at else None,
        "access": memory.access.to_dict(),
        "usage_terms": memory.usage_terms,
        "merged_into": memory.merged_into,
        "memory_type": memory.memory_type.value,
        "pack": memory.pack,
        "pack_version": memory.pack_version,
        "cube_id": memory.cube_id,
        "source": memory.source,
        "fingerprint": memory.fingerprint.to_dict() if memory.fingerprint else None,
        "payloads": dict(memory.payloads),
        "token_count": memory.token_count,
        "created_at": to_epoch(memory.created_at),
        "updated_at": to_epoch(memory.updated_at),
    }


def memory_from_snapshot(memory_id: str, version: int, snap: Mapping[str, Any]) -> Memory:
    created = from_epoch(snap["created_at"])
    updated = from_epoch(snap["updated_at"])
    assert created is not None
    assert updated is not None
    fp = snap.get("fingerprint")
    return Memory(
        id=memory_id,
        memory_type=MemoryType(snap["memory_type"]),
        text=snap["text"],
        state=State(snap["state"]),
        version=version,
        created_at=created,
        updated_at=updated,
        tags=tuple(snap["tags"]),
        metadata=dict(snap["metadata"]),
        pack=snap.get("pack"),
        pack_version=snap.get("pack_version"),
        cube_id=snap.get("cube_id"),
        priority=snap["priority"],
        expires_at=from_epoch(snap.get("expires_at")),
        access=AccessPolicy.from_dict(snap["access"]),
        usage_terms=snap.get("usage_terms"),
        source=snap.get("source"),
        merged_into=snap.get("merged_into"),
        fingerprint=ModelFingerprint.from_dict(fp) if fp else None,
        payloads=dict(snap.get("payloads") or {}),
        token_count=snap.get("token_count"),
    )


def version_entry(row: sqlite3.Row) -> VersionEntry:
    at = from_epoch(row["at"])
    assert at is not None
    snapshot = json.loads(row["snapshot"])
    return VersionEntry(row["memory_id"], row["version"], at, row["event"], row["actor"], snapshot)
