"""The inputs every conformance vector is built from: keys, payloads, manifests, tar members.

Fixed Ed25519 seeds, fixed timestamps and fixed tensors, so the vectors are
reproducible byte for byte; helpers that write tar members with the MIP
writer's metadata, so a crafted pack differs from a valid one only where its
name says. Shared by the MIP 1 vectors (:mod:`protocol.conformance.generate`),
the MIP 2 vectors (:mod:`protocol.conformance.vectors2`) and the tests.

Not here: library code, and the vectors themselves.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save as st_save

from protocol.canonical import canonical_bytes
from protocol.fingerprint import config_digest, tokenizer_digest, weights_digest
from protocol.manifest import Manifest, ModelFingerprint
from protocol.payloads import KV_INPUT_IDS, fingerprint_digest, kv_tensor_name
from protocol.signing import Signature, SigningKey

VECTORS_DIR = Path(__file__).with_name("vectors")
T0 = "2025-01-01T00:00:00Z"

KEY_A = SigningKey.from_seed(bytes([1]) * 32)
KEY_B = SigningKey.from_seed(bytes([2]) * 32)
KEY_C = SigningKey.from_seed(bytes([3]) * 32)

# A tiny "model": its config and tokenizer give the fingerprint digests.
TINY_CONFIG: dict[str, Any] = {
    "architectures": ["TinyForCausalLM"],
    "model_type": "tiny",
    "hidden_size": 8,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "vocab_size": 16,
    "rms_norm_eps": 1e-05,
    "transformers_version": "4.56.0",
    "torch_dtype": "float32",
}
TINY_VOCAB = {f"t{i}": i for i in range(16)}
TINY_SPECIALS: dict[str, str | None] = {"bos_token": "t0", "eos_token": "t1", "pad_token": None}

FINGERPRINT: dict[str, Any] = {
    "architecture": "TinyForCausalLM",
    "model_id": "example/tiny",
    "config_sha256": config_digest(TINY_CONFIG),
    "tokenizer_sha256": tokenizer_digest(TINY_VOCAB, TINY_SPECIALS),
    "dtype": "float32",
    "num_layers": 2,
    "num_kv_heads": 2,
    "head_dim": 4,
}
# MIP 1.1: the tiny model's checkpoint, one file (its bytes are not part of any vector).
TINY_WEIGHTS_SHA256 = weights_digest(
    {"model.safetensors": hashlib.sha256(b"tiny model weights").hexdigest()}
)


# --------------------------------------------------------------------------- payloads


def memories_jsonl(records: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n" for r in records
    )


NOTES = memories_jsonl(
    [
        {"id": "m1", "text": "The capital of France is Paris.", "tags": ["geo"]},
        {"id": "m2", "text": "Water boils at 100 °C at sea level.", "created_at": T0},
    ]
)

EMBEDDED = memories_jsonl(
    [
        {
            "id": "e1",
            "text": "x",
            "embedding": {"model": "example/embedder", "dimension": 3, "vector": [0.5, -1, 2.25]},
        }
    ]
)


def kv_cache(
    fingerprint: dict[str, Any] = FINGERPRINT,
    *,
    seq_len: int = 3,
    shape_override: tuple[int, ...] | None = None,
    header_fingerprint: str | None = None,
) -> bytes:
    """A tiny KV cache: ``layers.<i>.key/value`` [1, heads, seq, head_dim] plus ``input_ids``."""
    heads, dim = fingerprint["num_kv_heads"], fingerprint["head_dim"]
    shape = shape_override or (1, heads, seq_len, dim)
    tensors: dict[str, np.ndarray[Any, Any]] = {KV_INPUT_IDS: np.arange(seq_len, dtype=np.int64)}
    count = int(np.prod(shape))
    for layer in range(fingerprint["num_layers"]):
        for n, part in enumerate(("key", "value")):
            values = np.arange(count, dtype=np.float32) / 64.0 + layer + n / 2
            tensors[kv_tensor_name(layer, part)] = values.reshape(shape)
    digest = header_fingerprint or fingerprint_digest(ModelFingerprint.from_dict(fingerprint))
    return safetensors_bytes(tensors, {"mip.kind": "kv-cache", "mip.fingerprint": digest})


LORA_CONFIG = canonical_bytes(
    {
        "peft_type": "LORA",
        "r": 2,
        "lora_alpha": 4,
        "lora_dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"],
        "base_model_name_or_path": "example/tiny",
        "task_type": "CAUSAL_LM",
    }
)


def lora_weights(*, bad_name: bool = False) -> bytes:
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for module in ("q_proj", "v_proj"):
        prefix = f"base_model.model.layers.0.self_attn.{module}"
        tensors[f"{prefix}.lora_A.weight"] = np.full((2, 8), 0.125, dtype=np.float32)
        tensors[f"{prefix}.lora_B.weight"] = np.zeros((8, 2), dtype=np.float32)
    if bad_name:
        tensors["model.embed_tokens.weight"] = np.zeros((16, 8), dtype=np.float32)
    return safetensors_bytes(tensors)


def safetensors_bytes(
    tensors: dict[str, np.ndarray[Any, Any]], metadata: dict[str, str] | None = None
) -> bytes:
    """``safetensors.numpy.save`` output with its header re-encoded with sorted keys.

    The Rust writer keeps ``__metadata__`` in a hash map, so its key order (and
    the file's bytes) can change from run to run; vectors must not.
    """
    raw = st_save(tensors, metadata=metadata)
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + raw[8 + length :]


# A pickle (protocol 4) of the int 1, written out byte by byte: MIP refuses pickles
# by their magic, and this generator never imports pickle.
PICKLE_BYTES = b"\x80\x04K\x01."


# --------------------------------------------------------------------------- manifests


def payload_entry(path: str, media_type: str, body: bytes) -> dict[str, Any]:
    return {
        "path": path,
        "media_type": media_type,
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }


def plaintext_cube(cube_id: str = "notes", body: bytes = NOTES, **extra: Any) -> dict[str, Any]:
    cube = {
        "id": cube_id,
        "memory_type": "plaintext",
        "created_at": T0,
        "lifecycle": "generated",
        "version": 1,
        "payloads": [
            payload_entry(
                f"payloads/{cube_id}/memories.jsonl", "application/vnd.mip.memories+jsonl", body
            )
        ],
    }
    cube.update(extra)
    return cube


def activation_cube(
    body: bytes, cube_id: str = "prefix", *, weights: bool = False
) -> dict[str, Any]:
    model = dict(FINGERPRINT)
    if weights:
        model["weights_sha256"] = TINY_WEIGHTS_SHA256
    return {
        "id": cube_id,
        "memory_type": "activation",
        "created_at": T0,
        "lifecycle": "activated",
        "version": 1,
        "model": model,
        "payloads": [
            payload_entry(
                f"payloads/{cube_id}/kv.safetensors",
                "application/vnd.mip.kv-cache+safetensors",
                body,
            )
        ],
    }


def parameter_cube(
    config: bytes = LORA_CONFIG, weights: bytes | None = None, cube_id: str = "style"
) -> dict[str, Any]:
    weights = lora_weights() if weights is None else weights
    return {
        "id": cube_id,
        "memory_type": "parameter",
        "created_at": T0,
        "lifecycle": "generated",
        "version": 1,
        "model": dict(FINGERPRINT),
        "payloads": [
            payload_entry(
                f"payloads/{cube_id}/adapter_config.json",
                "application/vnd.mip.lora-config+json",
                config,
            ),
            payload_entry(
                f"payloads/{cube_id}/adapter_model.safetensors",
                "application/vnd.mip.lora-weights+safetensors",
                weights,
            ),
        ],
    }


def manifest_dict(*cubes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "mip_version": "1.0",
        "name": "example/conformance",
        "version": "1.0.0",
        "title": "A conformance vector",
        "license": "Apache-2.0",
        "created_at": T0,
        "cubes": list(cubes) or [plaintext_cube()],
    }
    data.update(fields)
    return data


# --------------------------------------------------------------------------- containers


def tarinfo(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    """Member metadata exactly as the MIP writer sets it (mtime 0, root, 0644)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = kind
    return info


Member = tuple[tarfile.TarInfo, bytes | None]


def file_member(name: str, body: bytes) -> Member:
    return tarinfo(name, len(body)), body


def tar_bytes(
    members: Iterable[Member], *, fmt: int = tarfile.PAX_FORMAT, errors: str = "strict"
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w|", format=fmt, encoding="utf-8", errors=errors) as tar:
        for info, body in members:
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def pack_members(
    manifest: dict[str, Any],
    payloads: dict[str, bytes],
    keys: Iterable[SigningKey] = (),
) -> list[Member]:
    """The members of a well-formed pack, in MIP order (manifest, payloads, signatures)."""
    body = canonical_bytes(manifest)
    members = [file_member("manifest.json", body)]
    members += [file_member(path, payloads[path]) for path in sorted(payloads)]
    sigs = sorted((k.sign(body) for k in keys), key=lambda s: s.keyid)
    members += [file_member(f"signatures/{s.keyid}.json", s.to_bytes()) for s in sigs]
    return members


def pack_bytes(
    manifest: dict[str, Any], payloads: dict[str, bytes], keys: Iterable[SigningKey] = ()
) -> bytes:
    return gzip_bytes(tar_bytes(pack_members(manifest, payloads, keys)))


def payload_map(manifest: dict[str, Any], bodies: Iterable[bytes]) -> dict[str, bytes]:
    paths = [p["path"] for c in manifest["cubes"] for p in c["payloads"]]
    return dict(zip(paths, bodies, strict=True))


# --------------------------------------------------------------------------- vectors


@dataclass
class Vector:
    name: str
    description: str
    data: bytes
    expect: str  # "ok" or an error code
    kind: str = "pack"
    trusted: tuple[SigningKey, ...] = ()
    threshold: int = 1
    limits: dict[str, int] = field(default_factory=dict)

    @property
    def file(self) -> str:
        return f"{self.name}.{'memcube' if self.kind == 'pack' else 'json'}"


def ok_expectation(vector: Vector) -> dict[str, Any]:
    if vector.kind == "manifest":
        manifest = Manifest.from_bytes(vector.data)
        return {
            "outcome": "ok",
            "manifest_sha256": hashlib.sha256(manifest.canonical_bytes()).hexdigest(),
        }
    with tarfile.open(fileobj=io.BytesIO(vector.data), mode="r:*") as tar:
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        body = handle.read()
        signed = {
            Signature.from_bytes(h.read()).keyid
            for m in tar.getmembers()
            if m.name.startswith("signatures/") and (h := tar.extractfile(m)) is not None
        }
    trusted = {k.keyid for k in vector.trusted}
    return {
        "outcome": "ok",
        "manifest_sha256": hashlib.sha256(body).hexdigest(),
        "signers": sorted(signed & trusted),
    }
