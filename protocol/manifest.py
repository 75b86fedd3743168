"""The MIP manifest data model: typed, immutable, and lossless.

A manifest is parsed from outside data exactly once, at the edge, by
:meth:`Manifest.from_bytes` or :meth:`Manifest.from_dict`: strict JSON
(:mod:`protocol._json`), then version negotiation, the JSON Schema and the
cross-field rules (:mod:`protocol._manifest_rules`), then the typed objects
(:class:`Manifest` here, its cubes and their parts in :mod:`protocol._cube`).
Inside the code the typed objects are trusted.

Every level keeps the properties it does not know in ``extra``, and
:meth:`Manifest.to_dict` puts them back (:mod:`protocol._lossless`), so a 1.x
reader that does not know a field written by a newer 1.y writer neither drops
nor changes it: the canonical bytes, and therefore the signatures, survive a
round trip.

This module is the public face of the data model: import every name in
``__all__`` from here (or from :mod:`protocol`), not from the private modules.

Not here: reading archives (:mod:`protocol.archive`), payload content checks
(:mod:`protocol.payloads`), signatures (:mod:`protocol.signing`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ._blob_rules import check_blob_conflicts
from ._cube import (
    AccessPolicy,
    Author,
    Behaviour,
    EmbeddingSpec,
    Governance,
    LifecycleState,
    MediaType,
    MemCube,
    MemoryType,
    ModelFingerprint,
    PayloadRef,
    Provenance,
)
from ._json import MAX_JSON_DEPTH, format_timestamp, parse_json, parse_timestamp
from ._lossless import extra_fields, merge_fields
from ._manifest_rules import validated_manifest
from .canonical import canonical_bytes
from .errors import ManifestError
from .version import MIP_VERSION, major_of

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_MANIFEST_BYTES",
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
        data = validated_manifest(data)
        manifest = cls(
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
            extra=extra_fields(
                data, cls._KNOWN, {"description": "", "authors": [], "keywords": []}
            ),
        )
        if manifest.major >= 2:
            # MIP 2 stores each digest once: every payload naming it must agree on it.
            check_blob_conflicts(manifest.cubes)
        return manifest

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
        return merge_fields(known, self.extra)

    def canonical_bytes(self) -> bytes:
        """The RFC 8785 bytes that are stored in a pack and signed."""
        return canonical_bytes(self.to_dict())

    # ---- conveniences

    @property
    def major(self) -> int:
        """The MIP major version: 1 (a gzip'd tar of payloads) or 2 (blobs)."""
        return major_of(self.mip_version)

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
