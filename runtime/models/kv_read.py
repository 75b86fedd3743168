"""Reading a KV payload's header and bytes: the checks before any tensor, and read-ahead.

Split from :mod:`.kv` (which loads and injects caches) so that single-blob
and chunked caches (:mod:`.kv_chunks`) share one header check. Not here:
tensors, models.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from protocol import (
    KV_INPUT_IDS,
    MIPError,
    ModelFingerprint,
    fingerprint_digest,
    read_safetensors_header,
)
from protocol.payloads import KV_META_ENCODING, KV_META_SHARED_PREFIX, kv_expected_tensors

from .causal_lm import LoadedModel
from .errors import KVCacheError

__all__ = ["check_position_limit", "read_ahead", "read_kv_fingerprint"]

META_KIND = "mip.kind"
META_FINGERPRINT = "mip.fingerprint"
META_FINGERPRINT_JSON = "memos.fingerprint"
META_CLOSING = "memos.kv.closing_tokens"
META_TEMPLATE = "memos.template"
META_PREFIX_SHA256 = "memos.prefix_sha256"


@dataclass(frozen=True)
class _Header:
    fingerprint: ModelFingerprint
    metadata: dict[str, str]
    seq_len: int


def _read_header(path: Path, expected: ModelFingerprint | None) -> _Header:
    """Parse and check a KV payload's header against its fingerprint; reads no tensor data."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            header = read_safetensors_header(fh, size)
    except MIPError as exc:
        raise KVCacheError(f"{path.name} is not a valid KV-cache payload: {exc}") from exc
    meta = header.metadata
    if meta.get(META_KIND) != "kv-cache":
        raise KVCacheError(f"{path.name} does not declare __metadata__ mip.kind = kv-cache")
    digest = meta.get(META_FINGERPRINT)
    if expected is None:
        try:
            expected = ModelFingerprint.from_dict(json.loads(meta[META_FINGERPRINT_JSON]))
        except (KeyError, ValueError, TypeError) as exc:
            raise KVCacheError(
                f"{path.name} carries no readable model fingerprint; pass the cube's fingerprint"
            ) from exc
    if digest != fingerprint_digest(expected):
        raise KVCacheError(
            f"{path.name}'s header names another model fingerprint than its cube",
            code="model.kv_fingerprint_digest",
        )
    ids = header.tensors.get(KV_INPUT_IDS)
    if ids is None or ids.dtype != "I64" or len(ids.shape) != 1 or ids.shape[0] < 1:
        raise KVCacheError(f"{path.name} lacks a 1-D int64 input_ids tensor")
    seq_len = ids.shape[0]
    try:
        layout = kv_expected_tensors(expected, seq_len, meta)
    except MIPError as exc:
        raise KVCacheError(
            f"{path.name}: {exc.message}", code="model.kv_encoding_mismatch"
        ) from exc
    encoded = meta.get(KV_META_ENCODING, "raw") != "raw"
    for name, (dtype, shape) in layout.items():
        info = header.tensors.get(name)
        if info is None or info.shape != shape or info.dtype != dtype:
            found = "missing" if info is None else f"{info.dtype}{list(info.shape)}"
            raise KVCacheError(
                f"{path.name}: tensor {name} is missing or has the wrong shape: {found}, "
                f"expected {dtype}{list(shape)} for encoding "
                f"{meta.get(KV_META_ENCODING, 'raw')!r}",
                code="model.kv_encoding_mismatch" if encoded or info is not None else None,
            )
    if set(header.tensors) != set(layout):
        raise KVCacheError(f"{path.name} holds tensors that are not part of a KV cache")
    closing = meta.get(META_CLOSING, "0")
    shared = int(meta.get(KV_META_SHARED_PREFIX, "0"))
    if not closing.isdigit() or (shared and shared + int(closing) > seq_len):
        raise KVCacheError(f"{path.name}: {META_CLOSING} {closing!r} is out of range")
    return _Header(expected, dict(meta), seq_len)


def read_kv_fingerprint(path: Path) -> ModelFingerprint:
    """The fingerprint a KV payload was built for (checked against its digest). No torch work."""
    return _read_header(Path(path), None).fingerprint


def read_ahead(path: Path) -> None:
    """Ask the kernel to read the whole file now, in the background (cold loads, SPEC 4.2.1).

    The tensors are read in order right after; with the pages already on
    their way, a cold load waits for the disk once instead of per page fault.
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)


def check_position_limit(lm: LoadedModel, tokens: int, *, what: str) -> None:
    """Refuse ``tokens`` cached positions beyond the model's limit (before touching it)."""
    limit = getattr(lm.config, "max_position_embeddings", None)
    if isinstance(limit, int) and tokens >= limit:
        raise KVCacheError(
            f"{what} would place tokens up to position {tokens - 1}, beyond the model's limit "
            f"of {limit} positions (max_position_embeddings)",
            code="model.kv_position_limit",
            tokens=tokens,
            limit=limit,
        )
