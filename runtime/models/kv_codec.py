"""KV-cache encodings: how keys and values are stored in a payload, and back (SPEC 4.2.1).

* ``raw``: the model's dtype (float32 for SmolLM2: 46 KB per token).
* ``fp16``: IEEE half precision, exactly half the bytes of float32 keys and values.
* ``int8``: symmetric 8-bit integers with one float16 scale per (layer, head, token)
  row of keys and of values (``mip.kv.scales = per-token``): 11.6 KB per token for
  SmolLM2, ~4x fewer than float32. Per-token rather than per-channel scales, so a
  token whose keys carry large values (the attention sink at BOS) does not coarsen
  the resolution of every other token in its channels. Measured against KIVI's
  per-channel key scales (SmolLM2, 3 composed 1k packs, the logits of 15 of
  bench/kv_compose.py's queries, 350 positions): per-channel keys cut the keys'
  relative squared error 5x (2.5e-5 vs 1.2e-4) but doubled the KL divergence from
  float32's next-token distribution (1.5e-4 vs 6.3e-5; 8.0e-5 with the BOS token
  kept in fp16); the first-16-greedy-tokens agreement of the two was a near tie
  (41 and 44 of 45 on two fact sets for per-token, 44 and 42 for per-channel keys).

Quantization error, stated and tested: the scale of a row is ``absmax / 127``
rounded *up* to the next float16, so ``|x / scale| <= 127`` and every element
decodes within ``scale / 2`` of its original value (``int8_error_bound``).

Tensors are safetensors only (never pickle). ``raw`` caches are used memory-mapped;
an ``int8`` cache is loaded as :class:`Int8Rows` (the mapped int8 values and
scales) and dequantized layer by layer when attention reads it, into one
reused buffer per thread (:meth:`Int8Rows.dense`): loading builds no float
copy of the cache (185 MB for 4k tokens of SmolLM2), and each layer's floats
are still in the CPU cache when attention reads them. A layer's keys and
values lie side by side in the payload (safetensors orders tensors by name),
and so do their scales: they are viewed and dequantized as one
(:class:`Int8Layer`), two passes per layer instead of four, because at ~1k
tokens a pass's fixed cost (dispatch, waking the intra-op threads) is as
large as its work. Code that needs the
float tensors themselves (composition of several caches) gets memoized
copies (:class:`DequantizedLayers`). Not here: the header checks
(:mod:`protocol.payloads` ``kv_expected_tensors``), building (:mod:`.kv`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import torch

from protocol.payloads import KV_ENCODINGS, kv_scale_name, kv_tensor_name

__all__ = [
    "KV_ENCODINGS",
    "DequantizedLayers",
    "Int8Layer",
    "Int8Rows",
    "MappedTensors",
    "decode_int8_layer",
    "decode_layer",
    "encode_layer",
    "int8_error_bound",
    "quantize_int8",
    "transcode_kv",
]

_INT8_MAX = 127.0


def quantize_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values, float16 per-row scales) of ``x`` ``[..., d]``; rows are the last axis."""
    absmax = x.detach().float().abs().amax(dim=-1, keepdim=True)
    scale = (absmax / _INT8_MAX).clamp_min(torch.finfo(torch.float16).tiny)
    scale16 = scale.to(torch.float16)
    # Round the scale up, so that no value quantizes beyond +-127.
    low = scale16.float() < scale
    scale16 = torch.where(low, torch.nextafter(scale16, torch.full_like(scale16, 1e4)), scale16)
    q = torch.round(x.float() / scale16.float()).clamp_(-_INT8_MAX, _INT8_MAX).to(torch.int8)
    return q, scale16


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (q.to(torch.float32) * scale.to(torch.float32)).to(dtype)


_scratch = threading.local()  # per thread: (slot, shape, dtype, device) -> [buffer, holder]


def _buffer(shape: torch.Size, dtype: torch.dtype, device: torch.device, slot: str) -> Any:
    """This thread's reused float buffer for ``slot``, with what it holds: [tensor, holder]."""
    buffers: dict[tuple[Any, ...], list[Any]] = _scratch.__dict__.setdefault("bufs", {})
    key = (slot, tuple(shape), dtype, device)
    got = buffers.get(key)
    if got is None:
        got = buffers[key] = [torch.empty(shape, dtype=dtype, device=device), None]
    return got


def _dequantize_into(out: torch.Tensor, q: torch.Tensor, scale32: torch.Tensor) -> torch.Tensor:
    # Two vectorized passes over a buffer that stays in the CPU cache: int8 -> dtype
    # (exact: |q| <= 127), then the row scales, multiplied in float32 and rounded once
    # to ``dtype``, as dequantize(). One mixed-dtype ``torch.mul(q, scale, out=)`` goes
    # through a casting loop about 3x slower (625 vs 170 us for a 4k-token layer).
    return out.copy_(q).mul_(scale32)


