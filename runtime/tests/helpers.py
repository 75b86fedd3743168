"""Test helpers: real signed packs and a fixed clock (runtime/tests, tests/runtime, bench/)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from protocol import SigningKey, pack_directory


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now = self.now + timedelta(**kwargs)
        return self.now


def write_source(
    source: Path,
    *,
    name: str,
    version: str = "1.0.0",
    memories: Sequence[str | dict[str, Any]] = ("A first memory.",),
    cube_id: str = "notes",
    access: dict[str, Any] | None = None,
    ttl_seconds: int | None = None,
    priority: float = 0.5,
    extra_cubes: Sequence[tuple[dict[str, Any], dict[str, bytes]]] = (),
) -> Path:
    source.mkdir(parents=True, exist_ok=True)
    now = "2026-01-01T00:00:00Z"
    lines = []
    for i, item in enumerate(memories):
        record = {"id": f"m{i + 1}", "text": item} if isinstance(item, str) else dict(item)
        lines.append(json.dumps(record, ensure_ascii=False))
    payload = source / "payloads" / cube_id / "memories.jsonl"
    payload.parent.mkdir(parents=True, exist_ok=True)
    payload.write_text("\n".join(lines) + "\n", "utf-8")
    governance: dict[str, Any] = {"access": access or {"visibility": "public"}}
    if ttl_seconds is not None:
        governance["ttl_seconds"] = ttl_seconds
    cubes: list[dict[str, Any]] = [
        {
            "id": cube_id,
            "memory_type": "plaintext",
            "title": "Notes",
            "payloads": [{"path": f"payloads/{cube_id}/memories.jsonl"}],
            "created_at": now,
            "lifecycle": "generated",
            "version": 1,
            "governance": governance,
            "behaviour": {"access_count": 0, "priority": priority},
        }
    ]
    for cube, files in extra_cubes:
        cubes.append(cube)
        for rel, data in files.items():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            (source / rel).write_bytes(data)
    manifest = {
        "mip_version": "1.0",
        "name": name,
        "version": version,
        "title": name,
        "license": "Apache-2.0",
        "created_at": now,
        "cubes": cubes,
    }
    (source / "manifest.json").write_text(json.dumps(manifest, indent=2), "utf-8")
    return source


def build_pack(
    workdir: Path,
    *,
    name: str,
    version: str = "1.0.0",
    keys: Sequence[SigningKey] = (),
    **kwargs: Any,
) -> Path:
    """Write a signed ``.memcube`` under ``workdir`` and return its path."""
    slug = f"{name.replace('/', '__')}-{version}"
    source = write_source(workdir / f"src-{slug}", name=name, version=version, **kwargs)
    out = workdir / f"{slug}.memcube"
    pack_directory(source, out, keys=list(keys))
    return out


def lora_cube(
    cube_id: str = "adapter",
    *,
    floats: int = 1024,
    fingerprint: dict[str, Any] | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A parameter (LoRA) cube with random (incompressible) weights: makes packs big."""
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    weights = save(
        {
            "base_model.model.layers.0.q_proj.lora_A.weight": rng.standard_normal(floats).astype(
                np.float32
            )
        }
    )
    config = json.dumps(
        {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}
    ).encode()
    fp = fingerprint or {
        "architecture": "LlamaForCausalLM",
        "model_id": "tiny/model",
        "config_sha256": "a" * 64,
        "tokenizer_sha256": "b" * 64,
        "dtype": "float32",
        "num_layers": 2,
        "num_kv_heads": 1,
        "head_dim": 4,
    }
    cube = {
        "id": cube_id,
        "memory_type": "parameter",
        "title": "Rust style adapter",
        "payloads": [
            {
                "path": f"payloads/{cube_id}/adapter_config.json",
                "media_type": "application/vnd.mip.lora-config+json",
            },
            {
                "path": f"payloads/{cube_id}/adapter_model.safetensors",
                "media_type": "application/vnd.mip.lora-weights+safetensors",
            },
        ],
        "created_at": "2026-01-01T00:00:00Z",
        "lifecycle": "generated",
        "version": 1,
        "model": fp,
    }
    files = {
        f"payloads/{cube_id}/adapter_config.json": config,
        f"payloads/{cube_id}/adapter_model.safetensors": weights,
    }
    return cube, files
