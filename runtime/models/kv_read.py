"""Reading a KV payload's header and bytes: the checks before any tensor, and read-ahead.

Split from :mod:`.kv` (which loads and injects caches) so that single-blob
and chunked caches (:mod:`.kv_chunks`) share one header check. Not here:
tensors, models.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from protocol import (
    KV_INPUT_IDS,
    MIPError,
    ModelFingerprint,
    fingerprint_digest,
    read_safetensors_header,
)
from protocol.payloads import (
    KV_META_ENCODING,
    KV_META_SHARED_PREFIX,
    TensorInfo,
    kv_expected_tensors,
    kv_scale_name,
    kv_tensor_name,
)

from .causal_lm import LoadedModel
from .errors import KVCacheError

__all__ = ["check_position_limit", "layer_spans", "read_ahead", "read_kv_fingerprint"]

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
    tensors: dict[str, TensorInfo] = field(default_factory=dict)  # checked: the layout's
    data_offset: int = 0  # where the tensor data starts in the file


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
    return _Header(expected, dict(meta), seq_len, dict(header.tensors), header.data_offset)


def read_kv_fingerprint(path: Path) -> ModelFingerprint:
    """The fingerprint a KV payload was built for (checked against its digest). No torch work."""
    return _read_header(Path(path), None).fingerprint


def layer_spans(header: _Header, layers: int) -> list[tuple[int, int]]:
    """The file's byte ranges of each layer's tensors (keys, values and any scales), layer 0
    first: the order a forward pass reads them (safetensors sorts by name, so ``layers.10``
    lies before ``layers.2``). Adjacent ranges are merged."""
    spans: list[tuple[int, int]] = []
    for layer in range(layers):
        names = [kv_tensor_name(layer, part) for part in ("key", "value")]
        names += [kv_scale_name(layer, part) for part in ("key", "value")]
        infos = sorted((i.start, i.end) for n in names if (i := header.tensors.get(n)))
        for start, end in infos:
            start, end = start + header.data_offset, end + header.data_offset
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
    return spans


_BLOCK = 8 << 20  # bytes one reader thread reads at a time
_PROBE = 2 << 20  # one page in every 2 MiB tells whether a block is in the page cache
_READERS = 4


def _cached(fd: int, start: int, end: int, page: bytearray) -> bool:
    """Whether the pages probed in ``[start, end)`` are in the page cache (no disk wait)."""
    nowait = getattr(os, "RWF_NOWAIT", None)
    if nowait is None:
        return False
    view = memoryview(page)
    for at in range(start, end, _PROBE):
        try:
            if os.preadv(fd, [view[: min(len(page), end - at)]], at, nowait) <= 0:
                return False
        except OSError:  # EAGAIN: not cached; EOPNOTSUPP: cannot tell
            return False
    return True


def _read_block(fd: int, start: int, end: int) -> None:
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    while start < end:
        got = os.preadv(fd, [view[: min(len(buffer), end - start)]], start)
        if got <= 0:
            return
        start += got


def read_ahead(path: Path) -> None:
    """Bring the whole file into the page cache now, with a few parallel reads (SPEC 4.2.1).

    Chunked caches use it, and single files where :mod:`.kv_populate` cannot
    work (another OS, a kernel before 5.14): that one overlaps the reading
    with the forward pass and copies nothing.

    The tensors are memory-mapped and read right after; a cold mapping would
    wait on the disk once per page fault (a small read each), and
    ``posix_fadvise(WILLNEED)`` alone did not keep ahead of them (cold 1.94x
    warm at 4k float32). Blocks whose probed pages are already cached are
    skipped (``RWF_NOWAIT``), so a warm load costs a few small reads.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        page = bytearray(4096)
        blocks = [(at, min(at + _BLOCK, size)) for at in range(0, size, _BLOCK)]
        missing = [(a, b) for a, b in blocks if not _cached(fd, a, b, page)]
        if not missing:
            return
        advise = getattr(os, "posix_fadvise", None)
        if advise is not None:
            advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        if len(missing) == 1:
            _read_block(fd, *missing[0])
            return
        with ThreadPoolExecutor(min(_READERS, len(missing))) as pool:
            for done in [pool.submit(_read_block, fd, a, b) for a, b in missing]:
                done.result()
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
