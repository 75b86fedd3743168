"""Activation memory: plaintext memories turned into a KV-cache payload, and back.

Building
    :func:`build_kv` renders memories into one prefix text with a
    :class:`PromptTemplate`, tokenizes it (with the tokenizer's special tokens,
    e.g. BOS), runs one forward pass and writes the per-layer keys and values
    as a MIP KV-cache payload (safetensors, never pickle): tensors
    ``layers.<i>.key`` / ``layers.<i>.value`` of shape
    ``[1, num_kv_heads, seq_len, head_dim]`` in the model's dtype, ``input_ids``
    (int64, the exact prefix tokens), and ``__metadata__`` with
    ``mip.kind = kv-cache``, ``mip.fingerprint`` (the fingerprint digest) and,
    for readers that want to say *which* fields differ, the full fingerprint
    (``memos.fingerprint``), the template name and the prefix text's sha256.

Templates
    ``plain``: ``"Memories:\\n" + "- <text>\\n"... + "\\n"``, then the query as
    ``"Question: <query>\\nAnswer:"``; further memories after a cached prefix
    open with ``"More memories:\\n"``. ``chatml`` (default when the tokenizer
    knows ``<|im_start|>``, e.g. SmolLM2-Instruct): the memories in a system
    turn, and the prefix ends by opening the user turn (tokens that are the
    same for every question, so they are cached, not prefilled); the query
    closes that turn and opens the assistant's. Further memories after a cached
    prefix go inside the user turn, before the question. The
    prefix is tokenized with special tokens, the query part without, and the
    prompt is always ``prefix_ids + query_ids``, both for the plaintext path
    and for the cached path, so the two see the very same token ids.

Loading
    :func:`load_kv` first reads the header by hand (no tensor bytes, no
    torch), checks the kind, the fingerprint digest and the tensor shapes, and
    compares the fingerprint with the running model's: a cache made for
    another model raises :class:`FingerprintMismatchError`
    (``model.fingerprint_mismatch``, naming the fields) before anything
    reaches the model. Only then is the file memory-mapped, every tensor a view
    at the offsets of the checked header (:class:`.kv_codec.MappedTensors`);
    the pages of a cold file come in behind the call, layer 0 first, while
    the forward runs (:mod:`.kv_populate`). On
    CPU the cache given to the model holds the mapped tensors themselves
    (zero-copy). With the model on
    :mod:`.attention`'s ``memos_sdpa`` (the default for models loaded here) each
    layer is a :class:`~.attention.SharedPrefixLayer`: the query's keys and
    values go into a small tensor of their own and attention merges the two
    parts exactly, so the prefix is never copied at all; otherwise a
    DynamicCache appends into new tensors. Either way the mapped tensors are
    never written and can serve many prompts.

    A cache stored as content-addressed chunks (SPEC 4.2.2, :mod:`.kv_chunks`)
    is loaded from the tuple of its chunk paths: every chunk is checked, then
    the key chain, and the chunks are concatenated (one copy, not mapped).

Several caches: composed (:mod:`.kv_compose`)
    Every cache records how many of its leading tokens are the template's
    shared system prefix (``mip.kv.shared_prefix``) and how many trailing ones
    close the memory block (``memos.kv.closing_tokens``); keys are stored
    rotated by RoPE at positions ``0..n-1`` (``mip.kv.positions = rope:0``).
    :mod:`.kv_compose` puts several such caches behind one shared prefix,
    re-rotating each one's keys to its offset, and recomputes a budgeted
    fraction of tokens to restore attention across caches. Caches written
    before these fields are used alone only (:func:`combine_kv` refuses them).

Encodings (:mod:`.kv_codec`)
    ``raw`` (the model's dtype), ``fp16`` or ``int8`` with per-token scales,
    declared in ``mip.kv.encoding`` / ``mip.kv.scales``; a header whose tensors
    do not match its declared encoding is refused (``model.kv_encoding_mismatch``)
    before any tensor is read.

Not here: loading models (:mod:`.causal_lm`), LoRA (:mod:`.lora`), packs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from protocol import KV_INPUT_IDS, ModelFingerprint, canonical_bytes, fingerprint_digest
from protocol.kv_chunks import KVChunk
from protocol.payloads import (
    KV_META_ENCODING,
    KV_META_POSITIONS,
    KV_META_SCALES,
    KV_META_SHARED_PREFIX,
    KV_POSITIONS,
)

from .attention import SharedPrefixLayer, shared_prefix_supported
from .causal_lm import GenerationResult, LoadedModel, greedy_generate
from .errors import KVCacheError, KVCombineRefusedError
from .fingerprint import check_fingerprint
from .kv_chunks import read_kv_chunks
from .kv_codec import (
    KV_ENCODINGS,
    DequantizedLayers,
    Int8Rows,
    MappedTensors,
    decode_int8_layers,
    decode_layer,
    encode_layer,
)
from .kv_populate import populate
from .kv_read import (
    META_CLOSING,
    META_FINGERPRINT,
    META_FINGERPRINT_JSON,
    META_KIND,
    META_PREFIX_SHA256,
    META_TEMPLATE,
    _read_header,
    check_position_limit,
    layer_spans,
    read_ahead,
    read_kv_fingerprint,
)
from .kv_templates import (
    TEMPLATES,
    PromptTemplate,
    _template,
    default_template,
    prefix_segments,
    prompt_ids,
    template_for,
)

__all__ = [
    "TEMPLATES",
    "KVBuildInfo",
    "KVFiles",
    "LoadedKV",
    "PromptTemplate",
    "build_kv",
    "combine_kv",
    "default_template",
    "generate_with_kv",
    "generate_with_prefix",
    "load_kv",
    "prompt_ids",
    "read_kv_fingerprint",
    "template_for",
]

KVFiles = Path | tuple[Path, ...]  # one blob, or a chunked cache's chunks in order (4.2.2)


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class KVBuildInfo:
    path: Path
    num_tokens: int
    size: int  # bytes of the file
    fingerprint: ModelFingerprint
    template: str
    encoding: str = "raw"

    @property
    def bytes_per_token(self) -> float:
        return self.size / self.num_tokens


def _cache_layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    layers = []
    for layer in cache.layers:
        if getattr(layer, "is_sliding", False):
            raise KVCacheError(
                "models with sliding-window attention layers are not supported for KV payloads",
                code="model.kv_unsupported",
            )
        layers.append((layer.keys, layer.values))
    return layers


def build_kv(
    lm: LoadedModel,
    texts: Sequence[str],
    out_path: Path,
    *,
    template: PromptTemplate | str | None = None,
    encoding: str = "raw",
    prefill_chunk: int | None = None,
) -> KVBuildInfo:
    """Write the KV-cache payload of the prefix made from ``texts`` to ``out_path`` (atomically).

    ``encoding``: ``raw`` (the model's dtype), ``fp16`` or ``int8`` (see :mod:`.kv_codec`).
    ``prefill_chunk``: prefill that many tokens per forward pass, so the states
    of tokens ``0..k*n`` are bit-identical for any two prefixes sharing them
    (what lets chunked caches, :mod:`.kv_chunks`, share blobs across packs).
    """
    lm.require_base("build a KV cache")
    if not texts:
        raise KVCacheError("no memories to build a KV cache from", code="model.kv_empty")
    if encoding not in KV_ENCODINGS:
        raise KVCacheError(
            f"unknown KV encoding {encoding!r} (known: {', '.join(KV_ENCODINGS)})",
            code="model.kv_encoding_mismatch",
        )
    tpl = _template(lm, template)
    prefix_text = tpl.prefix(texts)
    header_ids, _items, closing, ids = prefix_segments(lm, tpl, texts)
    fp = lm.fingerprint
    cache: Any = DynamicCache(config=lm.config)
    step = prefill_chunk or len(ids)
    with torch.no_grad():
        for at in range(0, len(ids), step):
            part = torch.tensor([ids[at : at + step]], dtype=torch.long, device=lm.device)
            cache = lm.model(input_ids=part, cache=cache, use_cache=True, logits_to_keep=1).cache
    layers = _cache_layers(cache)
    if len(layers) != fp.num_layers:
        raise KVCacheError(f"model produced {len(layers)} cache layers, expected {fp.num_layers}")
    tensors: dict[str, torch.Tensor] = {KV_INPUT_IDS: torch.tensor(ids, dtype=torch.int64)}
    for i, (key, value) in enumerate(layers):
        tensors.update(encode_layer(i, key, value, encoding))
    metadata = {
        META_KIND: "kv-cache",
        META_FINGERPRINT: fingerprint_digest(fp),
        META_FINGERPRINT_JSON: canonical_bytes(fp.to_dict()).decode("utf-8"),
        META_TEMPLATE: tpl.name,
        META_PREFIX_SHA256: hashlib.sha256(prefix_text.encode("utf-8")).hexdigest(),
        KV_META_ENCODING: encoding,
        KV_META_POSITIONS: KV_POSITIONS,
        KV_META_SHARED_PREFIX: str(len(header_ids)),
        META_CLOSING: str(len(closing)),
    }
    if encoding == "int8":
        metadata[KV_META_SCALES] = "per-token"
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return KVBuildInfo(out_path, len(ids), out_path.stat().st_size, fp, tpl.name, encoding)


# --------------------------------------------------------------------------- load


@dataclass(frozen=True)
class LoadedKV:
    """A KV cache checked against the running model; tensors memory-mapped from the file."""

    path: Path
    fingerprint: ModelFingerprint
    input_ids: tuple[int, ...]
    keys: Sequence[torch.Tensor]  # int8: dequantized on first access (DequantizedLayers)
    values: Sequence[torch.Tensor]
    template: str | None
    size: int
    encoding: str = "raw"
    shared_prefix: int = 0  # leading tokens of the template's shared header; 0: not composable
    closing: int = 0  # trailing tokens that close the memory block (dropped when composed)
    int8: tuple[tuple[Int8Rows, Int8Rows], ...] | None = None  # int8: the mapped layers

    @property
    def num_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def composable(self) -> bool:
        return self.shared_prefix > 0

    def to_cache(self, lm: LoadedModel) -> DynamicCache:
        """A fresh DynamicCache holding these states (the loaded tensors are never modified)."""
        check_fingerprint(self.fingerprint, lm.fingerprint, what=f"KV cache {self.path.name}")
        lm.require_base("inject a KV cache")
        return cache_from_tensors(lm, self.keys, self.values, int8=self.int8)


def cache_from_tensors(
    lm: LoadedModel,
    keys: Sequence[torch.Tensor],
    values: Sequence[torch.Tensor],
    *,
    shared: bool | None = None,
    int8: Sequence[tuple[Int8Rows, Int8Rows]] | None = None,
) -> DynamicCache:
    """A DynamicCache starting from per-layer ``keys``/``values``, which are never written.

    ``shared`` (default: when the model runs ``memos_sdpa``) makes each layer a
    :class:`SharedPrefixLayer`; otherwise plain DynamicLayers hold the tensors.
    ``int8``: the same states as mapped int8 layers; shared layers then hold
    those and dequantize at each attention call (no float copy of the cache).
    """
    cache = DynamicCache(config=lm.config)
    if shared is None:
        shared = shared_prefix_supported(lm.model)
    if shared and int8 is not None and lm.device.type == "cpu":
        for i, (key8, value8) in enumerate(int8):
            if i < len(cache.layers) and type(cache.layers[i]) is DynamicLayer:
                cache.layers[i] = SharedPrefixLayer(key8, value8)
            else:
                cache.update(keys[i], values[i], i)
        return cache
    for i, (key, value) in enumerate(zip(keys, values, strict=True)):
        key, value = key.to(lm.device), value.to(lm.device)
        layer = cache.layers[i] if i < len(cache.layers) else None
        if shared and type(layer) is DynamicLayer:
            # The prefix is never copied, not even when the query is appended.
            cache.layers[i] = SharedPrefixLayer(key, value)
        elif type(layer) is DynamicLayer:
            # Zero-copy: the layer starts from the (memory-mapped) tensors themselves.
            # DynamicLayer.update concatenates into new tensors, so they are never written.
            layer.lazy_initialization(key, value)
            layer.keys, layer.values = key, value
        else:
            cache.update(key, value, i)
    return cache


def load_kv(
    path: KVFiles,
    lm: LoadedModel,
    *,
    expected: ModelFingerprint | None = None,
    declared: Sequence[KVChunk] | None = None,
) -> LoadedKV:
    """Check a KV payload against ``lm`` (refusing another model's cache), then map it.

    ``expected`` is the fingerprint from the cube's manifest, when the file
    comes from a pack; the header's digest must match it. Without it, the
    fingerprint recorded in the header is used. A tuple of paths is a chunked
    cache (:func:`.kv_chunks.read_kv_chunks`; ``declared``: the manifest's
    ``kv_chunk`` entries, which each chunk's header must match).
    """
    if isinstance(path, tuple):
        got = read_kv_chunks(path, lm, expected=expected, declared=declared)
        return LoadedKV(
            path=path[0], fingerprint=got.fingerprint, input_ids=got.input_ids,
            keys=got.keys, values=got.values, template=got.metadata.get(META_TEMPLATE),
            size=got.size, encoding=got.metadata.get(KV_META_ENCODING, "raw"),
            shared_prefix=int(got.metadata.get(KV_META_SHARED_PREFIX, "0")),
            closing=int(got.metadata.get(META_CLOSING, "0")),
        )  # fmt: skip
    path = Path(path)
    header = _read_header(path, expected)
    if header.metadata.get(KV_META_POSITIONS, KV_POSITIONS) != KV_POSITIONS:
        raise KVCacheError(
            f"{path.name} is one chunk of a chunked KV cache (4.2.2); load all its chunks",
            code="model.kv_chunk_chain",
        )
    check_fingerprint(header.fingerprint, lm.fingerprint, what=f"KV cache {path.name}")
    check_position_limit(lm, header.seq_len, what=f"KV cache {path.name}")
    encoding = header.metadata.get(KV_META_ENCODING, "raw")
    dtype = getattr(torch, header.fingerprint.dtype)
    keys: Sequence[torch.Tensor]
    values: Sequence[torch.Tensor]
    int8 = None
    fh = MappedTensors(path, header.tensors, header.data_offset)  # the header's checked layout
    layers = range(header.fingerprint.num_layers)
    # Cold: the pages come in behind this call, layer 0 first, while the forward runs.
    spans = layer_spans(header, len(layers))
    if populate(fh.address, fh.size, spans, keep=fh, touch=fh.touch) is None:
        read_ahead(path)
    ids = fh.get_tensor(KV_INPUT_IDS)
    if encoding == "int8":  # dequantized when read, not here (see .kv_codec)
        int8 = decode_int8_layers(fh, len(layers), dtype)
        keys = DequantizedLayers(tuple(k for k, _ in int8))
        values = DequantizedLayers(tuple(v for _, v in int8))
    else:
        decoded = [decode_layer(fh, layer, encoding, dtype) for layer in layers]
        keys, values = tuple(k for k, _ in decoded), tuple(v for _, v in decoded)
    return LoadedKV(
        path=path,
        fingerprint=header.fingerprint,
        input_ids=tuple(int(i) for i in ids.tolist()),
        keys=keys,
        values=values,
        template=header.metadata.get(META_TEMPLATE),
        size=path.stat().st_size,
        encoding=encoding,
        shared_prefix=int(header.metadata.get(KV_META_SHARED_PREFIX, "0")),
        closing=int(header.metadata.get(META_CLOSING, "0")),
        int8=int8,
    )


def combine_kv(caches: Sequence[LoadedKV]) -> LoadedKV:
    """Return the single cache; several only compose through :mod:`.kv_compose`.

    Refuses several caches when one predates the shared-prefix fields (it
    cannot be placed behind another's header).
    """
    if len(caches) == 1:
        return caches[0]
    if not caches:
        raise KVCacheError("no KV cache given", code="model.kv_empty")
    legacy = [c.path.name for c in caches if not c.composable]
    raise KVCombineRefusedError(
        f"refusing to combine {len(caches)} KV caches here: each was computed at positions from "
        "0 (RoPE-rotated keys) and without attending to the others' text; compose them with "
        "runtime.models.kv_compose (re-rotation and selective recompute)"
        + (f"; {', '.join(legacy)} predate composable caches: rebuild them" if legacy else "")
        + ", or build one cache from the concatenated memories",
        caches=[c.path.name for c in caches],
    )


# --------------------------------------------------------------------------- generation


def generate_with_kv(
    lm: LoadedModel,
    kv: LoadedKV,
    query: str,
    *,
    max_new_tokens: int = 16,
    template: PromptTemplate | str | None = None,
) -> GenerationResult:
    """Greedy generation for ``query`` with the cached memory prefix injected."""
    tpl = _template(lm, template if template is not None else kv.template)
    cache = kv.to_cache(lm)
    query_ids = lm.encode(tpl.query_text(query), add_special_tokens=False)
    return greedy_generate(
        lm, [*kv.input_ids, *query_ids], cache=cache, max_new_tokens=max_new_tokens
    )


def generate_with_prefix(
    lm: LoadedModel,
    texts: Sequence[str],
    query: str,
    *,
    max_new_tokens: int = 16,
    template: PromptTemplate | str | None = None,
) -> GenerationResult:
    """Greedy generation for ``query`` with the memories prefilled as plaintext."""
    prefix, query_ids = prompt_ids(lm, texts, query, template)
    return greedy_generate(lm, [*prefix, *query_ids], max_new_tokens=max_new_tokens)
