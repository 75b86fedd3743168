"""Pack sources with all three memory types for a model, and reading them back.

:func:`build_model_pack_source` writes a pack source folder (the input of
``memos pack`` / :func:`protocol.pack_directory`) holding:

* ``memories``      plaintext cube: ``payloads/memories/memories.jsonl``;
* ``memories-kv``   activation cube: one KV cache of all the memories
  (``payloads/memories-kv/kv.safetensors``), ``model`` = the fingerprint;
* ``memories-lora`` parameter cube (optional, trained by
  :func:`runtime.models.lora.consolidate`): ``adapter_config.json`` +
  ``adapter_model.safetensors``, ``model`` = the base model's fingerprint.

The derived cubes name the plaintext cube in ``provenance.derived_from``.
:func:`open_model_memory` finds a pack's activation and parameter payloads
for the running model (from an extracted pack folder or a ``.memcube``).

Not here: signing keys (the CLI), installing packs (runtime.engine).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocol import (
    MIP_VERSION,
    MediaType,
    MemCube,
    MemoryRecord,
    MemoryType,
    Pack,
    format_timestamp,
    iter_memory_records,
    read_pack,
)
from protocol.kv_chunks import kv_chunk_of

from .causal_lm import LoadedModel
from .kv import KVFiles, build_kv
from .kv_chunks import split_kv
from .kv_quality import encode_and_measure
from .lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS, consolidate

__all__ = [
    "ModelMemory",
    "build_model_pack_source",
    "open_model_memory",
    "read_memories",
]

PLAINTEXT_CUBE = "memories"
KV_CUBE = "memories-kv"
LORA_CUBE = "memories-lora"
KV_FILE = "kv.safetensors"


def read_memories(path: Path) -> list[MemoryRecord]:
    """Memory records from a JSONL file (MIP memory records) or a plain text file (one per line)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        with open(path, "rb") as fh:
            return list(iter_memory_records(fh))
    lines = [line.strip() for line in path.read_text("utf-8").splitlines()]
    return [MemoryRecord(id=f"m{i + 1}", text=t) for i, t in enumerate(x for x in lines if x)]


def _cube(
    cube_id: str,
    memory_type: MemoryType,
    paths: Sequence[str | dict[str, Any]],
    now: str,
    **fields: Any,
) -> dict[str, Any]:
    cube: dict[str, Any] = {
        "id": cube_id,
        "memory_type": memory_type.value,
        "payloads": [p if isinstance(p, dict) else {"path": p} for p in paths],
        "created_at": now,
        "lifecycle": "generated",
        "version": 1,
        "governance": {"access": {"visibility": "public"}},
        "behaviour": {"access_count": 0, "priority": 0.5},
    }
    cube.update(fields)
    return cube


