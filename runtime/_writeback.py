"""Start writing a file's finished bytes to disk early, so that its one fsync has little left.

A blob is fsynced once, before its rename into the cache. Left to itself,
the kernel starts writing dirty pages back only after a delay, so the fsync
of a freshly downloaded 100 MB blob waited ~0.2 s for the whole file to reach
the disk, after the last byte had arrived. Linux's ``sync_file_range`` with
``SYNC_FILE_RANGE_WRITE`` starts that writeback for a range without waiting
for it; called as ranges become final (hashed), the disk works while the
network still sends. It is not a durability guarantee (metadata, disk cache):
the fsync still decides that.

Python's :mod:`os` does not expose ``sync_file_range``; it is called through
:mod:`ctypes` from the C library already loaded into the process (no new
dependency exists for one system call). Elsewhere, or if the call fails,
:func:`start_writeback` does nothing: only the speed changes, never the result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

__all__ = ["start_writeback"]

_SYNC_FILE_RANGE_WRITE = 2


def _bind() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_sync_file_range = _bind()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes at ``offset`` of ``fd`` to disk."""
    if _sync_file_range is not None and length > 0:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
