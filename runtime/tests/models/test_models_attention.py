"""Grouped-query and shared-prefix attention (runtime.models.attention) against the reference."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers.integrations.sdpa_attention import repeat_kv

from runtime.models.attention import (
    ATTENTION_NAME,
    PREFIX_KWARG,
    SharedPrefixLayer,
    grouped_sdpa_attention,
    shared_prefix_supported,
    use_grouped_sdpa,
)
from runtime.models.causal_lm import LoadedModel

GROUPS, KV_HEADS, DIM = 3, 2, 16


class _Attention(torch.nn.Module):
    num_key_value_groups = GROUPS
    is_causal = True


def _qkv(q_len: int, kv_len: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(1, KV_HEADS * GROUPS, q_len, DIM, generator=gen)
    key = torch.randn(1, KV_HEADS, kv_len, DIM, generator=gen)
    value = torch.randn(1, KV_HEADS, kv_len, DIM, generator=gen)
    return query, key, value


def _causal_mask(q_len: int, kv_len: int) -> torch.Tensor:
    """The last ``q_len`` of ``kv_len`` positions, each seeing itself and everything before."""
    rows = torch.arange(q_len).unsqueeze(-1) + (kv_len - q_len)
    return (rows >= torch.arange(kv_len)).view(1, 1, q_len, kv_len)


def _reference(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    out = torch.nn.functional.scaled_dot_product_attention(
        query, repeat_kv(key, GROUPS), repeat_kv(value, GROUPS), attn_mask=mask
    )
    return out.transpose(1, 2)


@pytest.mark.parametrize(("q_len", "kv_len"), [(5, 12), (2, 40), (30, 30)])
def test_folded_grouped_query_attention_equals_repeated_heads(q_len: int, kv_len: int) -> None:
    query, key, value = _qkv(q_len, kv_len)
    mask = _causal_mask(q_len, kv_len)
    out, weights = grouped_sdpa_attention(_Attention(), query, key, value, mask)
    assert weights is None
    torch.testing.assert_close(out, _reference(query, key, value, mask), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("prefix_len", "new_len", "q_len"),
    [(10, 5, 5), (50, 4, 4), (20, 7, 1), (3, 12, 12), (64, 1, 1), (200, 6, 6), (300, 140, 140)],
)
@pytest.mark.parametrize("with_mask", [True, False])
def test_shared_prefix_attention_equals_attention_over_the_concatenation(
    prefix_len: int, new_len: int, q_len: int, with_mask: bool
) -> None:
    query, key, value = _qkv(q_len, prefix_len + new_len, seed=prefix_len + q_len)
    mask = _causal_mask(q_len, prefix_len + new_len)
    prefix = (key[..., :prefix_len, :], value[..., :prefix_len, :])
    out, _ = grouped_sdpa_attention(
        _Attention(),
        query,
        key[..., prefix_len:, :],
        value[..., prefix_len:, :],
        mask if with_mask else None,
        **{PREFIX_KWARG: prefix},
    )
    torch.testing.assert_close(out, _reference(query, key, value, mask), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("prefix_len", [16, 160])  # the math and the flash kernels
def test_shared_prefix_attention_honours_a_mask_over_the_prefix(prefix_len: int) -> None:
    q_len = new_len = 5
    query, key, value = _qkv(q_len, prefix_len + new_len, seed=7)
    mask = _causal_mask(q_len, prefix_len + new_len).clone()
    mask[..., 3:9] = False  # e.g. padding inside the prefix
    additive = torch.where(mask, 0.0, torch.finfo(torch.float32).min)
    prefix = (key[..., :prefix_len, :], value[..., :prefix_len, :])
    for given in (mask, additive):
        out, _ = grouped_sdpa_attention(
            _Attention(),
            query,
            key[..., prefix_len:, :],
            value[..., prefix_len:, :],
            given,
            **{PREFIX_KWARG: prefix},
        )
        torch.testing.assert_close(out, _reference(query, key, value, mask), atol=1e-5, rtol=1e-5)


def test_a_shared_prefix_with_an_unsupported_attention_call_is_refused() -> None:
    query, key, value = _qkv(4, 4)
    with pytest.raises(RuntimeError, match="cannot use a shared-prefix"):
        grouped_sdpa_attention(
            _Attention(), query, key, value, None, dropout=0.1, **{PREFIX_KWARG: (key, value)}
        )


def test_shared_prefix_layer_keeps_the_prefix_apart() -> None:
    _, key, value = _qkv(1, 10)
    layer = SharedPrefixLayer(key, value)
    assert layer.get_seq_length() == 10 and layer.prefix_length == 10
    assert layer.get_mask_sizes(3) == (13, 0)
    attention_kwargs: dict[str, Any] = {}
    _, new_key, new_value = _qkv(1, 3, seed=1)
    keys, values = layer.update(new_key, new_value, kwargs=attention_kwargs)
    assert torch.equal(keys, new_key) and torch.equal(values, new_value)
    assert attention_kwargs[PREFIX_KWARG][0] is key
    assert layer.get_seq_length() == 13
    layer.crop(-2)
    assert layer.get_seq_length() == 11
    layer.crop(11)  # legacy form: the final length
    assert layer.get_seq_length() == 11
    with pytest.raises(ValueError, match="shared prefix"):
        layer.crop(-2)
    layer.reset()
    assert layer.get_seq_length() == 10
    with pytest.raises(NotImplementedError):
        layer.batch_repeat_interleave(2)


def test_shared_prefix_layer_needs_the_attention_keyword_arguments() -> None:
    _, key, value = _qkv(1, 4)
    with pytest.raises(RuntimeError, match=ATTENTION_NAME):
        SharedPrefixLayer(key, value).update(key, value)


def test_models_on_other_attention_implementations_are_left_alone(
    make_lm: Any, tiny_lm: LoadedModel
) -> None:
    assert shared_prefix_supported(tiny_lm.model)
    eager = make_lm(seed=3, attn_implementation="eager")
    assert eager.config._attn_implementation == "eager"
    assert not use_grouped_sdpa(eager.model)
    assert not shared_prefix_supported(eager.model)
