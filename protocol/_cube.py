"""What a MemCube is made of: the typed, immutable parts of a manifest below the top level.

The enums of the MIP vocabulary (memory types, lifecycle states, payload
media types) and one frozen dataclass per manifest object: a cube, its
payload references, the model fingerprint it is bound to, its governance,
provenance, behaviour and embedding. Each ``from_dict`` trusts data that
:mod:`protocol._manifest_rules` has already validated, and keeps what it does
not know (:mod:`protocol._lossless`), so ``to_dict`` gives back the input.
Import these names from :mod:`protocol.manifest` or :mod:`protocol`.

Not here: the top-level :class:`protocol.manifest.Manifest` and parsing bytes
(:mod:`protocol.manifest`), validation (:mod:`protocol._manifest_rules`),
payload content (:mod:`protocol.payloads`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._lossless import extra_fields, merge_fields
from .canonical import canonical_sha256

__all__ = [
    "AccessPolicy",
    "Author",
    "Behaviour",
    "EmbeddingSpec",
    "Governance",
    "LifecycleState",
    "MediaType",
    "MemCube",
    "MemoryType",
    "ModelFingerprint",
    "PayloadRef",
    "Provenance",
]


class MemoryType(StrEnum):
    PLAINTEXT = "plaintext"
    ACTIVATION = "activation"
    PARAMETER = "parameter"


class LifecycleState(StrEnum):
    GENERATED = "generated"
    ACTIVATED = "activated"
    MERGED = "merged"
    ARCHIVED = "archived"
    EXPIRED = "expired"


class MediaType(StrEnum):
    MEMORIES_JSONL = "application/vnd.mip.memories+jsonl"
    KV_CACHE = "application/vnd.mip.kv-cache+safetensors"
    LORA_CONFIG = "application/vnd.mip.lora-config+json"
    LORA_WEIGHTS = "application/vnd.mip.lora-weights+safetensors"


@dataclass(frozen=True)
class Author:
    name: str
    email: str | None = None
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("name", "email", "url")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Author:
        return cls(data["name"], data.get("email"), data.get("url"), extra_fields(data, cls._KNOWN))

    def to_dict(self) -> dict[str, Any]:
        return merge_fields({"name": self.name, "email": self.email, "url": self.url}, self.extra)


@dataclass(frozen=True)
class PayloadRef:
    """A payload file bound to the manifest by its path, media type, size and sha256."""

    path: str
    media_type: str
    size: int
    sha256: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("path", "media_type", "size", "sha256")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PayloadRef:
        return cls(
            data["path"],
            data["media_type"],
            data["size"],
            data["sha256"],
            extra_fields(data, cls._KNOWN),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {
            "path": self.path,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
        }
        return merge_fields(known, self.extra)


@dataclass(frozen=True)
class ModelFingerprint:
    """The identity of the model a KV cache or LoRA adapter was made for.

    Two fingerprints are compatible only when every field is equal: a cache
    from a model with the same shapes but another config or tokenizer would
    load without error and silently change the outputs. ``weights_sha256``
    (MIP 1.1, optional) binds to the exact checkpoint as well: two fine-tunes
    of one base share config and tokenizer, not weights. It is checked when the
    artefact's fingerprint carries it (see :meth:`mismatches`).
    """

    architecture: str
    model_id: str
    config_sha256: str
    tokenizer_sha256: str
    dtype: str
    num_layers: int
    num_kv_heads: int
    head_dim: int
    weights_sha256: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    #: The fields of MIP 1.0: the fingerprint digest covers exactly these.
    DIGESTED = (
        "architecture",
        "model_id",
        "config_sha256",
        "tokenizer_sha256",
        "dtype",
        "num_layers",
        "num_kv_heads",
        "head_dim",
    )
    _KNOWN = (*DIGESTED, "weights_sha256")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelFingerprint:
        return cls(
            architecture=data["architecture"],
            model_id=data["model_id"],
            config_sha256=data["config_sha256"],
            tokenizer_sha256=data["tokenizer_sha256"],
            dtype=data["dtype"],
            num_layers=data["num_layers"],
            num_kv_heads=data["num_kv_heads"],
            head_dim=data["head_dim"],
            weights_sha256=data.get("weights_sha256"),
            extra=extra_fields(data, cls._KNOWN),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {k: getattr(self, k) for k in self.DIGESTED}
        if self.weights_sha256 is not None:
            known["weights_sha256"] = self.weights_sha256
        return merge_fields(known, self.extra)

    def mismatches(self, other: ModelFingerprint) -> list[str]:
        """Names of the identity fields in which ``other`` (the running model) differs from self.

        ``self`` is the fingerprint an artefact was made for. Its
        ``weights_sha256``, when present, must be matched by ``other``'s; an
        artefact without one (MIP 1.0) is bound to config, tokenizer and shapes only.
        """
        fields = [
            k for k in self.DIGESTED if k != "model_id" and getattr(self, k) != getattr(other, k)
        ]
        if self.weights_sha256 is not None and self.weights_sha256 != other.weights_sha256:
            fields.append("weights_sha256")
        return fields

    def is_compatible(self, other: ModelFingerprint) -> bool:
        # model_id is a label (a hub id or a local path); identity is in the digests and shapes.
        return not self.mismatches(other)

    def digest(self) -> str:
        """The fingerprint digest (SPEC section 5.3): sha256 of the canonical MIP 1.0 fields.

        ``weights_sha256`` (1.1) and unknown fields are left out, so every
        reader computes the same digest; KV-cache headers and MIP 2 blob
        selection name models by it.
        """
        return canonical_sha256({k: getattr(self, k) for k in self.DIGESTED})


@dataclass(frozen=True)
class AccessPolicy:
    visibility: str = "public"
    principals: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("visibility", "principals")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccessPolicy:
        return cls(
            data["visibility"],
            tuple(data.get("principals", ())),
            extra_fields(data, cls._KNOWN, {"principals": []}),
        )

    def to_dict(self) -> dict[str, Any]:
        known: dict[str, Any] = {"visibility": self.visibility}
        if self.principals:
            known["principals"] = list(self.principals)
        return merge_fields(known, self.extra)

    def allows(self, principal: str | None) -> bool:
        """Whether ``principal`` may read.

        Public: everyone. Restricted and private: only the listed principals.
        """
        if self.visibility == "public":
            return True
        return principal is not None and principal in self.principals


@dataclass(frozen=True)
class Governance:
    access: AccessPolicy = field(default_factory=AccessPolicy)
    usage_terms: str | None = None
    ttl_seconds: int | None = None
    expires_at: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("access", "usage_terms", "ttl_seconds", "expires_at")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Governance:
        access = data.get("access")
        return cls(
            AccessPolicy.from_dict(access) if access is not None else AccessPolicy(),
            data.get("usage_terms"),
            data.get("ttl_seconds"),
            data.get("expires_at"),
            extra_fields(data, cls._KNOWN, {"access": {"visibility": "public"}}),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {
            "access": self.access.to_dict() if self.access != AccessPolicy() else None,
            "usage_terms": self.usage_terms,
            "ttl_seconds": self.ttl_seconds,
            "expires_at": self.expires_at,
        }
        return merge_fields(known, self.extra)


@dataclass(frozen=True)
class Provenance:
    source: str | None = None
    author: str | None = None
    derived_from: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("source", "author", "derived_from")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        return cls(
            data.get("source"),
            data.get("author"),
            tuple(data.get("derived_from", ())),
            extra_fields(data, cls._KNOWN, {"derived_from": []}),
        )

    def to_dict(self) -> dict[str, Any]:
        known: dict[str, Any] = {"source": self.source, "author": self.author}
        if self.derived_from:
            known["derived_from"] = list(self.derived_from)
        return merge_fields(known, self.extra)


@dataclass(frozen=True)
class Behaviour:
    access_count: int = 0
    last_accessed_at: str | None = None
    priority: float = 0.5
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("access_count", "last_accessed_at", "priority")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Behaviour:
        return cls(
            data.get("access_count", 0),
            data.get("last_accessed_at"),
            data.get("priority", 0.5),
            extra_fields(data, cls._KNOWN, {"access_count": 0, "priority": 0.5}),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {
            "access_count": self.access_count or None,
            "last_accessed_at": self.last_accessed_at,
            "priority": self.priority if self.priority != 0.5 else None,
        }
        return merge_fields(known, self.extra)


@dataclass(frozen=True)
class EmbeddingSpec:
    model: str
    dimension: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("model", "dimension")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmbeddingSpec:
        return cls(data["model"], data["dimension"], extra_fields(data, cls._KNOWN))

    def to_dict(self) -> dict[str, Any]:
        return merge_fields({"model": self.model, "dimension": self.dimension}, self.extra)


@dataclass(frozen=True)
class MemCube:
    """One unit of memory: its payloads plus the metadata the MemOS paper names."""

    id: str
    memory_type: MemoryType
    payloads: tuple[PayloadRef, ...]
    created_at: str
    lifecycle: LifecycleState = LifecycleState.GENERATED
    version: int = 1
    title: str | None = None
    updated_at: str | None = None
    provenance: Provenance | None = None
    governance: Governance | None = None
    behaviour: Behaviour | None = None
    model: ModelFingerprint | None = None
    embedding: EmbeddingSpec | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = (
        "id",
        "memory_type",
        "payloads",
        "created_at",
        "lifecycle",
        "version",
        "title",
        "updated_at",
        "provenance",
        "governance",
        "behaviour",
        "model",
        "embedding",
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemCube:
        def opt(key: str, kind: Any) -> Any:
            value = data.get(key)
            return kind.from_dict(value) if value is not None else None

        return cls(
            id=data["id"],
            memory_type=MemoryType(data["memory_type"]),
            payloads=tuple(PayloadRef.from_dict(p) for p in data["payloads"]),
            created_at=data["created_at"],
            lifecycle=LifecycleState(data["lifecycle"]),
            version=data["version"],
            title=data.get("title"),
            updated_at=data.get("updated_at"),
            provenance=opt("provenance", Provenance),
            governance=opt("governance", Governance),
            behaviour=opt("behaviour", Behaviour),
            model=opt("model", ModelFingerprint),
            embedding=opt("embedding", EmbeddingSpec),
            extra=extra_fields(data, cls._KNOWN),
        )

    def to_dict(self) -> dict[str, Any]:
        known: dict[str, Any] = {
            "id": self.id,
            "memory_type": self.memory_type.value,
            "payloads": [p.to_dict() for p in self.payloads],
            "created_at": self.created_at,
            "lifecycle": self.lifecycle.value,
            "version": self.version,
            "title": self.title,
            "updated_at": self.updated_at,
        }
        for key in ("provenance", "governance", "behaviour", "model", "embedding"):
            value = getattr(self, key)
            known[key] = value.to_dict() if value is not None else None
        return merge_fields(known, self.extra)

    def payload(self, media_type: str) -> PayloadRef | None:
        """The first payload of a media type, if any."""
        return next((p for p in self.payloads if p.media_type == media_type), None)

    @property
    def size(self) -> int:
        return sum(p.size for p in self.payloads)
