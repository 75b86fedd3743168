"""Mem0 / OpenMemory: the JSON of ``Memory.get_all()`` and the OpenMemory backup zip.

``get_all()`` answers ``{"results": [...]}`` (older versions: the bare list);
each item has ``id``, ``memory`` (the text), ``metadata``, ``categories``,
``created_at``/``updated_at`` and the scoping ids (``user_id``, ``agent_id``,
``run_id``), which are kept in metadata. The OpenMemory backup zip holds
``memories.json`` (the same items, or ``{"memories": [...]}``, with ``content``
for the text) and/or ``memories.jsonl.gz`` (one item a line); when both are
present the JSONL wins (it is the complete one).

The exporter writes the ``get_all()`` shape: everything a MIP record holds fits.
Not here: packing (:mod:`.packer`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from protocol import format_timestamp

from ..errors import InteropError
from .model import ExportReport, PortableMemory, Skipped, portable
from .safe_read import json_bytes, read_file, read_gzip, read_zip_members

__all__ = ["SYSTEM", "export_mem0", "read_mem0"]

SYSTEM = "mem0"
SCOPE_KEYS = ("user_id", "agent_id", "run_id", "actor_id", "role", "app_name", "state", "hash")


def _item(value: Any, where: str) -> PortableMemory:
    if not isinstance(value, dict):
        raise InteropError(f"{where}: a memory must be an object", code="interop.bad_record")
    metadata = value.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InteropError(f"{where}: metadata must be an object", code="interop.bad_record")
    meta = dict(metadata or {})
    scope = {k: value[k] for k in SCOPE_KEYS if value.get(k) is not None}
    if scope:
        meta["mem0"] = scope
    text = value.get("memory", value.get("content", value.get("text")))
    return portable(
        system=SYSTEM, original_id=value.get("id"), text=text, where=where,
        created_at=value.get("created_at"), updated_at=value.get("updated_at"),
        tags=value.get("categories"), metadata=meta,
    )  # fmt: skip


def _items(value: Any, where: str) -> list[Any]:
    if isinstance(value, dict):
        value = value.get("results", value.get("memories"))
    if not isinstance(value, list):
        raise InteropError(
            f'{where}: expected a list of memories or {{"results": [...]}}',
            code="interop.bad_record",
        )
    return value


def _jsonl(data: bytes, where: str) -> list[Any]:
    items = []
    for number, line in enumerate(data.splitlines(), 1):
        if line.strip():
            items.append(json_bytes(line, f"{where} line {number}"))
    return items


def read_mem0(source: Path) -> list[PortableMemory]:
    """Memories from a get_all() JSON file or an OpenMemory backup zip."""
    if source.suffix.lower() == ".zip":
        members = read_zip_members(source, {"memories.json", "memories.jsonl.gz"})
        if "memories.jsonl.gz" in members:
            raw = read_gzip(members["memories.jsonl.gz"], "memories.jsonl.gz")
            items = _jsonl(raw, "memories.jsonl.gz")
        elif "memories.json" in members:
            items = _items(json_bytes(members["memories.json"], "memories.json"), "memories.json")
        else:
            raise InteropError(
                f"{source} holds neither memories.json nor memories.jsonl.gz",
                code="interop.bad_archive",
            )
    else:
        items = _items(json_bytes(read_file(source), source.name), source.name)
    return [_item(item, f"memory {n}") for n, item in enumerate(items, 1)]


def export_mem0(memories: Sequence[PortableMemory], out: Path) -> ExportReport:
    """Write ``{"results": [...]}`` as ``Memory.get_all()`` answers it."""
    results = []
    not_carried: list[Skipped] = []
    for mem in memories:
        meta = dict(mem.metadata)
        scope = meta.pop("mem0", None)
        item: dict[str, Any] = {"id": mem.original_id, "memory": mem.text, "metadata": meta}
        if isinstance(scope, dict):
            item.update({k: v for k, v in scope.items() if k in SCOPE_KEYS})
        if mem.tags:
            item["categories"] = list(mem.tags)
        item["created_at"] = format_timestamp(mem.created_at) if mem.created_at else None
        item["updated_at"] = format_timestamp(mem.updated_at) if mem.updated_at else None
        results.append(item)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({"results": results}, ensure_ascii=False, indent=2), "utf-8")
    tmp.replace(out)
    return ExportReport(str(out), SYSTEM, len(results), not_carried)
