"""The MCP reference memory server's knowledge graph file, ``memory.jsonl``.

One JSON object a line: ``{"type": "entity", "name", "entityType",
"observations": [...]}`` or ``{"type": "relation", "from", "to",
"relationType"}``. Each observation becomes a memory (id ``NAME#INDEX``), each
relation one (id ``FROM|TYPE|TO``, text ``FROM TYPE TO``), and an entity without
observations one as well (id ``NAME``); the graph's shape is kept in metadata
under ``mcp_memory``, so the exporter rebuilds the same file.

The format has no timestamps, tags or free metadata: the exporter lists them in
its report. A memory from another system becomes an entity named by its id.
Not here: packing (:mod:`.packer`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InteropError
from .model import ExportReport, PortableMemory, Skipped, portable
from .safe_read import json_bytes, read_file

__all__ = ["SYSTEM", "export_mcp_memory", "read_mcp_memory"]

SYSTEM = "mcp-memory"
KEY = "mcp_memory"
MAX_NAME = 1000


def _name(value: Any, field: str, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise InteropError(
            f"{where}: {field} must be a non-empty string", code="interop.bad_record"
        )
    return value


def _entity(obj: dict[str, Any], where: str) -> list[PortableMemory]:
    name = _name(obj.get("name"), "name", where)
    kind = obj.get("entityType", "")
    if not isinstance(kind, str):
        raise InteropError(f"{where}: entityType must be a string", code="interop.bad_record")
    observations = obj.get("observations", [])
    if not isinstance(observations, list):
        raise InteropError(f"{where}: observations must be a list", code="interop.bad_record")
    if not observations:
        meta = {KEY: {"kind": "entity", "entity": name, "entityType": kind}}
        return [portable(system=SYSTEM, original_id=name, text=name, where=where, metadata=meta)]
    return [
        portable(
            system=SYSTEM,
            original_id=f"{name}#{i}",
            text=text,
            where=f"{where} observation {i}",
            metadata={KEY: {"kind": "observation", "entity": name, "entityType": kind, "index": i}},
        )
        for i, text in enumerate(observations)
    ]


def _relation(obj: dict[str, Any], where: str) -> PortableMemory:
    src = _name(obj.get("from"), "from", where)
    dst = _name(obj.get("to"), "to", where)
    rel = _name(obj.get("relationType"), "relationType", where)
    return portable(
        system=SYSTEM, original_id=f"{src}|{rel}|{dst}", text=f"{src} {rel} {dst}", where=where,
        metadata={KEY: {"kind": "relation", "from": src, "to": dst, "relationType": rel}},
    )  # fmt: skip


def read_mcp_memory(source: Path) -> list[PortableMemory]:
    out: list[PortableMemory] = []
    for number, line in enumerate(read_file(source).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source.name} line {number}"
        obj = json_bytes(line, where)
        if not isinstance(obj, dict):
            raise InteropError(f"{where}: expected an object", code="interop.bad_record")
        if obj.get("type") == "entity":
            out.extend(_entity(obj, where))
        elif obj.get("type") == "relation":
            out.append(_relation(obj, where))
        else:
            raise InteropError(
                f"{where}: type must be 'entity' or 'relation'", code="interop.bad_record"
            )
    return out


def export_mcp_memory(memories: Sequence[PortableMemory], out: Path) -> ExportReport:
    entities: dict[str, dict[str, Any]] = {}
    observations: dict[str, list[tuple[int, str]]] = {}
    relations: list[dict[str, str]] = []
    not_carried: list[Skipped] = []
    for mem in memories:
        meta = dict(mem.metadata)
        shape = meta.pop(KEY, None)
        for what, present in (("created_at", mem.created_at), ("updated_at", mem.updated_at),
                              ("tags", mem.tags), ("metadata", meta)):  # fmt: skip
            if present:
                not_carried.append(Skipped(mem.original_id, what, "memory.jsonl has no such field"))
        if not isinstance(shape, dict):
            shape = {"kind": "observation", "entity": mem.original_id, "entityType": "memory",
                     "index": 0}  # fmt: skip
        if shape.get("kind") == "relation":
            relations.append({"type": "relation", "from": str(shape["from"]),
                              "to": str(shape["to"]),
                              "relationType": str(shape["relationType"])})  # fmt: skip
            continue
        name = str(shape.get("entity", mem.original_id))
        entities.setdefault(name, {"type": "entity", "name": name,
                                   "entityType": str(shape.get("entityType", ""))})  # fmt: skip
        observations.setdefault(name, [])
        if shape.get("kind") != "entity":
            index = shape.get("index", 0)
            observations[name].append((index if isinstance(index, int) else 0, mem.text))
    lines = []
    for name, entity in entities.items():
        obs = [text for _, text in sorted(observations[name], key=lambda p: p[0])]
        lines.append(json.dumps({**entity, "observations": obs}, ensure_ascii=False))
    lines.extend(json.dumps(r, ensure_ascii=False) for r in relations)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", "utf-8")
    tmp.replace(out)
    return ExportReport(str(out), SYSTEM, len(memories), not_carried)
