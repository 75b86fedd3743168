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
and so do their scales, and consecutive layers often lie at even steps
(``layers.10`` .. ``layers.19``; any two layers are an even step apart): such
layers are viewed and dequantized as one group (:class:`Int8Layers`, up to
``_GROUP_BYTES`` of floats), two passes per group instead of four per layer.
At ~1k tokens a pass's fixed cost (dispatch, and waking the intra-op threads,
which sleep: ``OMP_WAIT_POLICY=PASSIVE``) is larger than its work: 60 separate
tensors took 6.8 ms on 2 threads against 1.1 ms on one (SmolLM2, 1028 tokens). Code that needs the
float tensors themselves (composition of several caches) gets memoized
copies (:class:`DequantizedLayers`). Not here: the header checks
(:mod:`protocol.payloads` ``kv_expected_tensors``), building (:mod:`.kv`).
"""

from __future__ import annotations

import mmap
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
    "Int8Layers",
    "Int8Rows",
    "MappedTensors",
    "decode_int8_layer",
    "decode_int8_layers",
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


_GROUP_BYTES = 4 << 20  # floats of one group's keys and values: stays in the CPU caches
_PAGE = mmap.PAGESIZE


@dataclass(frozen=True, eq=False)
class Int8Layers:
    """Consecutive layers' keys and values as one strided view of the payload, ``[n, 2, ...]``
    int8 with ``[n, 2, ..., 1]`` float16 scales (index ``[layer, 0 keys / 1 values]``):
    dequantized together when one of them is read."""

    q: torch.Tensor
    scale: torch.Tensor
    dtype: torch.dtype

    def dense(self) -> torch.Tensor:
        """The group as floats in this thread's reused buffer: made when the buffer does not
        hold this group already (the next layers' reads are free); valid until another group
        of this shape is made dense in this thread."""
        held = _buffer(self.q.shape, self.dtype, self.q.device, "layers")
        out: torch.Tensor = held[0]
        if held[1] is None or held[1]() is not self:
            held[1] = None  # while being overwritten, the buffer holds no group
            _dequantize_into(out, self.q, _scale32(self))
            held[1] = weakref.ref(self)
        return out


def _scale32(rows: Int8Layers | Int8Rows) -> torch.Tensor:
    """The scales as float32 (made once; 1/64 of the values' size)."""
    made: torch.Tensor | None = rows.__dict__.get("_scale_f32")
    if made is None:
        made = rows.scale.to(torch.float32)
        object.__setattr__(rows, "_scale_f32", made)
    return made


@dataclass(frozen=True, eq=False)
class Int8Rows:
    """One int8 tensor with its per-row float16 scales, dequantized when it is read.

    ``group``: the :class:`Int8Layers` holding these rows at ``index`` (layer in
    the group, 0 keys / 1 values), when they were viewed as part of one."""

    q: torch.Tensor
    scale: torch.Tensor
    dtype: torch.dtype
    group: Int8Layers | None = field(default=None, repr=False)
    index: tuple[int, int] = (0, 0)

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
        """The float values in this thread's reused buffer for ``slot`` (or the group's, see
        :meth:`Int8Layers.dense`): valid until this thread makes other rows of this shape
        dense (one attention call reads it, then the next layers overwrite it). Equal to
        :meth:`dequantize`."""
        if self.group is not None:
            return self.group.dense()[self.index]
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
        with open(path, "rb") as fh:
            mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
        self._bytes = torch.frombuffer(mapping, dtype=torch.uint8)
        self._tensors, self._offset = tensors, data_offset

    @property
    def address(self) -> int:
        """Where the mapping starts in this process (for :mod:`.kv_populate`)."""
        return int(self._bytes.data_ptr())

    @property
    def size(self) -> int:
        return int(self._bytes.numel())

    def touch(self, start: int, end: int) -> None:
        """Read one byte of every page in ``[start, end)`` (one strided torch op: the GIL is
        released while it runs)."""
        self._bytes[start:end:_PAGE].max()

    def get_tensor(self, name: str) -> torch.Tensor:
        info = self._tensors[name]
        dtype = _TORCH_DTYPES[info.dtype]
        raw = self._bytes[self._offset + info.start : self._offset + info.end]
        if (self._offset + info.start) % dtype.itemsize:
            raw = raw.clone()
        return raw.view(dtype).view(info.shape)

    def numel(self, name: str) -> int:
        return int(torch.Size(self._tensors[name].shape).numel())

    def even_run(self, names: Sequence[tuple[str, str]], most: int) -> int:
        """How many of the leading pairs of ``names`` (at most ``most``) lie as :meth:`get_grid`
        takes them: each pair side by side, the pairs at one even step. 0 when the first pair
        is not side by side. Offsets only: no tensor is made."""
        infos = [(self._tensors[a], self._tensors[b]) for a, b in names[:most]]
        first = infos[0][0]
        size = first.end - first.start
        step = infos[1][0].start - first.start if len(infos) > 1 else 0
        run = 0
        for i, pair in enumerate(infos):
            if any(
                (info.dtype, info.shape) != (first.dtype, first.shape)
                or info.start != first.start + i * step + j * size
                for j, info in enumerate(pair)
            ):
                break
            run += 1
        return run if run < 2 or step > 0 else 1

    def get_grid(self, names: Sequence[tuple[str, str]]) -> torch.Tensor | None:
        """The tensors named, pairs side by side, pairs at one even step, as one
        ``[len(names), 2, *shape]`` view; None when the file does not hold them so."""
        infos = [(self._tensors[a], self._tensors[b]) for a, b in names]
        first = infos[0][0]
        dtype, size = _TORCH_DTYPES[first.dtype], first.end - first.start
        step = infos[1][0].start - first.start if len(infos) > 1 else 0
        for i, pair in enumerate(infos):
            for j, info in enumerate(pair):
                if (info.dtype, info.shape) != (first.dtype, first.shape) or (
                    info.start != first.start + i * step + j * size
                ):
                    return None
        if (self._offset + first.start) % dtype.itemsize or step % dtype.itemsize or (
            len(infos) > 1 and step <= 0
        ):
            return None
        end = infos[-1][1].end
        typed = self._bytes[self._offset + first.start : self._offset + end].view(dtype)
        inner = [1]
        for n in reversed(first.shape[1:]):
            inner.insert(0, inner[0] * n)
        strides = (step // dtype.itemsize, size // dtype.itemsize, *inner)
        return typed.as_strided((len(infos), 2, *first.shape), strides, typed.storage_offset())


def decode_int8_layers(
    fh: Any, layers: int, dtype: torch.dtype
) -> tuple[tuple[Int8Rows, Int8Rows], ...]:
    """(keys, values) of every int8 layer as mapped int8 values and scales (no float copy),
    consecutive layers grouped in one :class:`Int8Layers` where ``fh``
    (:class:`MappedTensors`) holds them at even steps (every payload safetensors writes),
    up to ``_GROUP_BYTES`` of floats a group."""
    names = [
        [(kv_tensor_name(i, "key"), kv_tensor_name(i, "value")) for i in range(layers)],
        [(kv_scale_name(i, "key"), kv_scale_name(i, "value")) for i in range(layers)],
    ]
    out: list[tuple[Int8Rows, Int8Rows]] = []
    grouped = isinstance(fh, MappedTensors)
    at = 0
    while at < layers:
        q = scale = None
        if grouped:
            floats = 2 * dtype.itemsize * fh.numel(names[0][at][0])  # one layer's, as floats
            n = min(fh.even_run(names[0][at:], max(1, _GROUP_BYTES // floats)),
                    fh.even_run(names[1][at:], layers))  # fmt: skip
            if n:
                q, scale = fh.get_grid(names[0][at : at + n]), fh.get_grid(names[1][at : at + n])
        if q is None or scale is None:  # one pass per tensor
            out.append(decode_int8_layer(fh, at, dtype))
            at += 1
            continue
        group = Int8Layers(q, scale, dtype)
        for i in range(n):
            key, value = (Int8Rows(q[i, j], scale[i, j], dtype, group, (i, j)) for j in (0, 1))
            out.append((key, value))
        at += n
    return tuple(out)


def decode_int8_layer(fh: Any, layer: int, dtype: torch.dtype) -> tuple[Int8Rows, Int8Rows]:
    """(keys, values) of one int8 ``layer``, each tensor on its own (dequantized on its own)."""
    key, value = (
        Int8Rows(fh.get_tensor(values), fh.get_tensor(scales), dtype)
        for values, scales in (
            (kv_tensor_name(layer, part), kv_scale_name(layer, part)) for part in ("key", "value")
        )
    )
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
