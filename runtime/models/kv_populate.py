"""Mapping a KV cache's pages ahead of the forward pass, in the order it reads them.

A cold cache used to be read whole before the forward began
(:func:`.kv_read.read_ahead`: parallel ``pread`` calls into a scratch buffer), so
a 4k-token float32 cache of SmolLM2 (186 MB) cost its disk time plus its
compute time. Here the pages are brought in with
``madvise(MADV_POPULATE_READ)`` (Linux 5.14+) instead, on two background
threads, layer by layer in the order the forward reads them, while the
caller goes on: layer 0's attention runs while later layers are still
being read. Measured on that cache, nothing else running: ``read_ahead``
114-153 ms cold against 67-71 ms for the populate (no copy to user space;
the pages end up mapped, so the forward takes no page faults on them).

Where the forward catches up with the readers, its page fault waits for the
page being read, or reads it itself: never a wrong byte, only a wait.

Each piece is also *touched* once mapped (one byte a page, on the same
background thread). On this project's virtual machines the first CPU read
of a page just read from disk costs the host's fault on it: 10-46 ms for
the 186 MB cache against 0.5 ms for a second pass, measured right after a
cold populate. Touching moves that cost off the forward's thread.

Measured on the 4k-token float32 cache (cold / warm load + first token,
medians of 7, 2 vCPUs, noisy neighbours; bench/RESULTS.md): read whole
before the forward 1.56-2.38x; populated behind it 1.18-1.39x. The rest is
I/O work the two vCPUs do for the disk while the forward also wants both;
a cache of fewer bytes (int8: a quarter) is the way below that (1.03-1.16x).

Why ``ctypes`` and not :meth:`mmap.mmap.madvise`: CPython holds the GIL for
the whole of that call (measured: the caller's Python ran at a tenth of its
speed during a cold 186 MB populate), and a call through ``ctypes``
releases it. Nothing from a pack reaches the call but offsets already
checked against the file's size, and only ``MADV_POPULATE_READ`` is passed.

Not here: which bytes to read (the caller's checked header), the fallback
(:func:`.kv_read.read_ahead` when this returns None: another OS, an older
kernel).
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["populate"]

MADV_POPULATE_READ = 22  # <linux/mman.h>; Python's mmap module does not name it
_PIECE = 4 << 20  # bytes one background call maps: small enough to keep both threads busy
_WORKERS = 2
_PAGE = mmap.PAGESIZE

_Madvise = Callable[[int, int, int], int]
_Touch = Callable[[int, int], object]
_state: dict[str, object] = {}
_lock = threading.Lock()


def _libc_madvise() -> _Madvise | None:
    """libc's ``madvise`` through ctypes (GIL released during the call); None off Linux."""
    with _lock:
        if "madvise" not in _state:
            found = None
            if sys.platform.startswith("linux"):
                try:
                    fn = ctypes.CDLL(None, use_errno=True).madvise
                    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                    fn.restype = ctypes.c_int
                    found = fn
                except (OSError, AttributeError):
                    found = None
            _state["madvise"] = found
        return _state["madvise"]  # type: ignore[return-value]


def _forget_after_fork() -> None:
    """A forked child has none of the parent's threads: a pool it inherited would queue work
    (holding mappings) that never runs. It starts its own on first use."""
    global _lock
    _lock = threading.Lock()
    _state.pop("pool", None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _pool() -> ThreadPoolExecutor:
    with _lock:
        pool = _state.get("pool")
        if pool is None:
            pool = _state["pool"] = ThreadPoolExecutor(
                _WORKERS, thread_name_prefix="memos-kv-populate"
            )
        return pool  # type: ignore[return-value]


def _batches(spans: Sequence[tuple[int, int]], size: int) -> list[list[tuple[int, int]]]:
    """``spans`` (byte offsets, in order) as page-aligned pieces within the mapping, in
    batches of at most ``_PIECE`` bytes: one background call a batch, so an int8 cache's
    many small tensors (scales) do not each cost a task. Neighbouring spans may share a
    boundary page: mapping a page twice costs a lookup, not a read."""
    batches: list[list[tuple[int, int]]] = [[]]
    filled = 0
    limit = -(-size // _PAGE) * _PAGE
    for start, end in spans:
        start, end = max(0, start // _PAGE * _PAGE), min(limit, -(-end // _PAGE) * _PAGE)
        for at in range(start, end, _PIECE):
            piece = (at, min(at + _PIECE, end))
            if filled and filled + piece[1] - piece[0] > _PIECE:
                batches.append([])
                filled = 0
            batches[-1].append(piece)
            filled += piece[1] - piece[0]
    return [batch for batch in batches if batch]


def _advise(
    madvise: _Madvise,
    address: int,
    batch: list[tuple[int, int]],
    keep: object,
    touch: _Touch | None = None,
) -> bool:
    """Map the pieces of ``batch`` of the mapping at ``address``, then ``touch`` them; ``keep``
    holds the mapping alive meanwhile (only referenced: the task owns it until this returns)."""
    del keep
    for start, end in batch:
        if madvise(address + start, end - start, MADV_POPULATE_READ) != 0:
            return False
        if touch is not None:
            touch(start, end)
    return True


def populate(
    address: int,
    size: int,
    spans: Sequence[tuple[int, int]],
    *,
    keep: object,
    touch: _Touch | None = None,
) -> list[Future[bool]] | None:
    """Start mapping the pages of ``spans`` (offsets into the ``size``-byte mapping at
    ``address``), in this order, on background threads, and return at once.

    The first batch is mapped before returning, to learn whether the kernel
    can: None (nothing started) off Linux or before 5.14, where the caller
    reads ahead another way. Otherwise the futures of the other batches (each
    True when mapped; one that fails is left to the page faults). ``keep``
    (the mapping, or an object holding it) is referenced until every piece is
    done, so no page is advised after the mapping is gone. ``touch(start, end)``,
    when given, reads one byte of each page of a piece once it is mapped, on
    the same background thread (see the module's docstring: a virtual
    machine's first read of a page newly read from disk is slow).
    """
    madvise = _libc_madvise()
    if madvise is None or size <= 0:
        return None
    batches = _batches(spans, size)
    if batches and not _advise(madvise, address, batches[0], keep, touch):
        return None
    pool = _pool()
    return [pool.submit(_advise, madvise, address, b, keep, touch) for b in batches[1:]]
