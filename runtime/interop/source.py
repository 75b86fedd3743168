"""Memories to export: from a ``.memcube`` file, or a pack installed in MEMOS_HOME.

A ``.memcube`` is read with the protocol's checks (``read_pack``: limits,
digests, records) into a temporary folder; an installed pack is read through
the engine as a principal, so its access policies apply. Provenance written
by :mod:`.packer` gives back each memory's original id and timestamps.

Not here: writing any format (one module each).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from protocol import MediaType, MemoryType, iter_memory_records, parse_timestamp, read_pack

from ..engine.types import Filters
from ..sdk import MemOS
from .model import PROVENANCE_KEY, PortableMemory

__all__ = ["from_installed", "from_pack_file"]

MAX_EXPORT = 10_000_000


def _restore(
    record_id: str, text: str, tags: tuple[str, ...], metadata: Mapping[str, Any],
    created: datetime | None, updated: datetime | None,
) -> PortableMemory:  # fmt: skip
    meta = dict(metadata)
    prov = meta.pop(PROVENANCE_KEY, None)
    prov = prov if isinstance(prov, dict) else {}
    original = prov.get("original_id") if isinstance(prov.get("original_id"), str) else None
    if prov:  # imported: the source's own times, not the pack's or the install's
        created = _when(prov.get("created_at"))
        updated = _when(prov.get("updated_at"))
    return PortableMemory(
        original_id=original or record_id, text=text,
        system=str(prov.get("system") or "memstore"), created_at=created, updated_at=updated,
        tags=tags, metadata=meta,
    )  # fmt: skip


def _when(value: Any) -> datetime | None:
    return parse_timestamp(value) if isinstance(value, str) else None


def from_pack_file(path: Path) -> list[PortableMemory]:
    with tempfile.TemporaryDirectory(prefix="memos-export-") as tmp:
        pack = read_pack(path, target=Path(tmp))
        out = []
        for cube in pack.manifest.cubes:
            if cube.memory_type is not MemoryType.PLAINTEXT:
                continue
            for ref in cube.payloads:
                if ref.media_type != MediaType.MEMORIES_JSONL:
                    continue
                with open(pack.payload_path(ref), "rb") as fh:
                    for rec in iter_memory_records(fh):
                        out.append(_restore(
                            rec.id, rec.text, tuple(rec.tags), rec.metadata,
                            parse_timestamp(rec.created_at) if rec.created_at else None,
                            parse_timestamp(rec.updated_at) if rec.updated_at else None,
                        ))  # fmt: skip
        return out


def from_installed(memos: MemOS, pack: str) -> list[PortableMemory]:
    """The installed pack's plaintext memories that ``memos``'s principal may read."""
    memories = memos.engine.list_memories(
        Filters(pack=pack), limit=MAX_EXPORT, principal=memos.principal
    )
    out = []
    for m in memories:
        if m.memory_type is not MemoryType.PLAINTEXT:
            continue
        record_id = m.id.rsplit("/", 1)[-1]
        out.append(_restore(record_id, m.text, m.tags, m.metadata, m.created_at, None))
    return out
