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
    reaches the model. Only then are tensors opened with ``safe_open``, which
    memory-maps the file. On CPU the cache given to the model holds the
    mapped tensors themselves (zero-copy). With the model on
    :mod:`.attention`'s ``memos_sdpa`` (the default for models loaded here) each
    layer is a :class:`~.attention.SharedPrefixLayer`: the query's keys and
    values go into a small tensor of their own and attention merges the two
    parts exactly, so the prefix is never copied at all; otherwise a
    DynamicCache appends into new tensors. Either way the mapped tensors are
    never written and can serve many prompts.

Several caches: refused, one cache per prompt
    Keys are stored already rotated by RoPE at positions ``0..n-1``, and every
    layer's states of a cube's tokens were computed attending only to that
    cube's own text. Concatenating two independently built caches would put
    the second at the wrong positions (fixable by re-rotating its keys) *and*
    would still not equal the cache of the concatenated text (its hidden
    states never saw the first text; not fixable without recomputing). The
    output would silently differ from the plaintext prompt, so
    :func:`combine_kv` refuses (``model.kv_combine_refused``) and says why.
    To inject memories from several cubes, build *one* cache from their
    concatenated texts (:func:`build_kv` takes any list of texts); the engine
    does exactly that when it promotes memories.

Not here: loading models (:mod:`.causal_lm`), LoRA (:mod:`.lora`), packs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from protocol import (
    KV_INPUT_IDS,
    MIPError,
    ModelFingerprint,
    canonical_bytes,
    fingerprint_digest,
    kv_tensor_name,
    read_safetensors_header,
)

from .attention import SharedPrefixLayer, shared_prefix_supported
from .causal_lm import GenerationResult, LoadedModel, greedy_generate
from .errors import KVCacheError, KVCombineRefusedError
from .fingerprint import check_fingerprint

