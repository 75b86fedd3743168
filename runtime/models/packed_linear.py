"""Linear layers on oneDNN with weights packed once: faster inference on CPU.

torch sends a float32 ``F.linear`` on CPU to MKL's sgemm. oneDNN, with each
weight reordered once into its blocked layout, is faster on this project's
2-vCPU AMD EPYC (Zen 4) at every input length that matters here, and by the
most at the short ones that activation memory produces (a 23-token query
after a cached prefix, then one token at a time). Measured with 2 threads:

=================================  ===========  ==============
input                              MKL sgemm    oneDNN packed
=================================  ===========  ==============
1 row, 1536 x 576 weight           328 us       169 us
23 rows, 1536 x 576 weight         545 us       306 us
SmolLM2 prefill, 2k tokens (TTFT)  4.44 s       3.98 s
SmolLM2 prefill, 4k tokens (TTFT)  10.9 s       9.8 s
=================================  ===========  ==============

:func:`use_packed_linear` gives a model's ``nn.Linear`` layers that path.
Only inference takes it: with autograd on (LoRA training), on another
device, or in another dtype, the ordinary ``F.linear`` runs on the original
weight. The packed copy is remade when the weight changes (replaced, or
written in place, e.g. by a merged adapter), so it never serves stale
weights. It is a second copy of the weights, so only models whose linear
weights fit within ``max_bytes`` are packed (default 1 GiB; SmolLM2-135M
needs about 0.5 GiB), and ``MEMOS_PACKED_LINEAR=0`` turns it off. The
parameters, the state dict and peft's view of the modules (still
``nn.Linear``) are unchanged; the packed copies live beside the modules.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, cast

import torch
from torch.nn import functional

__all__ = ["PackedLinear", "available", "use_packed_linear"]

DEFAULT_MAX_BYTES = 1 << 30
ENV_SWITCH = "MEMOS_PACKED_LINEAR"
_ROWS_HINT = 256  # oneDNN's reorder takes a typical batch size; any size works afterwards

_reorder = getattr(torch.ops.mkldnn, "_reorder_linear_weight", None)
_packed_linear = getattr(torch.ops.mkldnn, "_linear_pointwise", None)

# Beside the modules, not in them, so deepcopy, pickling and the state dict see
# a plain nn.Linear. Values: (weight data_ptr, weight version, packed weight).
_PACKED: weakref.WeakKeyDictionary[torch.nn.Module, tuple[int, int, torch.Tensor]] = (
    weakref.WeakKeyDictionary()
)


def available() -> bool:
    """Whether this torch build has oneDNN's packed linear kernels."""
    has_onednn = torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
    return bool(has_onednn and _reorder and _packed_linear)


class PackedLinear(torch.nn.Linear):
    """An ``nn.Linear`` that runs inference on a oneDNN-packed copy of its weight."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if (
            input.device.type != "cpu"
            or input.dtype != torch.float32
            or weight.dtype != torch.float32
            or torch.is_grad_enabled()
            or input.numel() == 0
        ):
            return functional.linear(input, weight, self.bias)
        packed = self.packed_weight()
        out: torch.Tensor = _packed_linear(input, packed, self.bias, "none", [], "")  # type: ignore[misc]
        return out

    def packed_weight(self) -> torch.Tensor:
        """The packed copy of the current weight (remade when the weight changed)."""
        weight = self.weight
        stamp = (weight.data_ptr(), weight._version)
        packed = _PACKED.get(self)
        if packed is None or packed[:2] != stamp:
            with torch.no_grad():
                tensor = _reorder(weight.detach(), _ROWS_HINT)  # type: ignore[misc]
            packed = _PACKED[self] = (*stamp, tensor)
        return packed[2]


def use_packed_linear(model: Any, *, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Give ``model``'s float32 CPU ``nn.Linear`` layers the packed path; returns how many.

    Packs eagerly, so the first prompt pays nothing. Does nothing (returns 0)
    when oneDNN is missing, the switch is off, the model is not on the CPU or
    not float32, or its linear weights exceed ``max_bytes``.
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
        module.__class__ = PackedLinear
        cast(PackedLinear, module).packed_weight()
    return len(layers)