@dataclass(frozen=True, eq=False)
class Int8Layer:
    """A layer's keys and values side by side, ``[2, ...]`` int8 with ``[2, ..., 1]`` float16
    scales (the payload's own adjacent tensors, viewed as one): dequantized together."""

    q: torch.Tensor
    scale: torch.Tensor
    dtype: torch.dtype

    def dense(self) -> torch.Tensor:
        """Keys and values as floats in this thread's reused buffer: made when the buffer
        does not hold this layer already (the values' read right after the keys' is free);
        valid until another layer of this shape is made dense in this thread."""
        held = _buffer(self.q.shape, self.dtype, self.q.device, "layer")
        out: torch.Tensor = held[0]
        if held[1] is None or held[1]() is not self:
            held[1] = None  # while being overwritten, the buffer holds no layer
            _dequantize_into(out, self.q, _scale32(self))
            held[1] = weakref.ref(self)
        return out


def _scale32(rows: Int8Layer | Int8Rows) -> torch.Tensor:
    """The scales as float32 (made once; 1/64 of the values' size)."""
    made: torch.Tensor | None = rows.__dict__.get("_scale_f32")
    if made is None:
        made = rows.scale.to(torch.float32)
        object.__setattr__(rows, "_scale_f32", made)
    return made


@dataclass(frozen=True, eq=False)
class Int8Rows:
    """One int8 tensor with its per-row float16 scales, dequantized when it is read.

    ``layer``: the :class:`Int8Layer` whose half ``half`` (0 keys, 1 values) this
    is, when the payload stores the layer's keys and values side by side."""

    q: torch.Tensor
    scale: torch.Tensor
    dtype: torch.dtype
    layer: Int8Layer | None = field(default=None, repr=False)
    half: int = 0

    @property
    def shape(self) -> torch.Size:
        return self.q.shape

    @property
    def device(self) -> torch.device:
        return self.q.device

    def dequantize(self) -> torch.Tensor:
        """A new float tensor in ``dtype``."""
        return dequantize_int8(self.q, self.scale, self.dtype)

    def dense(self, slot: str) -> torch.Tensor:
        """The float values in this thread's reused buffer for ``slot`` (or the layer's, see
        :meth:`Int8Layer.dense`): valid until this thread makes another layer of this shape
        dense (one attention call reads it, then the next layer overwrites it). Equal to
        :meth:`dequantize`."""
        if self.layer is not None:
            return self.layer.dense()[self.half]
        out: torch.Tensor = _buffer(self.q.shape, self.dtype, self.q.device, slot)[0]
        return _dequantize_into(out, self.q, _scale32(self))


@dataclass(frozen=True, eq=False)
class DequantizedLayers(Sequence[torch.Tensor]):
    """Per-layer float tensors of :class:`Int8Rows`, each made on first access and kept."""

    rows: tuple[Int8Rows, ...]
    _made: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> torch.Tensor: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[torch.Tensor, ...]: ...
    def __getitem__(self, index: int | slice) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(len(self.rows))[index])
        index = range(len(self.rows))[index]
        if index not in self._made:
            self._made[index] = self.rows[index].dequantize()
        return self._made[index]

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self[i] for i in range(len(self.rows)))

    def __add__(self, other: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return (*self, *other)


_TORCH_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                 "I8": torch.int8, "I64": torch.int64}  # fmt: skip


class MappedTensors:
    """A checked payload's tensors as views of one private read-only-file mapping.

    What ``safe_open(...).get_tensor`` gives (zero-copy CPU tensors over the
    file's pages), without its per-tensor cost: opening and reading the 121
    tensors of an int8 1k-token SmolLM2 cache took 6.2 ms that way against 0.8 ms
    here (float32, 61 tensors: 2.1 vs 0.6 ms; medians of 300, load average 3.3);
    int8 has twice as many tensors (the scales), so it paid twice. ``tensors``
    and ``data_offset`` come from the header already parsed and checked
    (:mod:`.kv_read`). The
    mapping is copy-on-write (``ACCESS_COPY``): a write to a tensor would never
    reach the file. A tensor whose offset does not suit its dtype is copied.
    """

    def __init__(self, path: Any, tensors: Any, data_offset: int) -> None:
        import mmap

        with open(path, "rb") as fh:
            mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
        self._bytes = torch.frombuffer(mapping, dtype=torch.uint8)
        self._tensors, self._offset = tensors, data_offset

    def get_tensor(self, name: str) -> torch.Tensor:
        info = self._tensors[name]
        dtype = _TORCH_DTYPES[info.dtype]
        raw = self._bytes[self._offset + info.start : self._offset + info.end]
        if (self._offset + info.start) % dtype.itemsize:
            raw = raw.clone()
        return raw.view(dtype).view(info.shape)

    def get_stacked(self, first: str, second: str) -> torch.Tensor | None:
        """``first`` and ``second`` as one ``[2, *shape]`` view, when the file holds them side
        by side with one dtype and shape (and suitably aligned); otherwise None."""
        a, b = self._tensors[first], self._tensors[second]
        dtype = _TORCH_DTYPES[a.dtype]
        if (a.dtype, a.shape) != (b.dtype, b.shape) or a.end != b.start:
            return None
        if (self._offset + a.start) % dtype.itemsize:
            return None
        raw = self._bytes[self._offset + a.start : self._offset + b.end]
        return raw.view(dtype).view(2, *a.shape)