def build_model_pack_source(
    lm: LoadedModel,
    records: Sequence[MemoryRecord],
    out_dir: Path,
    *,
    name: str,
    title: str | None = None,
    version: str = "0.1.0",
    license: str = "CC-BY-4.0",
    with_kv: bool = True,
    with_lora: bool = True,
    lora_steps: int = 30,
    template: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    kv_encoding: str = "raw",
    kv_chunk_tokens: int | None = None,
) -> Path:
    """Write a pack source for ``lm`` with plaintext, activation and parameter cubes.

    ``kv_encoding`` (``raw``, ``fp16``, ``int8``): how the KV cache is stored;
    a compressed one is measured against the model's own cache on held-out
    probes, and the result recorded in the cube's ``kv`` field (see
    :mod:`.kv_quality`). ``kv_chunk_tokens``: store the cache as content-addressed
    chunks of that many tokens (SPEC 4.2.2; identical prefixes share blobs across packs).

    ``progress(stage, done, total)`` reports the build ("kv", "lora") for a progress bar.
    """
    if not records:
        raise ValueError("no memories given")
    out_dir = Path(out_dir)
    now = format_timestamp(datetime.now(UTC).replace(microsecond=0))
    namespace = name.split("/", 1)[0]
    fp = lm.fingerprint.to_dict()
    texts = [r.text for r in records]
    cubes = []

    jsonl = out_dir / "payloads" / PLAINTEXT_CUBE / "memories.jsonl"
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True) for r in records]
    jsonl.write_text("\n".join(lines) + "\n", "utf-8")
    cubes.append(
        _cube(
            PLAINTEXT_CUBE,
            MemoryType.PLAINTEXT,
            [f"payloads/{PLAINTEXT_CUBE}/memories.jsonl"],
            now,
            title="Memories (plaintext)",
            provenance={"source": "memos", "author": namespace},
        )
    )
    derived = {"source": "memos", "author": namespace, "derived_from": [PLAINTEXT_CUBE]}
    if with_kv:
        if progress:
            progress("kv", 0, 1)
        target = out_dir / "payloads" / KV_CUBE / KV_FILE
        info = build_kv(lm, texts, target, template=template, prefill_chunk=kv_chunk_tokens)
        kv_field = encode_and_measure(lm, target, kv_encoding)
        kv_payloads: list[dict[str, Any]] = [{"path": f"payloads/{KV_CUBE}/{KV_FILE}"}]
        if kv_chunk_tokens:
            chunks = split_kv(target, target.parent, chunk_tokens=kv_chunk_tokens)
            target.unlink()
            kv_payloads = [
                {"path": f"payloads/{KV_CUBE}/{c.path.name}", "kv_chunk": c.chunk.to_dict()}
                for c in chunks
            ]
        if progress:
            progress("kv", 1, 1)
        cubes.append(
            _cube(
                KV_CUBE,
                MemoryType.ACTIVATION,
                kv_payloads,
                now,
                title=f"Memories as a KV cache ({info.num_tokens} tokens, {info.template}, "
                f"{kv_encoding})",
                model=fp,
                provenance=derived,
                **({"kv": kv_field} if kv_field else {}),
            )
        )
    if with_lora:

        def step(done: int, total: int, _loss: float) -> None:
            if progress:
                progress("lora", done, total)

        consolidate(lm, texts, out_dir / "payloads" / LORA_CUBE, steps=lora_steps, progress=step)
        cubes.append(
            _cube(
                LORA_CUBE,
                MemoryType.PARAMETER,
                [
                    f"payloads/{LORA_CUBE}/{ADAPTER_CONFIG}",
                    f"payloads/{LORA_CUBE}/{ADAPTER_WEIGHTS}",
                ],
                now,
                title="Memories consolidated into a LoRA adapter",
                model=fp,
                provenance=derived,
            )
        )
    manifest = {
        "mip_version": MIP_VERSION,
        "name": name,
        "version": version,
        "title": title or name,
        "description": f"Memories for {lm.fingerprint.model_id} as plaintext, KV cache and LoRA.",
        "license": license,
        "authors": [{"name": namespace}],
        "created_at": now,
        "keywords": ["kv-cache", "lora", lm.fingerprint.architecture.lower()],
        "cubes": cubes,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return out_dir


@dataclass(frozen=True)
class ModelMemory:
    """A pack's memory as the running model can use it (paths inside the extracted pack)."""

    pack: Pack
    texts: tuple[str, ...]
    kv: tuple[tuple[MemCube, KVFiles], ...]
    adapters: tuple[tuple[MemCube, Path, Path], ...]


def open_model_memory(pack: Pack) -> ModelMemory:
    """Collect the plaintext texts, KV payloads and adapters of an extracted pack."""
    if pack.root is None:
        raise ValueError("read the pack with a target folder first")
    texts: list[str] = []
    kv: list[tuple[MemCube, KVFiles]] = []
    adapters: list[tuple[MemCube, Path, Path]] = []
    for cube in pack.manifest.cubes:
        if cube.memory_type is MemoryType.PLAINTEXT:
            for ref in cube.payloads:
                with open(pack.payload_path(ref), "rb") as fh:
                    texts.extend(r.text for r in iter_memory_records(fh))
        elif cube.memory_type is MemoryType.ACTIVATION:
            refs = [r for r in cube.payloads if r.media_type == MediaType.KV_CACHE]
            if len(refs) == 1 and kv_chunk_of(refs[0]) is None:
                kv.append((cube, pack.payload_path(refs[0])))
            elif refs:  # a chunked cache (4.2.2): its chunks, in order
                kv.append((cube, tuple(pack.payload_path(r) for r in refs)))
        else:
            config = cube.payload(MediaType.LORA_CONFIG)
            weights = cube.payload(MediaType.LORA_WEIGHTS)
            if config is not None and weights is not None:
                adapters.append((cube, pack.payload_path(config), pack.payload_path(weights)))
    return ModelMemory(pack, tuple(texts), tuple(kv), tuple(adapters))


def read_model_pack(path: Path, target: Path) -> ModelMemory:
    """Read (verify digests and content of) a ``.memcube`` into ``target`` and open its memory."""
    return open_model_memory(read_pack(Path(path), target=Path(target)))
