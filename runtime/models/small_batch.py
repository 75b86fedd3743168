"""Linear layers that are fast for a few rows: a query after a KV cache, and decoding.

torch sends a float32 ``F.linear`` on CPU to MKL's sgemm. For the short
inputs that activation memory produces (a 23-token query after a cached
prefix, then one token at a time) that reaches only about half of what
oneDNN does with the weight reordered once into its blocked layout. Measured
on this project's 2-vCPU AMD EPYC (Zen 4), 1536 x 576 weight, 2 threads:

======  ===========  ==============
rows    MKL sgemm    oneDNN packed
======  ===========  ==============
1       328 us       169 us
23      545 us       306 us
300     3.5 ms       2.9 ms
2096    19.7 ms      25.6 ms
======  ===========  ==============

So each layer picks per call: at most :data:`SMALL_ROWS` rows go to oneDNN
with the packed copy, longer inputs (a plaintext prefill) to the ordinary
``F.linear`` on the original weight; each path gets the faster kernel.

Only inference takes the packed path: with autograd on (LoRA training), on
another device, or in another dtype the original path runs. The packed copy
is remade when the weight changes (replaced, or written in place, e.g. by a
merged adapter), so it can never serve stale weights. It costs a second copy
of the weights, so only models whose linear weights fit within ``max_bytes``
are packed (default 1 GiB; SmolLM2-135M needs about 0.5 GiB), and
``MEMOS_SMALL_BATCH_LINEAR=0`` turns the whole thing off. Parameters, the
state dict and peft's view of the modules (still ``nn.Linear``) are unchanged.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, cast

import torch
from torch.nn import functional

__all__ = ["SMALL_ROWS", "SmallBatchLinear", "use_small_batch_linear"]

SMALL_ROWS = 256
DEFAULT_MAX_BYTES = 1 << 30
ENV_SWITCH = "MEMOS_SMALL_BATCH_LINEAR"

_reorder = getattr(torch.ops.mkldnn, "_reorder_linear_weight", None)
_packed_linear = getattr(torch.ops.mkldnn, "_linear_pointwise", None)


def available() -> bool:
    """Whether this torch build has oneDNN's packed linear kernels."""
    has_onednn = torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
    return bool(has_onednn and _reorder and _packed_linear)


# Packed copies live beside the modules, not in them, so deepcopy, pickling and
# the state dict see a plain nn.Linear. (data_ptr, version, packed weight)
_PACKED: weakref.WeakKeyDictionary[torch.nn.Module, tuple[int, int, torch.Tensor]] = (
    weakref.WeakKeyDictionary()
)


class SmallBatchLinear(torch.nn.Linear):
    """An ``nn.Linear`` that also uses a oneDNN-packed copy of its weight for short inputs."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if (
            input.device.type != "cpu"
            or input.dtype != torch.float32
            or weight.dtype != torch.float32
            or torch.is_grad_enabled()
            or input.numel() > SMALL_ROWS * input.shape[-1]
            or input.numel() == 0
        ):
            return functional.linear(input, weight, self.bias)
        out: torch.Tensor = _packed_linear(input, self.packed_weight(), self.bias, "none", [], "")  # type: ignore[misc]
        return out

    def packed_weight(self) -> torch.Tensor:
        """The packed copy of the current weight (remade when the weight changed)."""
        weight = self.weight
        stamp = (weight.data_ptr(), weight._version)
        packed = _PACKED.get(self)
        if packed is None or packed[:2] != stamp:
            with torch.no_grad():
                tensor = _reorder(weight.detach(), SMALL_ROWS)  # type: ignore[misc]
            packed = _PACKED[self] = (*stamp, tensor)
        return packed[2]


def use_small_batch_linear(model: Any, *, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Give ``model``'s float32 CPU ``nn.Linear`` layers the packed path; returns how many.

    Packs eagerly, so the first query pays nothing. Does nothing (returns 0)
    when oneDNN is missing, the switch is off, the model is elsewhere than
    the CPU or not float32, or its linear weights exceed ``max_bytes``.
    """
    if os.environ.get(ENV_SWITCH, "1").strip() in ("0", "false", "no", "off") or not available():
        return 0
    layers = [m for m in model.modules() if type(m) is torch.nn.Linear]
    if not layers or any(
        m.weight.device.type != "cpu" or m.weight.dtype != torch.float32 for m in layers
    ):
        return 0
    unique = {m.weight.data_ptr(): m.weight for m in layers}
    if sum(w.numel() * w.element_size() for w in unique.values()) > max_bytes:
        return 0
    for module in layers:
        module.__class__ = SmallBatchLinear
        cast(SmallBatchLinear, module).packed_weight()
    return len(layers)
