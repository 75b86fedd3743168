"""Build real, signed ``.memcube`` packs with the protocol library.

For tests, demo data and benchmarks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from protocol import SigningKey, pack_directory


def write_pack_source(
    source: Path,
    *,
    name: str,
    version: str = "1.0.0",
    title: str | None = None,
    description: str = "",
    license: str = "Apache-2.0",
    keywords: Sequence[str] = (),
    memories: Sequence[str | dict[str, object]] = ("A first memory.",),
    cube_id: str = "notes",
    manifest_extra: dict[str, object] | None = None,
) -> Path:
    """A pack source folder (manifest template + one plaintext memories file).

    ``manifest_extra``: more top-level manifest fields (e.g. ``evaluation``).
    """
    source.mkdir(parents=True, exist_ok=True)
    payload = f"payloads/{cube_id}/memories.jsonl"
    lines = []
    for i, item in enumerate(memories):
        record: dict[str, object] = (
            {"id": f"m{i + 1}", "text": item} if isinstance(item, str) else dict(item)
        )
        lines.append(json.dumps(record, ensure_ascii=False))
    (source / "payloads" / cube_id).mkdir(parents=True, exist_ok=True)
    (source / payload).write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest: dict[str, object] = {
        "mip_version": "1.0",
        "name": name,
        "version": version,
        "title": title or name,
        "license": license,
        "created_at": "2025-01-01T00:00:00Z",
        "cubes": [
            {
                "id": cube_id,
                "memory_type": "plaintext",
                "payloads": [{"path": payload}],
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "generated",
                "version": 1,
            }
        ],
    }
    if description:
        manifest["description"] = description
    if keywords:
        manifest["keywords"] = list(keywords)
    manifest.update(manifest_extra or {})
    (source / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return source


def build_pack(
    workdir: Path,
    *,
    name: str,
    version: str = "1.0.0",
    keys: Sequence[SigningKey] = (),
    **source_options: Any,
) -> Path:
    """Write a source folder under ``workdir`` and pack (and sign) it; return the file."""
    slug = f"{name.replace('/', '-')}-{version}"
    source = write_pack_source(
        workdir / f"src-{slug}", name=name, version=version, **source_options
    )
    out = workdir / f"{slug}.memcube"
    pack_directory(source, out, keys=list(keys))
    return out