__all__ = [
    "TEMPLATES",
    "KVBuildInfo",
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

META_KIND = "mip.kind"
META_FINGERPRINT = "mip.fingerprint"
META_FINGERPRINT_JSON = "memos.fingerprint"
META_TEMPLATE = "memos.template"
META_PREFIX_SHA256 = "memos.prefix_sha256"

_SAFETENSORS_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


@dataclass(frozen=True)
class PromptTemplate:
    """How memories and a query become prompt text (see the module docstring)."""

    name: str
    header: str
    item: str
    footer: str
    query: str
    more_header: str  # opens a further block of memories after a (cached) prefix
    opener: str = ""  # opens the query when no memory prefix came before it
    more_footer: str | None = None  # closes a further block (default: ``footer``)

    def prefix(self, texts: Sequence[str]) -> str:
        return self.header + "".join(self.item.format(text=t) for t in texts) + self.footer

    def more(self, texts: Sequence[str]) -> str:
        """Further memories to append after a prefix (empty when there are none)."""
        if not texts:
            return ""
        footer = self.footer if self.more_footer is None else self.more_footer
        return self.more_header + "".join(self.item.format(text=t) for t in texts) + footer

    def query_text(self, query: str, *, standalone: bool = False) -> str:
        """The query part; ``standalone`` when no memory prefix precedes it."""
        return (self.opener if standalone else "") + self.query.format(query=query)


TEMPLATES: dict[str, PromptTemplate] = {
    "plain": PromptTemplate(
        name="plain",
        header="Memories:\n",
        item="- {text}\n",
        footer="\n",
        query="Question: {query}\nAnswer:",
        more_header="More memories:\n",
    ),
    # The prefix ends by opening the user's turn: those tokens are the same for
    # every question, so they belong in the cache and are never prefilled
    # again. Further plaintext memories go inside that turn, before the question.
    "chatml": PromptTemplate(
        name="chatml",
        header=(
            "<|im_start|>system\nYou are a helpful assistant. Use these memories when relevant:\n"
        ),
        item="- {text}\n",
        footer="<|im_end|>\n<|im_start|>user\n",
        query="{query}<|im_end|>\n<|im_start|>assistant\n",
        more_header="More memories:\n",
        opener="<|im_start|>user\n",
        more_footer="\n",
    ),
}


def default_template(lm: LoadedModel) -> PromptTemplate:
    """``chatml`` when the tokenizer knows ``<|im_start|>``, else ``plain``."""
    vocab = lm.tokenizer.get_vocab()
    return TEMPLATES["chatml" if "<|im_start|>" in vocab else "plain"]


def template_for(lm: LoadedModel, template: PromptTemplate | str | None) -> PromptTemplate:
    """The named template (or the model's default for None)."""
    return _template(lm, template)


def _template(lm: LoadedModel, template: PromptTemplate | str | None) -> PromptTemplate:
    if template is None:
        return default_template(lm)
    if isinstance(template, str):
        try:
            return TEMPLATES[template]
        except KeyError:
            raise KVCacheError(
                f"unknown prompt template {template!r} (known: {', '.join(TEMPLATES)})"
            ) from None
    return template


def prompt_ids(
    lm: LoadedModel, texts: Sequence[str], query: str, template: PromptTemplate | str | None = None
) -> tuple[list[int], list[int]]:
    """(prefix ids, query ids) for memories ``texts`` and ``query``; the prompt joins them."""
    tpl = _template(lm, template)
    prefix = lm.encode(tpl.prefix(texts), add_special_tokens=True)
    return prefix, lm.encode(tpl.query_text(query), add_special_tokens=False)


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class KVBuildInfo:
    path: Path
    num_tokens: int
    size: int  # bytes of the file
    fingerprint: ModelFingerprint
    template: str

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
) -> KVBuildInfo:
    """Write the KV-cache payload of the prefix made from ``texts`` to ``out_path`` (atomically)."""
    lm.require_base("build a KV cache")
    if not texts:
        raise KVCacheError("no memories to build a KV cache from", code="model.kv_empty")
    tpl = _template(lm, template)
    prefix_text = tpl.prefix(texts)
    ids = lm.encode(prefix_text, add_special_tokens=True)
    fp = lm.fingerprint
    with torch.no_grad():
        out = lm.model(
            input_ids=torch.tensor([ids], dtype=torch.long, device=lm.device),
            cache=DynamicCache(config=lm.config),
            use_cache=True,
            logits_to_keep=1,
        )
    layers = _cache_layers(out.cache)
    if len(layers) != fp.num_layers:
        raise KVCacheError(f"model produced {len(layers)} cache layers, expected {fp.num_layers}")
    tensors: dict[str, torch.Tensor] = {KV_INPUT_IDS: torch.tensor(ids, dtype=torch.int64)}
    for i, (key, value) in enumerate(layers):
        tensors[kv_tensor_name(i, "key")] = key.detach().to("cpu").contiguous()
        tensors[kv_tensor_name(i, "value")] = value.detach().to("cpu").contiguous()
    metadata = {
        META_KIND: "kv-cache",
        META_FINGERPRINT: fingerprint_digest(fp),
        META_FINGERPRINT_JSON: canonical_bytes(fp.to_dict()).decode("utf-8"),
        META_TEMPLATE: tpl.name,
        META_PREFIX_SHA256: hashlib.sha256(prefix_text.encode("utf-8")).hexdigest(),
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return KVBuildInfo(out_path, len(ids), out_path.stat().st_size, fp, tpl.name)


# --------------------------------------------------------------------------- load


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
    shape = (1, expected.num_kv_heads, seq_len, expected.head_dim)
    want = _SAFETENSORS_DTYPES.get(expected.dtype)
    names = {KV_INPUT_IDS}
    for layer in range(expected.num_layers):
        for part in ("key", "value"):
            name = kv_tensor_name(layer, part)
            names.add(name)
            info = header.tensors.get(name)
            if info is None or info.shape != shape or info.dtype != want:
                raise KVCacheError(f"{path.name}: tensor {name} is missing or has the wrong shape")
    if set(header.tensors) != names:
        raise KVCacheError(f"{path.name} holds tensors that are not part of a KV cache")
    return _Header(expected, dict(meta), seq_len)


def read_kv_fingerprint(path: Path) -> ModelFingerprint:
    """The fingerprint a KV payload was built for (checked against its digest). No torch work."""
    return _read_header(Path(path), None).fingerprint


@dataclass(frozen=True)
class LoadedKV:
    """A KV cache checked against the running model; tensors memory-mapped from the file."""

    path: Path
    fingerprint: ModelFingerprint
    input_ids: tuple[int, ...]
    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    template: str | None
    size: int

    @property
    def num_tokens(self) -> int:
        return len(self.input_ids)

    def to_cache(self, lm: LoadedModel) -> DynamicCache:
        """A fresh DynamicCache holding these states (the loaded tensors are never modified)."""
        check_fingerprint(self.fingerprint, lm.fingerprint, what=f"KV cache {self.path.name}")
        lm.require_base("inject a KV cache")
        cache = DynamicCache(config=lm.config)
        shared = shared_prefix_supported(lm.model)
        for i, (key, value) in enumerate(zip(self.keys, self.values, strict=True)):
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


def load_kv(path: Path, lm: LoadedModel, *, expected: ModelFingerprint | None = None) -> LoadedKV:
    """Check a KV payload against ``lm`` (refusing another model's cache), then map it.

    ``expected`` is the fingerprint from the cube's manifest, when the file
    comes from a pack; the header's digest must match it. Without it, the
    fingerprint recorded in the header is used.
    """
    path = Path(path)
    header = _read_header(path, expected)
    check_fingerprint(header.fingerprint, lm.fingerprint, what=f"KV cache {path.name}")
    keys: list[torch.Tensor] = []
    values: list[torch.Tensor] = []
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        ids = fh.get_tensor(KV_INPUT_IDS)
        for layer in range(header.fingerprint.num_layers):
            keys.append(fh.get_tensor(kv_tensor_name(layer, "key")))
            values.append(fh.get_tensor(kv_tensor_name(layer, "value")))
    return LoadedKV(
        path=path,
        fingerprint=header.fingerprint,
        input_ids=tuple(int(i) for i in ids.tolist()),
        keys=tuple(keys),
        values=tuple(values),
        template=header.metadata.get(META_TEMPLATE),
        size=path.stat().st_size,
    )


def combine_kv(caches: Sequence[LoadedKV]) -> LoadedKV:
    """Return the single cache; refuse to combine several (see the module docstring)."""
    if len(caches) == 1:
        return caches[0]
    if not caches:
        raise KVCacheError("no KV cache given", code="model.kv_empty")
    raise KVCombineRefusedError(
        f"refusing to combine {len(caches)} KV caches: each was computed at positions from 0 "
        "(RoPE-rotated keys) and without attending to the others' text, so their concatenation "
        "would change the model's output; build one cache from the concatenated memories instead",
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
