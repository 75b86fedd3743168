"""Payload content checks: each payload must be what its media type claims.

A digest proves the bytes are the ones the publisher signed; it does not
prove they are harmless. This module checks content against the media type
without ever executing or unpickling it:

* memories JSONL: strict UTF-8 JSON objects, one per line, each valid against
  the memory-record schema, unique ids, embedding vectors of their stated size;
* safetensors (KV caches, LoRA weights): the header is parsed by hand and every
  tensor's dtype, shape and byte range is checked against the file size. A
  pickle or a torch zip file is refused by name;
* KV caches: exactly the tensors of the cube's model fingerprint (layers, KV
  heads, head dim, dtype), the cached token ids, and the fingerprint digest in
  the header's metadata;
* LoRA config: the lora-config schema.

Not here: loading tensors into a model (runtime.models), digests (archive).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from ._kv_payload import (
    KV_ENCODINGS,
    KV_INPUT_IDS,
    KV_META_ENCODING,
    KV_META_POSITIONS,
    KV_META_SCALES,
    KV_META_SHARED_PREFIX,
    KV_POSITIONS,
    check_kv_cache,
    kv_expected_tensors,
    kv_scale_name,
    kv_tensor_name,
)
from .errors import ManifestError, PayloadError
from .manifest import MediaType, MemCube, ModelFingerprint, PayloadRef, parse_json, parse_timestamp
from .schema import LORA_CONFIG_SCHEMA_ID, MEMORY_RECORD_SCHEMA_ID, schema_violations

__all__ = [
    "KV_ENCODINGS",
    "KV_INPUT_IDS",
    "KV_META_ENCODING",
    "KV_META_POSITIONS",
    "KV_META_SCALES",
    "KV_META_SHARED_PREFIX",
    "KV_POSITIONS",
    "MemoryRecord",
    "SafetensorsHeader",
    "TensorInfo",
    "fingerprint_digest",
    "iter_memory_records",
    "kv_expected_tensors",
    "kv_scale_name",
    "kv_tensor_name",
    "read_safetensors_header",
    "validate_payload",
]

MAX_JSONL_LINE = 1024 * 1024
MAX_SAFETENSORS_HEADER = 64 * 1024 * 1024

_DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip


def fingerprint_digest(fingerprint: ModelFingerprint) -> str:
    """sha256 of the canonical JSON of the fingerprint's MIP 1.0 fields, stored in KV headers.

    ``weights_sha256`` (1.1) and unknown fields are left out, so every 1.x
    reader computes the same digest; the weights are bound through the cube's
    signed fingerprint instead.
    """
    return fingerprint.digest()


# --------------------------------------------------------------------------- JSONL


def _real_timestamp(text: str) -> bool:
    try:
        parse_timestamp(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class MemoryRecord:
    """One plaintext memory as carried in a pack."""

    id: str
    text: str
    tags: tuple[str, ...] = ()
    created_at: str | None = None
    updated_at: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    embedding: tuple[float, ...] | None = None
    embedding_model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "text": self.text}
        if self.tags:
            out["tags"] = list(self.tags)
        for key in ("created_at", "updated_at"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.metadata:
            out["metadata"] = self.metadata
        if self.embedding is not None:
            out["embedding"] = {
                "model": self.embedding_model,
                "dimension": len(self.embedding),
                "vector": list(self.embedding),
            }
        return out


_MAX_VECTOR = 65536  # the schema's maxItems for embedding.vector
_NUMBERS = frozenset({float, int})  # JSON numbers as parsed (bool is not one)


def _vector_checked(value: Any) -> Any:
    """``value`` with an embedding vector that already meets the schema left out.

    A vector of plain numbers within the schema's length is exactly what the
    schema allows, so jsonschema need not visit each of its hundreds of floats
    (it was ~90% of reading a pack with MiniLM vectors). Anything else is
    returned unchanged, so its violations are reported as before.
    """
    if not isinstance(value, dict):
        return value
    embedding = value.get("embedding")
    if not isinstance(embedding, dict):
        return value
    vector = embedding.get("vector")
    if (
        not isinstance(vector, list)
        or len(vector) > _MAX_VECTOR
        or not set(map(type, vector)) <= _NUMBERS  # in C: no Python loop per float
    ):
        return value
    return {**value, "embedding": {**embedding, "vector": []}}


def iter_memory_records(
    stream: IO[bytes], *, expected_dimension: int | None = None
) -> Iterator[MemoryRecord]:
    """Yield validated records from a memories JSONL payload, streaming.

    Blank lines are allowed (ignored). Raises PayloadError naming the line.
    """
    seen: set[str] = set()
    for number, line in enumerate(iter(lambda: stream.readline(MAX_JSONL_LINE + 1), b""), 1):
        if len(line) > MAX_JSONL_LINE:
            raise PayloadError(
                f"memories line {number} is longer than {MAX_JSONL_LINE} bytes",
                code="payload.jsonl_line_too_long",
                line=number,
            )
        if not line.strip():
            continue
        try:
            value = parse_json(line, what=f"memories line {number}")
        except ManifestError as exc:
            raise PayloadError(exc.message, code="payload.bad_jsonl", line=number) from exc
        violations = schema_violations(_vector_checked(value), MEMORY_RECORD_SCHEMA_ID)
        if violations:
            first = violations[0]
            raise PayloadError(
                f"memories line {number} at {first.pointer or '/'}: {first.message}",
                code="payload.bad_memory_record",
                line=number,
                violations=[v.to_dict() for v in violations],
            )
        record_id = value["id"]
        if record_id in seen:
            raise PayloadError(
                f"memories line {number}: duplicate memory id {record_id!r}",
                code="payload.duplicate_memory_id",
                line=number,
            )
        seen.add(record_id)
        embedding = value.get("embedding")
        vector: tuple[float, ...] | None = None
        for key in ("created_at", "updated_at"):
            if key in value and not _real_timestamp(value[key]):
                raise PayloadError(
                    f"memories line {number}: {key} {value[key]!r} is not a real timestamp",
                    code="payload.bad_memory_record",
                    line=number,
                )
        if embedding is not None:
            try:
                vector = tuple(map(float, embedding["vector"]))
            except OverflowError:  # an integer too large for a float
                vector = (math.inf,)
            if not all(map(math.isfinite, vector)):
                raise PayloadError(
                    f"memories line {number}: embedding has a non-finite value",
                    code="payload.embedding_dimension",
                    line=number,
                )
            if len(vector) != embedding["dimension"] or (
                expected_dimension is not None and len(vector) != expected_dimension
            ):
                raise PayloadError(
                    f"memories line {number}: embedding has {len(vector)} values, "
                    f"expected {expected_dimension or embedding['dimension']}",
                    code="payload.embedding_dimension",
                    line=number,
                )
        yield MemoryRecord(
            id=record_id,
            text=value["text"],
            tags=tuple(value.get("tags", ())),
            created_at=value.get("created_at"),
            updated_at=value.get("updated_at"),
            metadata=dict(value.get("metadata", {})),
            embedding=vector,
            embedding_model=embedding["model"] if embedding else None,
        )


# --------------------------------------------------------------------------- safetensors


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_offset: int  # where the tensor data starts in the file


def _not_safetensors(message: str, head: bytes = b"") -> PayloadError:
    if head[:1] == b"\x80" or head[:2] == b"PK":
        return PayloadError(
            "payload looks like a pickle or a torch.save zip; MIP never loads pickles",
            code="payload.pickle_forbidden",
        )
    return PayloadError(message, code="payload.not_safetensors")


def read_safetensors_header(stream: IO[bytes], size: int) -> SafetensorsHeader:
    """Parse and check a safetensors header against the file's ``size``. No tensor data is read."""
    head = stream.read(8)
    if len(head) < 8:
        raise _not_safetensors("payload is too short to be safetensors", head)
    (header_len,) = struct.unpack("<Q", head)
    if header_len > MAX_SAFETENSORS_HEADER or 8 + header_len > size:
        raise _not_safetensors("safetensors header length is out of range", head)
    raw = stream.read(header_len)
    if len(raw) != header_len:
        raise _not_safetensors("safetensors header is truncated", head)
    try:
        header = parse_json(raw, what="safetensors header")
    except ManifestError as exc:
        raise _not_safetensors(f"safetensors header is not JSON: {exc.message}", head) from exc
    if not isinstance(header, dict):
        raise _not_safetensors("safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _not_safetensors("safetensors __metadata__ must map strings to strings")
    data_len = size - 8 - header_len
    tensors: dict[str, TensorInfo] = {}
    for name, info in header.items():
        tensors[name] = _tensor_info(name, info, data_len)
    spans = sorted((t.start, t.end) for t in tensors.values())
    cursor = 0
    for start, end in spans:
        if start != cursor:
            raise _not_safetensors("safetensors tensors overlap or leave gaps")
        cursor = end
    if cursor != data_len:
        raise _not_safetensors("safetensors data does not end where the last tensor ends")
    return SafetensorsHeader(tensors, dict(metadata), 8 + header_len)


def _tensor_info(name: str, info: Any, data_len: int) -> TensorInfo:
    if not isinstance(info, dict):
        raise _not_safetensors(f"tensor {name!r} entry is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in _DTYPE_SIZES:
        raise _not_safetensors(f"tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise _not_safetensors(f"tensor {name!r} has a bad shape")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        raise _not_safetensors(f"tensor {name!r} has bad data_offsets")
    start, end = offsets
    if not 0 <= start <= end <= data_len:
        raise _not_safetensors(f"tensor {name!r} points outside the file")
    if end - start != math.prod(shape) * _DTYPE_SIZES[dtype]:
        raise _not_safetensors(f"tensor {name!r} byte size does not match its shape and dtype")
    return TensorInfo(name, dtype, tuple(shape), start, end)


def _check_lora_weights(header: SafetensorsHeader) -> None:
    if not header.tensors:
        raise PayloadError("LoRA weights hold no tensors", code="payload.lora_weights")
    for tensor in header.tensors.values():
        if "lora_" not in tensor.name:
            raise PayloadError(
                f"tensor {tensor.name!r} is not a LoRA tensor (name must contain 'lora_')",
                code="payload.lora_weights",
            )
        if tensor.dtype not in ("F32", "F16", "BF16"):
            raise PayloadError(
                f"LoRA tensor {tensor.name!r} has dtype {tensor.dtype}", code="payload.lora_weights"
            )


def _check_lora_config(stream: IO[bytes], size: int) -> None:
    if size > MAX_JSONL_LINE:
        raise PayloadError("adapter_config.json is too large", code="payload.lora_config")
    try:
        value = parse_json(stream.read(size + 1), what="adapter_config.json")
    except ManifestError as exc:
        raise PayloadError(exc.message, code="payload.lora_config") from exc
    violations = schema_violations(value, LORA_CONFIG_SCHEMA_ID)
    if violations:
        first = violations[0]
        raise PayloadError(
            f"adapter_config.json at {first.pointer or '/'}: {first.message}",
            code="payload.lora_config",
            violations=[v.to_dict() for v in violations],
        )


def validate_payload(cube: MemCube, ref: PayloadRef, stream: IO[bytes]) -> None:
    """Check one payload's content against its media type and its cube. Raises PayloadError."""
    media = MediaType(ref.media_type)
    if media is MediaType.MEMORIES_JSONL:
        dimension = cube.embedding.dimension if cube.embedding else None
        for _ in iter_memory_records(stream, expected_dimension=dimension):
            pass
    elif media is MediaType.LORA_CONFIG:
        _check_lora_config(stream, ref.size)
    else:
        header = read_safetensors_header(stream, ref.size)
        if media is MediaType.KV_CACHE:
            assert cube.model is not None  # the schema requires it for activation cubes
            check_kv_cache(header, cube.model, ref, stream)
        else:
            _check_lora_weights(header)


def dumps_records(records: list[MemoryRecord]) -> bytes:
    """Serialise records as a memories JSONL payload (sorted keys, one per line)."""
    lines = [json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
