"""The MIP manifest data model: typed, immutable, and lossless.

A manifest is parsed from outside data exactly once, here, at the edge:
strict JSON (no duplicate keys, no NaN, UTF-8 only), version negotiation,
the JSON Schema, then the cross-field rules the schema cannot express
(unique cube ids, unique payload paths, each payload under its cube's folder,
real calendar timestamps). Inside the code the typed objects are trusted.

Every level keeps the properties it does not know in ``extra``, and
:meth:`Manifest.to_dict` puts them back, so a 1.x reader that does not know a
field written by a newer 1.y writer neither drops nor changes it: the
canonical bytes, and therefore the signatures, survive a round trip.

Not here: reading archives (:mod:`protocol.archive`), payload content checks
(:mod:`protocol.payloads`), signatures (:mod:`protocol.signing`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .canonical import canonical_bytes
from .errors import ManifestError, Violation
from .schema import MANIFEST_SCHEMA_ID, schema_violations
from .version import MIP_VERSION, migrate_to_current

__all__ = [
    "AccessPolicy",
    "Author",
    "Behaviour",
    "EmbeddingSpec",
    "Governance",
    "LifecycleState",
    "Manifest",
    "MediaType",
    "MemCube",
    "MemoryType",
    "ModelFingerprint",
    "PayloadRef",
    "Provenance",
    "format_timestamp",
    "parse_json",
    "parse_timestamp",
]

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Deepest nesting of objects/arrays accepted in any JSON MIP parses.
MAX_JSON_DEPTH = 64


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


# --------------------------------------------------------------------------- helpers


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(data: bytes, *, what: str = "document", code: str = "manifest.bad_json") -> Any:
    """Strictly parse JSON from outside: UTF-8, no BOM, no duplicate keys, no NaN."""
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{what} is not valid UTF-8: {exc}", code="manifest.bad_encoding"
        ) from exc
    if text.startswith("\ufeff"):
        raise ManifestError(f"{what} starts with a byte-order mark", code="manifest.bad_encoding")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ManifestError(f"{what} is not valid JSON: {exc}", code=code) from exc
    if isinstance(value, str):
        _check_string(value, what)
    _check_structure(value, what)
    return value


def _check_structure(value: Any, what: str) -> None:
    # Iterative, so that a deep document cannot exhaust the stack of later
    # recursive code (schema validation, canonicalization, copies).
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
            for key in item:
                _check_string(key, what)
        elif isinstance(item, list):
            children = item
        else:
            children = ()
        for child in children:
            if isinstance(child, str):
                _check_string(child, what)
            elif isinstance(child, (dict, list)):
                if depth + 1 > MAX_JSON_DEPTH:
                    raise ManifestError(
                        f"{what} nests deeper than {MAX_JSON_DEPTH} levels",
                        code="manifest.too_deep",
                    )
                stack.append((child, depth + 1))


def _check_string(text: str, what: str) -> None:
    # JSON can spell both with escapes, but neither survives the places MIP
    # text goes (PostgreSQL text, SQLite FTS, tokenizers): refuse them here.
    if "\x00" in text:
        raise ManifestError(
            f"{what} has a string containing U+0000 (NUL), which MIP forbids",
            code="manifest.bad_encoding",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ManifestError(
            f"{what} has a string with a lone surrogate (not valid Unicode)",
            code="manifest.bad_encoding",
        ) from exc


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (as the schema's pattern admits) to an aware datetime."""
    head, sep, tail = text.partition(".")
    if sep:  # Python keeps microseconds: trim longer fractions, keep the offset
        digits = tail[: len(tail) - len(tail.lstrip("0123456789"))]
        offset = tail[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{offset}"
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp has no offset")
    return value


def format_timestamp(value: datetime) -> str:
    """Format an aware datetime as MIP writes timestamps: UTC, ``Z``, no fraction if whole."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _extra(
    data: Mapping[str, Any], known: Sequence[str], omitted: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    # Unknown keys, known keys written as an explicit null, and known keys
    # written with the value to_dict() leaves out (a default such as [] or
    # 0.5): all go back out unchanged, so that to_dict() reproduces the input
    # exactly and the canonical bytes (and signatures) survive a round trip.
    omitted = omitted or {}
    return {
        k: v
        for k, v in data.items()
        if k not in known
        or v is None
        or (k in omitted and not isinstance(v, bool) and v == omitted[k])
    }


def _merge(known: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(extra)
    out.update({k: v for k, v in known.items() if v is not None})
    return out


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Author:
    name: str
    email: str | None = None
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("name", "email", "url")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Author:
        return cls(data["name"], data.get("email"), data.get("url"), _extra(data, cls._KNOWN))

    def to_dict(self) -> dict[str, Any]:
        return _merge({"name": self.name, "email": self.email, "url": self.url}, self.extra)


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
            data["path"], data["media_type"], data["size"], data["sha256"], _extra(data, cls._KNOWN)
        )

    def to_dict(self) -> dict[str, Any]:
        known = {
            "path": self.path,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
        }
        return _merge(known, self.extra)


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
            extra=_extra(data, cls._KNOWN),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {k: getattr(self, k) for k in self.DIGESTED}
        if self.weights_sha256 is not None:
            known["weights_sha256"] = self.weights_sha256
        return _merge(known, self.extra)

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
            _extra(data, cls._KNOWN, {"principals": []}),
        )

    def to_dict(self) -> dict[str, Any]:
        known: dict[str, Any] = {"visibility": self.visibility}
        if self.principals:
            known["principals"] = list(self.principals)
        return _merge(known, self.extra)

    def allows(self, principal: str | None) -> bool:
        """Whether ``principal`` may read: public to all, restricted to the listed, private to none but listed."""
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
            _extra(data, cls._KNOWN, {"access": {"visibility": "public"}}),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {
            "access": self.access.to_dict() if self.access != AccessPolicy() else None,
            "usage_terms": self.usage_terms,
            "ttl_seconds": self.ttl_seconds,
            "expires_at": self.expires_at,
        }
        return _merge(known, self.extra)


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
            _extra(data, cls._KNOWN, {"derived_from": []}),
        )

    def to_dict(self) -> dict[str, Any]:
        known: dict[str, Any] = {"source": self.source, "author": self.author}
        if self.derived_from:
            known["derived_from"] = list(self.derived_from)
        return _merge(known, self.extra)


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
            _extra(data, cls._KNOWN, {"access_count": 0, "priority": 0.5}),
        )

    def to_dict(self) -> dict[str, Any]:
        known = {
            "access_count": self.access_count or None,
            "last_accessed_at": self.last_accessed_at,
            "priority": self.priority if self.priority != 0.5 else None,
        }
        return _merge(known, self.extra)


@dataclass(frozen=True)
class EmbeddingSpec:
    model: str
    dimension: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = ("model", "dimension")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmbeddingSpec:
        return cls(data["model"], data["dimension"], _extra(data, cls._KNOWN))

    def to_dict(self) -> dict[str, Any]:
        return _merge({"model": self.model, "dimension": self.dimension}, self.extra)


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
            extra=_extra(data, cls._KNOWN),
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
        return _merge(known, self.extra)

    def payload(self, media_type: str) -> PayloadRef | None:
        """The first payload of a media type, if any."""
        return next((p for p in self.payloads if p.media_type == media_type), None)

    @property
    def size(self) -> int:
        return sum(p.size for p in self.payloads)


@dataclass(frozen=True)
class Manifest:
    """A pack's manifest: what the pack is, and every byte it carries, by digest."""

    name: str
    version: str
    title: str
    license: str
    created_at: str
    cubes: tuple[MemCube, ...]
    mip_version: str = MIP_VERSION
    description: str = ""
    authors: tuple[Author, ...] = ()
    keywords: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KNOWN = (
        "mip_version",
        "name",
        "version",
        "title",
        "description",
        "license",
        "authors",
        "created_at",
        "keywords",
        "cubes",
    )

    # ---- construction from outside data

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and fully validate manifest bytes (any JSON spelling)."""
        if len(data) > MAX_MANIFEST_BYTES:
            # A ManifestError (callers of from_bytes catch that) with the limit's code.
            raise ManifestError(
                f"manifest is {len(data)} bytes; the limit is {MAX_MANIFEST_BYTES}",
                code="archive.limit.manifest_size",
            )
        return cls.from_dict(parse_json(data, what="manifest"))

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Validate a JSON value and build the manifest, keeping unknown fields."""
        if not isinstance(data, dict):
            raise ManifestError("manifest must be a JSON object", code="manifest.schema")
        data = migrate_to_current(data)
        violations = schema_violations(data, MANIFEST_SCHEMA_ID) + _cross_field_violations(data)
        if violations:
            first = violations[0]
            more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
            raise ManifestError(
                f"manifest is invalid at {first.pointer or '/'}: {first.message}{more}",
                code="manifest.schema",
                violations=violations,
            )
        return cls(
            name=data["name"],
            version=data["version"],
            title=data["title"],
            license=data["license"],
            created_at=data["created_at"],
            cubes=tuple(MemCube.from_dict(c) for c in data["cubes"]),
            mip_version=data["mip_version"],
            description=data.get("description", ""),
            authors=tuple(Author.from_dict(a) for a in data.get("authors", ())),
            keywords=tuple(data.get("keywords", ())),
            extra=_extra(data, cls._KNOWN, {"description": "", "authors": [], "keywords": []}),
        )

    # ---- output

    def to_dict(self) -> dict[str, Any]:
        known: dict[str, Any] = {
            "mip_version": self.mip_version,
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "license": self.license,
            "created_at": self.created_at,
            "cubes": [c.to_dict() for c in self.cubes],
        }
        if self.description:
            known["description"] = self.description
        if self.authors:
            known["authors"] = [a.to_dict() for a in self.authors]
        if self.keywords:
            known["keywords"] = list(self.keywords)
        return _merge(known, self.extra)

    def canonical_bytes(self) -> bytes:
        """The RFC 8785 bytes that are stored in a pack and signed."""
        return canonical_bytes(self.to_dict())

    # ---- conveniences

    @property
    def namespace(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def short_name(self) -> str:
        return self.name.split("/", 1)[1]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def cube(self, cube_id: str) -> MemCube:
        for cube in self.cubes:
            if cube.id == cube_id:
                return cube
        raise KeyError(cube_id)

    def payloads(self) -> list[PayloadRef]:
        return [p for c in self.cubes for p in c.payloads]

    @property
    def total_size(self) -> int:
        return sum(p.size for p in self.payloads())

    @property
    def memory_types(self) -> list[str]:
        return sorted({c.memory_type.value for c in self.cubes})

    def with_cubes(self, cubes: Sequence[MemCube]) -> Manifest:
        return replace(self, cubes=tuple(cubes))


def _cross_field_violations(data: Mapping[str, Any]) -> list[Violation]:
    """Rules JSON Schema cannot state. Runs on schema-shaped data only where shaped."""
    found: list[Violation] = []

    def check_time(pointer: str, value: Any) -> None:
        if isinstance(value, str):
            try:
                parse_timestamp(value)
            except ValueError as exc:
                found.append(Violation(pointer, f"{value!r} is not a real timestamp: {exc}"))

    check_time("/created_at", data.get("created_at"))
    cubes = data.get("cubes")
    if not isinstance(cubes, list):
        return found
    seen_ids: set[str] = set()
    seen_paths: set[str] = set()
    folders: set[str] = set()
    for i, cube in enumerate(cubes):
        if not isinstance(cube, dict):
            continue
        cube_id = cube.get("id")
        if isinstance(cube_id, str):
            if cube_id in seen_ids:
                found.append(Violation(f"/cubes/{i}/id", f"duplicate cube id {cube_id!r}"))
            seen_ids.add(cube_id)
        for key in ("created_at", "updated_at"):
            check_time(f"/cubes/{i}/{key}", cube.get(key))
        governance, behaviour = cube.get("governance"), cube.get("behaviour")
        if isinstance(governance, dict):
            check_time(f"/cubes/{i}/governance/expires_at", governance.get("expires_at"))
        if isinstance(behaviour, dict):
            check_time(f"/cubes/{i}/behaviour/last_accessed_at", behaviour.get("last_accessed_at"))
        payloads = cube.get("payloads")
        if not isinstance(payloads, list):
            continue
        for j, payload in enumerate(payloads):
            path = payload.get("path") if isinstance(payload, dict) else None
            if not isinstance(path, str):
                continue
            pointer = f"/cubes/{i}/payloads/{j}/path"
            folded = path.casefold()
            if folded in seen_paths:
                found.append(Violation(pointer, f"duplicate payload path {path!r}"))
            parents = {folded.rsplit("/", n)[0] for n in range(1, folded.count("/") + 1)}
            if folded in folders or parents & seen_paths:
                found.append(
                    Violation(pointer, f"payload path {path!r} clashes with a folder of another")
                )
            seen_paths.add(folded)
            folders |= parents
            if isinstance(cube_id, str) and not path.startswith(f"payloads/{cube_id}/"):
                found.append(
                    Violation(pointer, f"payload path must be under 'payloads/{cube_id}/'")
                )
    return found
