"""A trusted manifest's cubes as engine memories: one per plaintext record, one per other cube.

Reads only cached blobs whose size and digest were checked against the
signed manifest as they were fetched: the ``memories.jsonl`` records of
plaintext cubes (parsed with the same checks ``read_pack`` makes: a bad
record is ``payload.*``), and the safetensors header of a KV cache for its
token count (when that blob was fetched for the running model). Governance
becomes memory fields: access policy, usage terms, and an expiry from
``expires_at`` and/or ``ttl_seconds`` (the earlier wins, the TTL counted from
the install).

Not here: moving payloads into the cache or writing the engine
(:mod:`runtime.install.commit`), trust (:mod:`runtime.install.trust`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from protocol import (
    AccessPolicy,
    Manifest,
    MediaType,
    MemCube,
    MemoryType,
    iter_memory_records,
    parse_timestamp,
    read_safetensors_header,
)

from ..engine.lifecycle import State
from ..engine.types import NewMemory
from ..errors import InstallError

__all__ = ["pack_items", "unchanged_cubes"]


#: sha256 -> the cached blob, or None when it was not fetched (another model's)
BlobPath = Callable[[str], Path | None]


def pack_items(
    m: Manifest, blob: BlobPath, now: datetime, *, skip_cubes: Collection[str] = ()
) -> list[NewMemory]:
    """Every memory the manifest holds, in manifest order (records before their cube's next),
    except those of ``skip_cubes`` (unchanged since the installed version: not re-read)."""
    items: list[NewMemory] = []
    for cube in m.cubes:
        if cube.id in skip_cubes:
            continue
        if cube.memory_type is MemoryType.PLAINTEXT:
            for ref in cube.payloads:
                if ref.media_type != MediaType.MEMORIES_JSONL:
                    continue
                dim = cube.embedding.dimension if cube.embedding else None
                path = blob(ref.sha256)
                if path is None:
                    raise InstallError(
                        f"{ref.path} ({ref.sha256[:16]}…) is not in the cache",
                        code="install.blob_unavailable",
                    )
                with open(path, "rb") as fh:
                    records = list(iter_memory_records(fh, expected_dimension=dim))
                items.extend(_record_item(m.name, m.version, cube, rec, now) for rec in records)
        else:
            items.append(_cube_item(m.name, m.version, cube, blob, now))
    return items


def unchanged_cubes(new: Manifest, installed: Manifest | None, tombstoned: set[str]) -> list[str]:
    """Plaintext cubes of ``new`` identical to the installed version's (every field, payload
    digests included): their memories are the installed ones, so an upgrade neither re-reads
    nor re-validates them. Cubes with a removed memory are re-read (the upgrade restores it,
    as for any changed memory)."""
    if installed is None or installed.name != new.name:
        return []
    before = {cube.id: cube.to_dict() for cube in installed.cubes}
    return [
        cube.id
        for cube in new.cubes
        if cube.memory_type is MemoryType.PLAINTEXT
        and cube.id not in tombstoned
        and before.get(cube.id) == cube.to_dict()
    ]


def _common(pack_name: str, version: str, cube: MemCube, now: datetime) -> dict[str, Any]:
    gov = cube.governance
    expires: datetime | None = None
    if gov is not None and gov.expires_at:
        expires = parse_timestamp(gov.expires_at)
    if gov is not None and gov.ttl_seconds is not None:
        ttl_end = now + timedelta(seconds=gov.ttl_seconds)
        expires = min(expires, ttl_end) if expires else ttl_end
    return {
        "pack": pack_name,
        "pack_version": version,
        "cube_id": cube.id,
        "priority": cube.behaviour.priority if cube.behaviour else 0.5,
        "state": State(cube.lifecycle.value),
        "expires_at": expires,
        "access": gov.access if gov else AccessPolicy(),
        "usage_terms": gov.usage_terms if gov else None,
        "source": cube.provenance.source if cube.provenance else None,
    }


def _record_item(pack_name: str, version: str, cube: MemCube, rec: Any, now: datetime) -> NewMemory:
    created = parse_timestamp(rec.created_at or cube.created_at)
    return NewMemory(
        text=rec.text,
        id=f"{pack_name}/{cube.id}/{rec.id}",
        tags=tuple(rec.tags),
        metadata=dict(rec.metadata),
        created_at=created,
        embedding=rec.embedding,
        embedding_model=rec.embedding_model,
        **_common(pack_name, version, cube, now),
    )


def _cube_item(
    pack_name: str, version: str, cube: MemCube, blob: BlobPath, now: datetime
) -> NewMemory:
    tokens = None
    for kv in (r for r in cube.payloads if r.media_type == MediaType.KV_CACHE):
        kv_path = blob(kv.sha256)  # a chunked cache (SPEC 4.2.2): the sum of its chunks'
        if kv_path is None:
            tokens = None
            break
        with open(kv_path, "rb") as fh:
            header = read_safetensors_header(fh, kv.size)
        ids = header.tensors.get("input_ids")
        if ids is None or not ids.shape:
            tokens = None
            break
        tokens = (tokens or 0) + int(ids.shape[-1])
    description = str(cube.extra.get("description", "")) or None
    text = " — ".join(x for x in (cube.title, description) if x) or cube.id
    return NewMemory(
        text=text,
        id=f"{pack_name}/{cube.id}",
        memory_type=cube.memory_type,
        fingerprint=cube.model,
        payloads={ref.media_type: ref.sha256 for ref in cube.payloads},
        token_count=tokens,
        created_at=parse_timestamp(cube.created_at),
        **_common(pack_name, version, cube, now),
    )
