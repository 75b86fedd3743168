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
    mip_version: str | None = None,
    **kwargs: Any,
) -> Path:
    """Write a signed ``.memcube`` under ``workdir`` and return its path (``mip_version="2.0"``:
    a MIP 2 container)."""
    slug = f"{name.replace('/', '__')}-{version}"
    if mip_version:
        slug += f"-mip{mip_version}"
    source = write_source(workdir / f"src-{slug}", name=name, version=version, **kwargs)
    out = workdir / f"{slug}.memcube"
    pack_directory(source, out, keys=list(keys), mip_version=mip_version)
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


def tiny_fingerprint(config_sha256: str = "a" * 64) -> dict[str, Any]:
    """A tiny model's fingerprint (manifest JSON); ``config_sha256`` tells models apart."""
    return {
        "architecture": "LlamaForCausalLM",
        "model_id": f"tiny/model-{config_sha256[:4]}",
        "config_sha256": config_sha256,
        "tokenizer_sha256": "b" * 64,
        "dtype": "float32",
        "num_layers": 2,
        "num_kv_heads": 1,
        "head_dim": 16,
    }


def fingerprint_digest_of(fp: dict[str, Any]) -> str:
    """The fingerprint digest (MIP section 5.3) of a fingerprint given as manifest JSON."""
    from protocol import ModelFingerprint, fingerprint_digest

    return fingerprint_digest(ModelFingerprint.from_dict(fp))


def kv_cube(
    cube_id: str = "kv",
    *,
    config_sha256: str = "a" * 64,
    tokens: int = 256,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """An activation (KV cache) cube for the tiny model ``config_sha256`` names."""
    import numpy as np

    from protocol import KV_INPUT_IDS, kv_tensor_name

    fp = tiny_fingerprint(config_sha256)
    rng = np.random.default_rng(seed)
    tensors = {KV_INPUT_IDS: np.arange(tokens, dtype=np.int64)}
    for layer in range(fp["num_layers"]):
        for part in ("key", "value"):
            shape = (1, fp["num_kv_heads"], tokens, fp["head_dim"])
            tensors[kv_tensor_name(layer, part)] = rng.standard_normal(shape).astype(np.float32)
    meta = {"mip.kind": "kv-cache", "mip.fingerprint": fingerprint_digest_of(fp)}
    path = f"payloads/{cube_id}/kv.safetensors"
    data = _safetensors_bytes(tensors, meta)
    cube = {
        "id": cube_id,
        "memory_type": "activation",
        "title": f"KV cache for {fp['model_id']}",
        "payloads": [{"path": path, "media_type": "application/vnd.mip.kv-cache+safetensors"}],
        "created_at": "2026-01-01T00:00:00Z",
        "lifecycle": "generated",
        "version": 1,
        "model": fp,
    }
    return cube, {path: data}


def _safetensors_bytes(tensors: dict[str, Any], metadata: dict[str, str]) -> bytes:
    """Safetensors bytes with a header in sorted key order (``safetensors.save`` orders
    ``__metadata__`` keys at random, so the same cache would get another digest)."""
    dtypes = {"int64": "I64", "float32": "F32"}
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    body = b""
    for name in sorted(tensors):
        raw = tensors[name].tobytes()
        header[name] = {
            "dtype": dtypes[str(tensors[name].dtype)],
            "shape": list(tensors[name].shape),
            "data_offsets": [len(body), len(body) + len(raw)],
        }
        body += raw
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + body


def plain_cube(cube_id: str, memories: Sequence[str]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A second plaintext cube (its own memories file, so its own blob)."""
    path = f"payloads/{cube_id}/memories.jsonl"
    lines = [json.dumps({"id": f"{cube_id}{i + 1}", "text": t}) for i, t in enumerate(memories)]
    cube = {
        "id": cube_id,
        "memory_type": "plaintext",
        "title": cube_id,
        "payloads": [{"path": path}],
        "created_at": "2026-01-01T00:00:00Z",
        "lifecycle": "generated",
        "version": 1,
        "governance": {"access": {"visibility": "public"}},
    }
    return cube, {path: ("\n".join(lines) + "\n").encode()}
