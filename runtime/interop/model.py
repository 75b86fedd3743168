"""The neutral memory every importer produces and every exporter consumes.

A :class:`PortableMemory` is validated when it is built from outside data
(:func:`portable`): text length, tag and metadata types, timestamps. Inside, the
types are trusted. Provenance (the source system and its original id, and the
source's own timestamps) travels in the record's metadata under
:data:`PROVENANCE_KEY`, so a pack says where each memory came from.

Not here: reading files (:mod:`.safe_read`), writing packs (:mod:`.packer`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from protocol import format_timestamp

from ..errors import InteropError

__all__ = [
    "MAX_TEXT",
    "PROVENANCE_KEY",
    "ExportReport",
    "ImportResult",
    "PortableMemory",
    "Skipped",
    "parse_time",
    "portable",
]

#: Metadata key of a memory's provenance: {"system", "original_id", "created_at", ...}.
PROVENANCE_KEY = "memstore.provenance"
MAX_TEXT = 65_536  # the MIP record limit
MAX_TAGS = 100
MAX_TAG = 100
MAX_METADATA_BYTES = 256 * 1024
MAX_ID = 1000


@dataclass(frozen=True)
class PortableMemory:
    """One memory, as another system held it."""

    original_id: str
    text: str
    system: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {"system": self.system, "original_id": self.original_id}
        if self.created_at is not None:
            out["created_at"] = format_timestamp(self.created_at)
        if self.updated_at is not None:
            out["updated_at"] = format_timestamp(self.updated_at)
        return out


@dataclass(frozen=True)
class Skipped:
    """Something a source held, or a target cannot carry, with the reason."""

    item: str
    what: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"item": self.item, "what": self.what, "reason": self.reason}


@dataclass
class ImportResult:
    out: str
    name: str
    version: str
    system: str
    memories: int
    skipped: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": self.out, "name": self.name, "version": self.version, "system": self.system,
            "memories": self.memories, "skipped": [s.to_dict() for s in self.skipped],
        }  # fmt: skip


@dataclass
class ExportReport:
    """What was written, and everything the target format could not carry."""

    out: str
    format: str
    memories: int
    not_carried: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": self.out, "format": self.format, "memories": self.memories,
            "not_carried": [s.to_dict() for s in self.not_carried],
        }  # fmt: skip


def bad(message: str, code: str = "interop.bad_record", **detail: Any) -> InteropError:
    return InteropError(message, code=f"interop.{code}" if "." not in code else code, **detail)


def parse_time(value: Any, where: str) -> datetime | None:
    """ISO 8601 text (naive = UTC) or Unix seconds/milliseconds; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise bad(f"{where}: a timestamp must be text or a number, not {value!r}", where=where)
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise bad(f"{where}: {value!r} is not a time", where=where) from exc
    if not isinstance(value, str) or len(value) > 64:
        raise bad(f"{where}: a timestamp must be ISO text or a number", where=where)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad(f"{where}: {value!r} is not an ISO time", where=where) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise bad(f"{where}: text must be a string, not {type(value).__name__}", where=where)
    if len(value) > MAX_TEXT:
        raise bad(
            f"{where}: text is {len(value)} characters, more than {MAX_TEXT}",
            "field_too_large", where=where,
        )  # fmt: skip
    if not value.strip():
        raise bad(f"{where}: text is empty", where=where)
    return value


def _tags(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise bad(f"{where}: tags must be a list of non-empty strings", where=where)
    if len(value) > MAX_TAGS or any(len(t) > MAX_TAG for t in value):
        raise bad(f"{where}: too many or too long tags", "field_too_large", where=where)
    return tuple(dict.fromkeys(value))


def _metadata(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(f"{where}: metadata must be an object", where=where)
    size = len(json.dumps(value, ensure_ascii=False, default=str))
    if size > MAX_METADATA_BYTES:
        raise bad(f"{where}: metadata is {size} bytes", "field_too_large", where=where)
    return dict(value)


def portable(
    *,
    system: str,
    original_id: Any,
    text: Any,
    where: str,
    created_at: Any = None,
    updated_at: Any = None,
    tags: Any = None,
    metadata: Any = None,
) -> PortableMemory:
    """Build a memory from outside values, refusing wrong types and huge fields."""
    if isinstance(original_id, int) and not isinstance(original_id, bool):
        original_id = str(original_id)
    if not isinstance(original_id, str) or not original_id or len(original_id) > MAX_ID:
        raise bad(f"{where}: the id must be a non-empty string", where=where)
    return PortableMemory(
        original_id=original_id,
        text=_text(text, where),
        system=system,
        created_at=parse_time(created_at, f"{where} created_at"),
        updated_at=parse_time(updated_at, f"{where} updated_at"),
        tags=_tags(tags, where),
        metadata=_metadata(metadata, where),
    )
