"""Linear layers with a oneDNN-packed weight (runtime.models.packed_linear)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from runtime.models import packed_linear
from runtime.models.packed_linear import PackedLinear, use_packed_linear


def _model(seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(32, 48), torch.nn.ReLU(), torch.nn.Linear(48, 8, bias=False)
    ).to(dtype)


def test_this_torch_build_has_the_kernels() -> None:
    assert packed_linear.available()


def test_inference_matches_the_plain_layers() -> None:
    plain, fast = _model(), _model()
    assert use_packed_linear(fast) == 2
    assert all(isinstance(m, torch.nn.Linear) for m in (fast[0], fast[2]))
    for rows in (1, 7, 300, 2100):
        x = torch.randn(1, rows, 32)
        with torch.no_grad():
            torch.testing.assert_close(fast(x), plain(x), atol=1e-5, rtol=1e-4)


def test_training_takes_the_original_path() -> None:
    plain, fast = _model(), _model()
    use_packed_linear(fast)
    short = torch.randn(4, 32)
    assert torch.equal(fast(short), plain(short))  # autograd on: plain F.linear
    fast(short).sum().backward()
    plain(short).sum().backward()
    assert fast[0].weight.grad is not None
    torch.testing.assert_close(fast[0].weight.grad, plain[0].weight.grad)


def test_a_changed_weight_is_repacked() -> None:
    fast = _model()
    use_packed_linear(fast)
    layer = fast[0]
    assert isinstance(layer, PackedLinear)
    packed = layer.packed_weight()
    assert layer.packed_weight() is packed  # packed once, then reused
    x = torch.randn(3, 32)
    with torch.no_grad():
        layer.weight.mul_(2.0)  # in place, as a merged adapter would
        expected = torch.nn.functional.linear(x, layer.weight, layer.bias)
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-4)
        layer.weight = torch.nn.Parameter(torch.zeros_like(layer.weight))  # replaced
        torch.testing.assert_close(layer(x), layer.bias.expand(3, -1))
    assert layer.packed_weight() is not packed


def test_the_module_looks_unchanged_from_outside() -> None:
    plain, fast = _model(), _model()
    use_packed_linear(fast)
    assert fast.state_dict().keys() == plain.state_dict().keys()
    assert all(
        torch.equal(a, b)
        for a, b in zip(fast.state_dict().values(), plain.state_dict().values(), strict=True)
    )
    clone = copy.deepcopy(fast)
    x = torch.randn(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(clone(x), fast(x))


@pytest.mark.parametrize(
    ("setup", "kwargs"),
    [
        (lambda mp: mp.setenv(packed_linear.ENV_SWITCH, "0"), {}),
        (lambda mp: None, {"max_bytes": 1024}),
    ],
)
def test_switched_off_or_too_large_models_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, setup: Any, kwargs: dict[str, Any]
) -> None:
    setup(monkeypatch)
    model = _model()
    assert use_packed_linear(model, **kwargs) == 0
    assert type(model[0]) is torch.nn.Linear


def test_other_dtypes_are_left_alone() -> None:
    model = _model(dtype=torch.bfloat16)
    assert use_packed_linear(model) == 0
    assert type(model[0]) is torch.nn.Linear
