"""MemOS MemCube directories (``GeneralMemCube.dump``): ``config.json``, ``textual_memory.json``.

``textual_memory.json`` is a list of items (``id``, ``memory`` the text,
``metadata`` with ``tags``, ``created_at``, ``updated_at`` and MemOS's own
fields, kept), or a tree memory's ``{"nodes": [...], "edges": [...]}``.
The activation memory is a Python pickle (``activation_memory.pickle``): it is
recognised by name or magic bytes and never opened, and the import is refused
with ``interop.pickle_refused`` unless the caller asks to leave it behind
(``skip_pickled``, listed in the result). LoRA adapters are left behind and listed.
Symlinks are refused: a cube directory is read only from itself.

Not here: KV caches or adapters (MemOS's are pickles or framework files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InteropError
from .model import PortableMemory, Skipped, portable
from .safe_read import check_not_pickle, is_pickle, json_bytes, read_file

__all__ = ["SYSTEM", "read_cube"]

SYSTEM = "memos"


def _plain_file(path: Path) -> Path:
    if path.is_symlink():
        raise InteropError(f"{path} is a symlink; refusing to follow it",
                           code="interop.unsafe_path")  # fmt: skip
    return path


def read_cube(
    source: Path, skip_pickled: bool = False
) -> tuple[list[PortableMemory], list[Skipped]]:
    if not source.is_dir():
        raise InteropError(f"{source} is not a MemOS cube directory (config.json, "
                           "textual_memory.json)", code="interop.bad_archive")  # fmt: skip
    skipped: list[Skipped] = []
    for entry in sorted(source.iterdir()):
        if entry.is_file() and is_pickle(entry.name, b""):
            if not skip_pickled:
                check_not_pickle(entry.name, b"")
            skipped.append(Skipped(entry.name, "activation memory", "a pickle; never loaded"))
        elif entry.name.endswith(".adapter"):
            skipped.append(Skipped(entry.name, "parametric memory", "not imported"))
    config = _plain_file(source / "config.json")
    if config.exists() and not isinstance(json_bytes(read_file(config), "config.json"), dict):
        raise InteropError("config.json must be an object", code="interop.bad_record")
    textual = _plain_file(source / "textual_memory.json")
    if not textual.exists():
        raise InteropError(f"{source} has no textual_memory.json", code="interop.bad_archive")
    data = json_bytes(read_file(textual), "textual_memory.json")
    items: Any = data.get("nodes") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InteropError("textual_memory.json must be a list of memories (or a tree's nodes)",
                           code="interop.bad_record")  # fmt: skip
    out = []
    for n, item in enumerate(items, 1):
        where = f"textual_memory.json item {n}"
        if not isinstance(item, dict):
            raise InteropError(f"{where}: must be an object", code="interop.bad_record")
        meta = item.get("metadata") or {}
        if not isinstance(meta, dict):
            raise InteropError(f"{where}: metadata must be an object", code="interop.bad_record")
        meta = dict(meta)
        tags = meta.pop("tags", None)
        created, updated = meta.pop("created_at", None), meta.pop("updated_at", None)
        out.append(portable(
            system=SYSTEM, original_id=item.get("id"), text=item.get("memory"), where=where,
            created_at=created, updated_at=updated, tags=tags, metadata={"memos": meta} if meta
            else {},
        ))  # fmt: skip
    return out, skipped
