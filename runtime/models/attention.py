"""Attention over an injected KV cache without copying it.

Two costs dominated the time to first token once a 2k-token cache was
injected into SmolLM2 on a 2-core CPU, and neither was arithmetic:

* **Grouped-query heads.** 9 query heads share 3 key/value heads. With a
  causal mask to apply, transformers' SDPA path cannot use ``enable_gqa`` and
  copies every layer's keys and values three times (``repeat_kv``): about
  290 MB written per query. :func:`grouped_sdpa_attention` instead folds the
  query heads of a group into the query-length axis, ``[b, kv_heads * g, q,
  d]`` viewed as ``[b, kv_heads, g * q, d]`` (transformers does the same for a
  single query token), repeats the mask along that axis, and unfolds the
  output. Each row is the same softmax over the same keys: exact, not an
  approximation.
* **Appending to the cache.** A ``DynamicCache`` appends the query's keys and
  values with ``torch.cat``, which writes the whole 95 MB prefix into freshly
  allocated (page-faulted) memory before attending. A
  :class:`SharedPrefixLayer` never does: it keeps the loaded prefix as it is
  (memory-mapped, read-only) and only the tokens after it in a small growing
  tensor. Attention then runs in two parts, over the prefix and over the new
  tokens, each returning its log-sum-exp, and the parts are merged exactly
  (softmax over the union = the parts reweighted by ``exp(lse_i - lse)``);
  the "cascade" or shared-prefix attention of serving engines. The same
  mapped prefix can serve any number of prompts at once.

The layer hands its prefix to the attention function through the per-call
keyword arguments that transformers passes to both ``cache.update`` and the
attention function (``kwargs=`` in the first, ``**kwargs`` in the second).
That is why a :class:`SharedPrefixLayer` is only used when the model runs
:data:`ATTENTION_NAME`: :func:`use_grouped_sdpa` switches a model from
``"sdpa"`` to it (the name is not part of the model fingerprint), and
:func:`shared_prefix_supported` says whether a model can take such a cache.
Every other case (no mask, one query token, no key/value sharing, a
per-head mask, a position bias) goes unchanged to transformers' SDPA.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from transformers import AttentionInterface
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

__all__ = [
    "ATTENTION_NAME",
    "SharedPrefixLayer",
    "grouped_sdpa_attention",
    "shared_prefix_supported",
    "use_grouped_sdpa",
]

ATTENTION_NAME = "memos_sdpa"
PREFIX_KWARG = "memos_shared_prefix"

_flash_cpu = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


class LazyPrefix(Protocol):
    """A prefix tensor made only when attention reads it (an int8 cache, see .kv_codec)."""

    @property
    def shape(self) -> torch.Size: ...
    @property
    def dtype(self) -> torch.dtype: ...
    @property
    def device(self) -> torch.device: ...
    def dense(self, slot: str) -> torch.Tensor: ...


def _dense(prefix: torch.Tensor | LazyPrefix, slot: str) -> torch.Tensor:
    return prefix if isinstance(prefix, torch.Tensor) else prefix.dense(slot)


class SharedPrefixLayer(DynamicLayer):  # type: ignore[no-untyped-call]
    """One layer's cache: a read-only prefix plus the tokens appended after it.

    ``keys`` / ``values`` hold only the appended tokens; the prefix tensors are
    never written, copied or concatenated. A :class:`LazyPrefix` is made dense
    at each attention call, into a buffer the next layer reuses.
    """

    def __init__(
        self, prefix_keys: torch.Tensor | LazyPrefix, prefix_values: torch.Tensor | LazyPrefix
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.prefix_keys, self.prefix_values = prefix_keys, prefix_values
        self.device = prefix_keys.device
        empty = (*prefix_keys.shape[:2], 0, prefix_keys.shape[-1])
        self.keys = torch.empty(empty, dtype=prefix_keys.dtype, device=self.device)
        self.values = torch.empty(
            (*empty[:3], prefix_values.shape[-1]), dtype=prefix_values.dtype, device=self.device
        )
        self.is_initialized = True

    @property
    def prefix_length(self) -> int:
        return int(self.prefix_keys.shape[-2])

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """Never needed: the layer is initialized with its prefix."""

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        attention_kwargs = kwargs.get("kwargs")
        if not isinstance(attention_kwargs, dict):
            raise RuntimeError(
                "a shared-prefix KV cache needs a model that passes its attention keyword "
                f"arguments to the cache and runs {ATTENTION_NAME!r} attention"
            )
        keys, values = self._appended()
        self.keys = keys = torch.cat([keys, key_states], dim=-2)
        self.values = values = torch.cat([values, value_states], dim=-2)
        attention_kwargs[PREFIX_KWARG] = (
            _dense(self.prefix_keys, "key"),
            _dense(self.prefix_values, "value"),
        )
        return keys, values

    def _appended(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The tokens after the prefix (set in ``__init__``, never None)."""
        keys, values = self.keys, self.values
        if keys is None or values is None:
            raise RuntimeError("shared-prefix cache layer lost its tensors")
        return keys, values

    def get_seq_length(self) -> int:
        return self.prefix_length + int(self._appended()[0].shape[-2])

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def crop(self, tokens_to_remove: int) -> None:
        """Drop appended tokens (``crop(-n)``); the shared prefix itself cannot be cropped."""
        if tokens_to_remove > 0:
            tokens_to_remove -= self.get_seq_length()
        drop = abs(tokens_to_remove)
        keys, values = self._appended()
        if drop > keys.shape[-2]:
            raise ValueError("cannot crop into the shared prefix of a KV cache")
        if drop:
            self.keys, self.values = keys[..., :-drop, :], values[..., :-drop, :]

    def reset(self) -> None:
        keys, values = self._appended()
        self.keys, self.values = keys[..., :0, :], values[..., :0, :]

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("a shared-prefix KV cache serves one sequence")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        raise NotImplementedError("a shared-prefix KV cache serves one sequence")

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("a shared-prefix KV cache serves one sequence")


