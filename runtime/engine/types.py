"""The engine's domain objects (frozen dataclasses). No I/O here.

Not here: how they are stored (:mod:`runtime.engine.rows`, :mod:`runtime.engine.store`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from protocol import AccessPolicy, MemoryType, ModelFingerprint, format_timestamp

from .lifecycle import State

__all__ = [
    "AuditEntry",
    "Filters",
    "KVCacheRecord",
    "Memory",
    "NewMemory",
    "PackRecord",
    "SearchHit",
    "VersionEntry",
    "from_epoch",
    "iso",
    "to_epoch",
]


def to_epoch(value: datetime) -> float:
    return value.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, float | int):
        value = datetime.fromtimestamp(value, UTC)
    return format_timestamp(value)


@dataclass(frozen=True)
class Memory:
    """One memory in the local engine (a plaintext record, or a KV/LoRA cube)."""

    id: str
    memory_type: MemoryType
    text: str
    state: State
    version: int
    created_at: datetime
    updated_at: datetime
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    pack: str | None = None
    pack_version: str | None = None
    cube_id: str | None = None
    priority: float = 0.5
    access_count: int = 0
    last_accessed_at: datetime | None = None
    expires_at: datetime | None = None
    access: AccessPolicy = field(default_factory=AccessPolicy)
    usage_terms: str | None = None
    source: str | None = None
    merged_into: str | None = None
    fingerprint: ModelFingerprint | None = None
    payloads: Mapping[str, str] = field(default_factory=dict)  # media type -> blob sha256
    token_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "memory_type": self.memory_type.value,
            "text": self.text,
            "state": self.state.value,
            "version": self.version,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "pack": self.pack,
            "pack_version": self.pack_version,
            "cube_id": self.cube_id,
            "priority": self.priority,
            "access_count": self.access_count,
            "last_accessed_at": iso(self.last_accessed_at),
            "expires_at": iso(self.expires_at),
            "access": self.access.to_dict(),
            "usage_terms": self.usage_terms,
            "source": self.source,
            "merged_into": self.merged_into,
            "model": self.fingerprint.model_id if self.fingerprint else None,
            "token_count": self.token_count,
        }


@dataclass(frozen=True)
class NewMemory:
    """A memory to add (from the SDK, the CLI or a pack)."""

    text: str
    id: str | None = None
    memory_type: MemoryType = MemoryType.PLAINTEXT
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

    def __post_init__(self) -> None:  # callers may pass the type's name ("activation")
        object.__setattr__(self, "memory_type", MemoryType(self.memory_type))

    def build(self, memory_id: str, now: datetime) -> Memory:
        """The memory this becomes when stored at ``now`` (version 1)."""
        return Memory(
            id=memory_id,
            memory_type=self.memory_type,
            text=self.text,
            state=self.state,
            version=1,
            created_at=self.created_at or now,
            updated_at=now,
            tags=tuple(self.tags),
            metadata=dict(self.metadata),
            pack=self.pack,
            pack_version=self.pack_version,
            cube_id=self.cube_id,
            priority=float(self.priority),
            access_count=self.access_count,
            expires_at=self.expires_at,
            access=self.access,
            usage_terms=self.usage_terms,
            source=self.source,
            fingerprint=self.fingerprint,
            payloads=dict(self.payloads),
            token_count=self.token_count,
        )


@dataclass(frozen=True)
class PackRecord:
    """An installed pack as the store keeps it (``installed_at`` in epoch seconds)."""

    name: str
    version: str
    sha256: str
    size: int
    registry: str | None
    installed_at: float
    signed_by: tuple[str, ...]
    memories: int  # not removed


@dataclass(frozen=True)
class KVCacheRecord:
    """One activation form of a plaintext memory, for one model (``kv_caches`` row)."""

    memory_id: str
    fingerprint_digest: str
    sha256: str
    size: int
    token_count: int
    last_used_at: float


@dataclass(frozen=True)
class Filters:
    """Symbolic filters: every given condition must hold."""

    tags: tuple[str, ...] = ()  # all of these tags
    pack: str | None = None
    memory_types: tuple[str, ...] = ()
    states: tuple[State, ...] = ()  # default: the retrievable states
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)  # metadata.<key> == value

    @property
    def symbolic(self) -> bool:
        """Whether any condition besides the states is given."""
        return bool(
            self.tags or self.pack or self.memory_types or self.metadata
            or self.created_after or self.created_before
            or self.updated_after or self.updated_before
        )


@dataclass(frozen=True)
class SearchHit:
    memory: Memory
    score: float
    semantic_rank: int | None
    keyword_rank: int | None
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.memory.to_dict(),
            "score": round(self.score, 6),
            "semantic_rank": self.semantic_rank,
            "keyword_rank": self.keyword_rank,
            "similarity": None if self.similarity is None else round(self.similarity, 6),
        }


@dataclass(frozen=True)
class VersionEntry:
    memory_id: str
    version: int
    at: datetime
    event: str
    actor: str | None
    snapshot: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory_id": self.memory_id,
            "version": self.version,
            "at": iso(self.at),
            "event": self.event,
            "actor": self.actor,
            "snapshot": dict(self.snapshot),
        }


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str | None
    action: str
    target: str | None
    detail: Mapping[str, Any]
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": dict(self.detail),
            "hash": self.hash,
        }
