"""KV-cache payload layout and content check (SPEC 4.2, 4.2.1, 4.2.2); see :mod:`.payloads`.

Split from :mod:`.payloads` so that the KV rules (encodings, placement,
chunks) read in one place; :mod:`.payloads` re-exports the public names.
"""

from __future__ import annotations

from typing import IO, Any, Protocol

from .errors import PayloadError
from .kv_chunks import KV_META_CHUNK_KEY, check_chunk_header
from .manifest import ModelFingerprint, PayloadRef


class _Header(Protocol):
    """A parsed safetensors header (:class:`.payloads.SafetensorsHeader`; not imported: a cycle)."""

    @property
    def metadata(self) -> dict[str, str]: ...
    @property
    def tensors(self) -> dict[str, Any]: ...


__all__ = [
    "KV_ENCODINGS",
    "KV_INPUT_IDS",
    "KV_META_ENCODING",
    "KV_META_POSITIONS",
    "KV_META_SCALES",
    "KV_META_SHARED_PREFIX",
    "KV_POSITIONS",
    "check_kv_cache",
    "kv_expected_tensors",
    "kv_scale_name",
    "kv_tensor_name",
]

KV_INPUT_IDS = "input_ids"
_FLOAT_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def kv_tensor_name(layer: int, part: str) -> str:
    """Name of a KV-cache tensor in the payload: ``layers.<i>.key`` / ``layers.<i>.value``."""
    return f"layers.{layer}.{part}"


# KV encodings (SPEC 4.2.1): declared in the header's __metadata__, since the media type is
# a closed constant in MIP 1.x manifests. A reader that predates them checks every tensor
# against the model's dtype and so refuses an fp16 or int8 cache; it never misreads one.
KV_META_ENCODING = "mip.kv.encoding"
KV_META_SCALES = "mip.kv.scales"
KV_META_POSITIONS = "mip.kv.positions"
KV_META_SHARED_PREFIX = "mip.kv.shared_prefix"
KV_ENCODINGS = ("raw", "fp16", "int8")
KV_POSITIONS = "rope:0"  # keys rotated by RoPE at positions 0..seq_len-1 (the only layout)


def kv_scale_name(layer: int, part: str) -> str:
    """Name of an int8 cache's per-token scales: ``layers.<i>.key_scale`` / ``…value_scale``."""
    return f"layers.{layer}.{part}_scale"


def kv_expected_tensors(
    fingerprint: ModelFingerprint, seq_len: int, metadata: dict[str, str]
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (safetensors dtype, shape) of every tensor a KV cache declaring ``metadata`` holds.

    Raises PayloadError (``payload.kv_cache_shape``) for an encoding, scale layout
    or position layout this reader does not know, or a bad shared-prefix length.
    """

    def bad(message: str) -> PayloadError:
        return PayloadError(message, code="payload.kv_cache_shape")

    encoding = metadata.get(KV_META_ENCODING, "raw")
    if encoding not in KV_ENCODINGS:
        raise bad(f"KV-cache encoding {encoding!r} is not one of {', '.join(KV_ENCODINGS)}")
    scales = metadata.get(KV_META_SCALES)
    if (encoding == "int8") != (scales is not None) or scales not in (None, "per-token"):
        raise bad(f"KV-cache encoding {encoding!r} with scales {scales!r} is not a known layout")
    positions = metadata.get(KV_META_POSITIONS, KV_POSITIONS)
    chunk_at = positions.removeprefix("rope:") if KV_META_CHUNK_KEY in metadata else "0"
    if positions != KV_POSITIONS and not (positions == f"rope:{chunk_at}" and chunk_at.isdigit()):
        raise bad(f"KV-cache positions {positions!r} are not {KV_POSITIONS!r} (or a chunk's)")
    shared = metadata.get(KV_META_SHARED_PREFIX)
    if shared is not None and (not shared.isdigit() or not 1 <= int(shared) <= seq_len):
        raise bad(f"KV-cache shared prefix {shared!r} is not a token count within the cache")
    dtype = {"raw": _FLOAT_DTYPES[fingerprint.dtype], "fp16": "F16", "int8": "I8"}[encoding]
    shape = (1, fingerprint.num_kv_heads, seq_len, fingerprint.head_dim)
    out: dict[str, tuple[str, tuple[int, ...]]] = {KV_INPUT_IDS: ("I64", (seq_len,))}
    for layer in range(fingerprint.num_layers):
        for part in ("key", "value"):
            out[kv_tensor_name(layer, part)] = (dtype, shape)
            if encoding == "int8":
                out[kv_scale_name(layer, part)] = ("F16", (*shape[:3], 1))
    return out


def check_kv_cache(
    header: _Header, fingerprint: ModelFingerprint, ref: PayloadRef, stream: IO[bytes]
) -> None:
    def bad(message: str) -> PayloadError:
        return PayloadError(message, code="payload.kv_cache_shape")

    if header.metadata.get("mip.kind") != "kv-cache":
        raise bad("KV-cache payload must declare __metadata__ 'mip.kind' = 'kv-cache'")
    if header.metadata.get("mip.fingerprint") != fingerprint.digest():
        raise PayloadError(
            "KV-cache header names another model fingerprint than its cube",
            code="payload.fingerprint_mismatch",
        )
    ids = header.tensors.get(KV_INPUT_IDS)
    if ids is None or ids.dtype != "I64" or len(ids.shape) != 1 or ids.shape[0] < 1:
        raise bad("KV-cache payload needs a 1-D int64 'input_ids' tensor of the cached prefix")
    expected = kv_expected_tensors(fingerprint, ids.shape[0], header.metadata)
    for name, (want_dtype, shape) in expected.items():
        tensor = header.tensors.get(name)
        if tensor is None:
            raise bad(f"KV-cache payload lacks tensor {name!r}")
        if tensor.dtype != want_dtype or tensor.shape != shape:
            raise bad(
                f"tensor {name!r} is {tensor.dtype}{list(tensor.shape)}, "
                f"expected {want_dtype}{list(shape)}"
            )
    extra = sorted(set(header.tensors) - set(expected))
    if extra:
        raise bad(f"KV-cache payload has unexpected tensors: {extra[:5]}")
    ids_at = (ids.start, ids.end, ids.shape[0])
    check_chunk_header(header.metadata, ids_at, ref, fingerprint.digest(), stream)
