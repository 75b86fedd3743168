"""Cognee's portable export, COGX: a ``.cogx.tar.gz`` of ``manifest.json`` and JSONL files.

``memories.jsonl``, ``facts.jsonl``, ``entities.jsonl`` and ``episodes.jsonl``
hold one record a line: an ``id``, the text (``text`` or ``content``; a fact may
give ``subject``/``predicate``/``object`` instead, an entity ``name`` and
``description``), ``created_at``/``updated_at``, ``tags``, ``metadata`` and the
bitemporal ``valid_at``/``invalid_at``, which are kept as lifecycle metadata.
Which file a record came from, and its structured fields, go to metadata
under ``cogx`` so the exporter writes each back where it was.

Not here: reading archives safely (:mod:`.safe_read`).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from protocol import format_timestamp

from ..errors import InteropError
from .model import ExportReport, PortableMemory, Skipped, parse_time, portable
from .safe_read import check_not_pickle, json_bytes, read_tar_members

__all__ = ["SYSTEM", "export_cogx", "read_cogx"]

SYSTEM = "cognee"
KINDS = ("memories", "facts", "entities", "episodes")
STRUCTURED = ("subject", "predicate", "object", "name", "type", "description", "source")


def _text(kind: str, rec: dict[str, Any]) -> Any:
    text = rec.get("text", rec.get("content"))
    if text is None and kind == "facts" and all(isinstance(rec.get(k), str) for k in
                                                ("subject", "predicate", "object")):  # fmt: skip
        text = f"{rec['subject']} {rec['predicate']} {rec['object']}"
    if text is None and kind == "entities":
        text = rec.get("description") or rec.get("name")
    return text


def _record(kind: str, rec: Any, where: str) -> PortableMemory:
    if not isinstance(rec, dict):
        raise InteropError(f"{where}: a record must be an object", code="interop.bad_record")
    meta = rec.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise InteropError(f"{where}: metadata must be an object", code="interop.bad_record")
    meta = dict(meta or {})
    meta["cogx"] = {"kind": kind, **{k: rec[k] for k in STRUCTURED if k in rec}}
    life = {}
    for key in ("valid_at", "invalid_at"):
        when = parse_time(rec.get(key), f"{where} {key}")
        if when is not None:
            life[key] = format_timestamp(when)
    if life:
        meta["lifecycle"] = life
    return portable(
        system=SYSTEM, original_id=rec.get("id"), text=_text(kind, rec), where=where,
        created_at=rec.get("created_at"), updated_at=rec.get("updated_at"),
        tags=rec.get("tags"), metadata=meta,
    )  # fmt: skip


def read_cogx(source: Path) -> list[PortableMemory]:
    members = {PurePosixPath(k).name: v for k, v in read_tar_members(source).items()
               if len(PurePosixPath(k).parts) <= 2}  # fmt: skip
    if "manifest.json" not in members:
        raise InteropError(f"{source} has no manifest.json", code="interop.bad_archive")
    manifest = json_bytes(members["manifest.json"], "manifest.json")
    if not isinstance(manifest, dict):
        raise InteropError("manifest.json must be an object", code="interop.bad_record")
    out = []
    for kind in KINDS:
        data = members.get(f"{kind}.jsonl")
        if data is None:
            continue
        check_not_pickle(f"{kind}.jsonl", data[:4])
        for number, line in enumerate(data.splitlines(), 1):
            if line.strip():
                where = f"{kind}.jsonl line {number}"
                out.append(_record(kind, json_bytes(line, where), where))
    return out


def export_cogx(memories: Sequence[PortableMemory], out: Path) -> ExportReport:
    files: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for mem in memories:
        meta = dict(mem.metadata)
        shape = meta.pop("cogx", None)
        shape = dict(shape) if isinstance(shape, dict) else {"kind": "memories"}
        kind = shape.pop("kind", "memories")
        kind = kind if kind in KINDS else "memories"
        life = meta.pop("lifecycle", None)
        rec: dict[str, Any] = {"id": mem.original_id, "text": mem.text, **shape}
        if isinstance(life, dict):
            rec.update({k: life[k] for k in ("valid_at", "invalid_at") if k in life})
        for key, when in (("created_at", mem.created_at), ("updated_at", mem.updated_at)):
            if when is not None:
                rec[key] = format_timestamp(when)
        if mem.tags:
            rec["tags"] = list(mem.tags)
        if meta:
            rec["metadata"] = meta
        files[kind].append(json.dumps(rec, ensure_ascii=False))
    manifest = {
        "format": "cogx", "version": "1",
        "created_at": format_timestamp(datetime.now(UTC).replace(microsecond=0)),
        "counts": {kind: len(lines) for kind, lines in files.items()},
    }  # fmt: skip
    tmp = out.with_name(f".{out.name}.tmp")
    with tarfile.open(tmp, "w:gz") as archive:
        entries = {"manifest.json": json.dumps(manifest, indent=2)}
        entries.update({f"{k}.jsonl": "\n".join(v) + "\n" for k, v in files.items() if v})
        for name, text in entries.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    no_loss: list[Skipped] = []
    return ExportReport(str(out), SYSTEM, len(memories), no_loss)