def decode_int8_layer(fh: Any, layer: int, dtype: torch.dtype) -> tuple[Int8Rows, Int8Rows]:
    """(keys, values) of an int8 ``layer`` as mapped int8 values and scales (no float copy),
    paired in one :class:`Int8Layer` when ``fh`` (:class:`MappedTensors`) holds them side
    by side (every payload safetensors writes)."""
    names = [(kv_tensor_name(layer, p), kv_scale_name(layer, p)) for p in ("key", "value")]
    stacked = getattr(fh, "get_stacked", None)
    if stacked is not None:
        q, scale = stacked(names[0][0], names[1][0]), stacked(names[0][1], names[1][1])
        if q is not None and scale is not None:
            both = Int8Layer(q, scale, dtype)
            key, value = (Int8Rows(q[i], scale[i], dtype, both, i) for i in (0, 1))
            return key, value
    key, value = (Int8Rows(fh.get_tensor(v), fh.get_tensor(s), dtype) for v, s in names)
    return key, value


def int8_error_bound(scale: torch.Tensor) -> torch.Tensor:
    """The most any element of a row may differ after an int8 round trip: half its scale."""
    return scale.float() / 2


def encode_layer(
    layer: int, key: torch.Tensor, value: torch.Tensor, encoding: str
) -> dict[str, torch.Tensor]:
    """The payload tensors of one layer's keys and values in ``encoding``."""
    if encoding not in KV_ENCODINGS:
        raise ValueError(f"unknown KV encoding {encoding!r} (known: {', '.join(KV_ENCODINGS)})")
    out: dict[str, torch.Tensor] = {}
    for part, tensor in (("key", key), ("value", value)):
        tensor = tensor.detach().to("cpu")
        if encoding == "raw":
            out[kv_tensor_name(layer, part)] = tensor.contiguous()
        elif encoding == "fp16":
            out[kv_tensor_name(layer, part)] = tensor.to(torch.float16).contiguous()
        else:
            q, scale = quantize_int8(tensor)
            out[kv_tensor_name(layer, part)] = q.contiguous()
            out[kv_scale_name(layer, part)] = scale.contiguous()
    return out


def decode_layer(
    fh: Any, layer: int, encoding: str, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """(keys, values) of ``layer`` from an open ``safe_open`` handle, in the model's ``dtype``.

    ``raw`` tensors are returned as mapped (zero-copy on CPU).
    """
    parts = []
    for part in ("key", "value"):
        tensor = fh.get_tensor(kv_tensor_name(layer, part))
        if encoding == "int8":
            tensor = dequantize_int8(tensor, fh.get_tensor(kv_scale_name(layer, part)), dtype)
        elif tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        parts.append(tensor)
    return parts[0], parts[1]


def transcode_kv(src: Any, dst: Any, encoding: str) -> int:
    """Write the KV payload ``src`` again in ``encoding`` (no model run); returns dst's size.

    The header's metadata is kept, with the encoding fields set anew. ``src``
    must be a checked payload (see :func:`runtime.models.kv.load_kv`).
    """
    import json
    import os
    from pathlib import Path

    from safetensors import safe_open
    from safetensors.torch import save_file

    from protocol.payloads import KV_INPUT_IDS, KV_META_ENCODING, KV_META_SCALES

    src, dst = Path(src), Path(dst)
    with safe_open(str(src), framework="pt", device="cpu") as fh:
        metadata = dict(fh.metadata() or {})
        old = metadata.get(KV_META_ENCODING, "raw")
        tensors = {KV_INPUT_IDS: fh.get_tensor(KV_INPUT_IDS)}
        layers = sum(1 for name in fh.keys() if name.endswith(".value"))  # noqa: SIM118
        dtype = getattr(torch, json.loads(metadata["memos.fingerprint"])["dtype"])
        for layer in range(layers):
            key, value = decode_layer(fh, layer, old, dtype)
            tensors.update(encode_layer(layer, key, value, encoding))
    metadata[KV_META_ENCODING] = encoding
    metadata.pop(KV_META_SCALES, None)
    if encoding == "int8":
        metadata[KV_META_SCALES] = "per-token"
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return int(dst.stat().st_size)