_FLASH_MIN_KEYS = 128  # below this, a few plain matmuls beat the kernel's setup


def _attend(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, log-sum-exp) of attention; ``mask`` is boolean (True = attend) or None."""
    if _flash_cpu is not None and query.device.type == "cpu" and key.shape[-2] >= _FLASH_MIN_KEYS:
        additive = None
        if mask is not None:
            zero = torch.zeros((), dtype=query.dtype)
            additive = torch.where(mask, zero, torch.finfo(query.dtype).min)
        out, lse = _flash_cpu(query, key, value, 0.0, False, attn_mask=additive, scale=scale)
        return out, lse
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    return torch.matmul(torch.exp(scores - lse.unsqueeze(-1)), value), lse


# Every layer of one forward pass gets the same mask object, so its split is
# worked out once (the last one is kept; a different mask simply recomputes).
_last_split: list[tuple[torch.Tensor, int, int, tuple[torch.Tensor | None, torch.Tensor]]] = []


def _split_mask(
    mask: torch.Tensor, prefix_len: int, groups: int
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(prefix part or None when all visible, appended part), folded for ``groups``."""
    last = _last_split[0] if _last_split else None
    if last is not None and last[0] is mask and last[1:3] == (prefix_len, groups):
        return last[3]
    boolean = mask if mask.dtype == torch.bool else mask > torch.finfo(mask.dtype).min / 2
    prefix = boolean[..., :prefix_len]
    split = (
        None if bool(prefix.all()) else prefix.repeat(1, 1, groups, 1),
        boolean[..., prefix_len:].repeat(1, 1, groups, 1),
    )
    _last_split[:] = [(mask, prefix_len, groups, split)]
    return split


def _shared_prefix_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    prefix: tuple[torch.Tensor, torch.Tensor],
    groups: int,
    scale: float,
) -> torch.Tensor:
    """Attention of ``query`` over ``prefix`` followed by ``key``/``value``, merged exactly."""
    prefix_keys, prefix_values = prefix
    batch, heads, q_len, dim = query.shape
    kv_heads, prefix_len = prefix_keys.shape[1], prefix_keys.shape[-2]
    folded = query.reshape(batch, kv_heads, groups * q_len, dim)
    if mask is not None:
        prefix_mask, new_mask = _split_mask(mask, prefix_len, groups)
    else:  # no mask: causal over the appended tokens, the whole prefix visible
        new_len = key.shape[-2]
        rows = torch.arange(q_len, device=query.device).unsqueeze(-1) + (new_len - q_len)
        prefix_mask = None
        new_mask = (rows >= torch.arange(new_len, device=query.device)).repeat(groups, 1)
    out_prefix, lse_prefix = _attend(folded, prefix_keys, prefix_values, prefix_mask, scale)
    out_new, lse_new = _attend(folded, key, value, new_mask, scale)
    # softmax over both parts = each part's output weighted by its share of the total
    # mass, exp(lse_part - logaddexp(lse_prefix, lse_new)): sigmoid of the difference.
    share = torch.sigmoid(lse_prefix - lse_new).unsqueeze(-1)
    out = torch.lerp(out_new, out_prefix.to(out_new.dtype), share.to(out_new.dtype))
    return out.to(query.dtype).reshape(batch, heads, q_len, value.shape[-1])


def grouped_sdpa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA with grouped query heads folded onto their key/value head, and shared prefixes."""
    groups = int(getattr(module, "num_key_value_groups", 1))
    batch, heads, q_len, dim = query.shape
    prefix = kwargs.pop(PREFIX_KWARG, None)
    unusual = (
        kwargs.get("position_bias") is not None
        or kwargs.get("softcap") is not None
        or kwargs.get("output_attentions", False)
        or dropout != 0.0
        or key.shape[1] * groups != heads
        or (
            attention_mask is not None
            and (attention_mask.ndim != 4 or attention_mask.shape[1] != 1)
        )
    )
    if prefix is not None:
        if unusual:
            raise RuntimeError("this attention call cannot use a shared-prefix KV cache")
        scale = scaling if scaling is not None else dim**-0.5
        out = _shared_prefix_attention(query, key, value, attention_mask, prefix, groups, scale)
        return out.transpose(1, 2).contiguous(), None
    if unusual or groups == 1 or q_len == 1 or attention_mask is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    # Head h = j * groups + r reads key/value head j (repeat_kv's order), so the
    # row of query position i for member r lands at r * q_len + i.
    folded = query.reshape(batch, key.shape[1], groups * q_len, dim)
    mask = attention_mask.repeat(1, 1, groups, 1)
    out = torch.nn.functional.scaled_dot_product_attention(
        folded, key, value, attn_mask=mask, scale=scaling
    )
    out = out.reshape(batch, heads, q_len, value.shape[-1])
    return out.transpose(1, 2).contiguous(), None


def use_grouped_sdpa(model: Any) -> bool:
    """Switch ``model`` from ``"sdpa"`` to :func:`grouped_sdpa_attention`; True when it runs it."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) == "sdpa":
        AttentionInterface.register(ATTENTION_NAME, grouped_sdpa_attention)
        AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
        model.set_attn_implementation(ATTENTION_NAME)
    return shared_prefix_supported(model)


def shared_prefix_supported(model: Any) -> bool:
    """Whether ``model`` runs :data:`ATTENTION_NAME` and so takes SharedPrefixLayer caches."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) == ATTENTION_NAME
