"""Several KV caches in one prompt: placed behind one shared header, then selectively recomputed.

Placement (position independence, SPEC 4.2.1)
    Caches store keys rotated by RoPE at positions ``0..n-1`` (``rope:0``).
    RoPE turns each pair of key channels by an angle proportional to the
    position, so moving a cache by ``d`` positions is one more rotation by
    ``d``: ``R(p + d) = R(d) R(p)``. A cache's memory tokens are re-rotated
    by ``offset - shared_prefix`` at load (exact up to float rounding; keys
    are stored rotated so a cache used alone, the common case, needs no work
    and stays zero-copy). Values carry no position. Every cache built with one
    template starts with the same header tokens (``mip.kv.shared_prefix``),
    computed at the same positions: the first cache's header is kept, the
    others' are dropped, and so is each cache's closing (``memos.kv.closing_tokens``),
    which the prompt then prefills once, after the last cache.

Selective recompute (CacheBlend, EuroSys'25)
    The header and the first cache are exactly what a full prefill computes
    (causal attention; same tokens, same positions). The tokens of later
    caches never attended to the caches before them. ``recompute`` (a fraction
    of the memory tokens; :data:`DEFAULT_RECOMPUTE`) picks those tokens of the
    later caches whose layer-1 keys and values deviate most from what a full
    prefill gives (CacheBlend's selection: layer 0's states depend on the token
    and position alone, so they are exact after re-rotation, and one pass of
    the later caches' tokens through layers 0-1 gives the true layer-1 states),
    then runs the model over only the chosen tokens, at their own positions,
    each attending causally to every other cached token, and replaces their
    keys and values in every layer. With ``recompute=1.0`` every later token
    is recomputed, and the cache equals a full prefill of the same token ids
    (up to float rounding; tested).

The composed keys are held in position order only up to a permutation:
attention does not care about the order of cached entries (positions are in
the rotated keys), and every cached token is visible to every query token.
Not here: loading and checking payloads (:mod:`.kv`), planning (runtime.engine).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache

from .causal_lm import LoadedModel
from .errors import KVCacheError, KVCombineRefusedError
from .fingerprint import check_fingerprint
from .kv import LoadedKV, cache_from_tensors
from .kv_codec import Int8Rows
from .kv_read import check_position_limit

__all__ = ["DEFAULT_RECOMPUTE", "ComposedKV", "compose_kv", "rerotate_keys"]

DEFAULT_RECOMPUTE = 0.0  # the bench (bench/kv_compose.py) picks it; see bench/RESULTS.md
SELECT_LAYER = 1


@dataclass(frozen=True)
class ComposedKV:
    """Cached states of ``input_ids`` (a shared header, then each cache's memory tokens)."""

    input_ids: tuple[int, ...]
    keys: Sequence[torch.Tensor]
    values: Sequence[torch.Tensor]
    closing_ids: tuple[int, ...]  # prefilled right after the cache (the block's closing)
    spans: tuple[tuple[str, int, int], ...]  # (cache file name, first position, end)
    template: str | None
    recomputed: int = 0  # tokens recomputed to restore attention across caches
    compose_s: float = 0.0  # placement and recompute time
    int8: Sequence[tuple[Int8Rows, Int8Rows]] | None = None  # one int8 cache, used as mapped

    @property
    def num_tokens(self) -> int:
        return len(self.input_ids)

    def to_cache(self, lm: LoadedModel) -> DynamicCache:
        lm.require_base("inject a KV cache")
        return cache_from_tensors(lm, self.keys, self.values, int8=self.int8)


def _decoder(lm: LoadedModel) -> Any:
    decoder = lm.model.get_decoder() if hasattr(lm.model, "get_decoder") else None
    if decoder is None or not hasattr(decoder, "rotary_emb") or not hasattr(decoder, "layers"):
        raise KVCacheError(
            f"{lm.fingerprint.architecture} has no rotary position embedding to re-place "
            "KV caches with; use one cache at a time",
            code="model.kv_unsupported",
        )
    return decoder


def rerotate_keys(lm: LoadedModel, keys: torch.Tensor, delta: int) -> torch.Tensor:
    """``keys`` (rotated at positions p) rotated to positions ``p + delta``; a new tensor."""
    if delta == 0:
        return keys
    rotary = _decoder(lm).rotary_emb
    where = torch.tensor([[delta]], dtype=torch.long, device=keys.device)
    cos, sin = rotary(keys, position_ids=where)  # [1, 1, head_dim], times attention_scaling
    scaling = float(getattr(rotary, "attention_scaling", 1.0) or 1.0)
    cos, sin = (cos / scaling).unsqueeze(1), (sin / scaling).unsqueeze(1)
    half = keys.shape[-1] // 2
    turned = torch.cat((-keys[..., half:], keys[..., :half]), dim=-1)
    moved: torch.Tensor = (keys * cos + turned * sin).to(keys.dtype)
    return moved


def _check(lm: LoadedModel, caches: Sequence[LoadedKV]) -> None:
    legacy = [c.path.name for c in caches if not c.composable]
    if legacy:
        raise KVCombineRefusedError(
            f"{', '.join(legacy)} predate composable KV caches (no shared-prefix field): "
            "rebuild them, or use one cache at a time",
            caches=legacy,
        )
    first = caches[0]
    for cache in caches:
        check_fingerprint(cache.fingerprint, lm.fingerprint, what=f"KV cache {cache.path.name}")
        same_header = (
            cache.input_ids[: cache.shared_prefix] == first.input_ids[: first.shared_prefix]
        )
        closing = cache.input_ids[cache.num_tokens - cache.closing :]
        if (
            cache.template != first.template
            or not same_header
            or closing != first.input_ids[first.num_tokens - first.closing :]
        ):
            raise KVCombineRefusedError(
                f"KV caches {first.path.name} and {cache.path.name} were built with different "
                "prompt templates or headers, so they cannot share one header",
                caches=[first.path.name, cache.path.name],
            )


def compose_kv(
    lm: LoadedModel, caches: Sequence[LoadedKV], *, recompute: float = DEFAULT_RECOMPUTE
) -> ComposedKV:
    """Place ``caches`` in this order behind one header and recompute a ``recompute`` fraction.

    One cache is returned as it is (zero-copy, its own closing included).
    Refuses, before running the model: another model's cache, caches of
    different templates or headers, and a composition beyond the model's
    position limit (``model.kv_position_limit``).
    """
    if not caches:
        raise KVCacheError("no KV cache given", code="model.kv_empty")
    if not 0.0 <= recompute <= 1.0:
        raise KVCacheError(f"recompute must be within 0..1, not {recompute}")
    lm.require_base("inject a KV cache")
    first = caches[0]
    if len(caches) == 1:
        check_fingerprint(first.fingerprint, lm.fingerprint, what=f"KV cache {first.path.name}")
        spans = ((first.path.name, 0, first.num_tokens),)
        return ComposedKV(first.input_ids, first.keys, first.values, (), spans, first.template,
                          int8=first.int8)  # fmt: skip
    start = time.perf_counter()
    _check(lm, caches)
    head = first.shared_prefix
    bodies = [(c, head, c.num_tokens - c.closing) for c in caches]
    total = head + sum(end - begin for _, begin, end in bodies)
    closing = first.input_ids[first.num_tokens - first.closing :]
    check_position_limit(lm, total + len(closing) + 1, what=f"{len(caches)} composed KV caches")
    ids: list[int] = list(first.input_ids[:head])
    spans_list: list[tuple[str, int, int]] = []
    offsets = []
    for cache, begin, end in bodies:
        spans_list.append((cache.path.name, len(ids), len(ids) + end - begin))
        offsets.append(len(ids) - begin)
        ids.extend(cache.input_ids[begin:end])
    keys, values = [], []
    for layer in range(lm.fingerprint.num_layers):
        ks = [first.keys[layer][..., :head, :]]
        vs = [first.values[layer][..., :head, :]]
        for (cache, begin, end), delta in zip(bodies, offsets, strict=True):
            ks.append(rerotate_keys(lm, cache.keys[layer][..., begin:end, :], delta))
            vs.append(cache.values[layer][..., begin:end, :])
        keys.append(torch.cat(ks, dim=-2))
        values.append(torch.cat(vs, dim=-2))
    exact = spans_list[0][2]  # the header and the first cache need no recompute
    budget = min(total - exact, math.ceil(recompute * (total - head))) if recompute else 0
    if budget > 0:
        chosen = _choose(lm, ids, keys, values, exact, budget)
        keys, values = _recompute(lm, ids, keys, values, chosen)
    return ComposedKV(
        tuple(ids), tuple(keys), tuple(values), tuple(closing), tuple(spans_list),
        first.template, budget, time.perf_counter() - start,
    )  # fmt: skip


class _Stop(Exception):
    """Raised by a hook to end a forward pass after the layer it watches."""


def _choose(
    lm: LoadedModel,
    ids: Sequence[int],
    keys: list[torch.Tensor],
    values: list[torch.Tensor],
    exact: int,
    budget: int,
) -> torch.Tensor:
    """Positions (>= ``exact``) of the ``budget`` tokens whose layer-1 states deviate most."""
    later = len(ids) - exact
    if budget >= later:
        return torch.arange(exact, len(ids), device=lm.device)
    cache = cache_from_tensors(
        lm, [k[..., :exact, :] for k in keys], [v[..., :exact, :] for v in values]
    )
    layer = _decoder(lm).layers[SELECT_LAYER]

    def stop(*_args: Any) -> None:
        raise _Stop

    handle = layer.register_forward_hook(stop)
    try:
        with torch.no_grad():
            lm.model(
                input_ids=torch.tensor([list(ids[exact:])], device=lm.device),
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
    except _Stop:
        pass
    finally:
        handle.remove()
    fresh: Any = cache.layers[SELECT_LAYER]
    true_k, true_v = fresh.keys[..., -later:, :], fresh.values[..., -later:, :]
    cached_k = keys[SELECT_LAYER][..., exact:, :]
    cached_v = values[SELECT_LAYER][..., exact:, :]
    deviation = ((true_k - cached_k) ** 2).sum(dim=(0, 1, 3)) + ((true_v - cached_v) ** 2).sum(
        dim=(0, 1, 3)
    )
    top = torch.topk(deviation, budget).indices
    return torch.sort(top).values + exact


def _recompute(
    lm: LoadedModel,
    ids: Sequence[int],
    keys: list[torch.Tensor],
    values: list[torch.Tensor],
    chosen: torch.Tensor,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Keys and values with the ``chosen`` positions' states recomputed in every layer.

    The chosen tokens run as one batch at their own positions; each attends to
    the kept cached tokens before it and to the chosen tokens up to itself.
    The result holds the kept tokens first, then the recomputed ones.
    """
    device = lm.device
    keep_mask = torch.ones(len(ids), dtype=torch.bool, device=device)
    keep_mask[chosen] = False
    kept = torch.nonzero(keep_mask).squeeze(-1)
    base_k = [k.index_select(-2, kept) for k in keys]
    base_v = [v.index_select(-2, kept) for v in values]
    cache = cache_from_tensors(lm, base_k, base_v, shared=False)
    rows = chosen.unsqueeze(-1)
    mask = torch.cat([kept.unsqueeze(0) < rows, chosen.unsqueeze(0) <= rows], dim=-1)
    token_ids = torch.tensor(ids, device=device).index_select(0, chosen)
    with torch.no_grad():
        out = lm.model(
            input_ids=token_ids.unsqueeze(0),
            position_ids=chosen.unsqueeze(0),
            attention_mask=mask[None, None],
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
    layers: list[Any] = list(out.cache.layers)
    return [layer.keys for layer in layers], [layer.values for layer in layers]
