"""What changed between two versions of a pack: memories added, changed and removed.

Pure: it compares two maps of memory key (cube id, record id) to text, which the
caller reads from the search index. Reads are not changes; only the text counts.

Not here: reading the memories (``memstore.search``), rendering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MemoryDiff", "MemoryKey", "memory_diff"]

MemoryKey = tuple[str, str]  # (cube id, record id)


@dataclass(frozen=True)
class MemoryDiff:
    added: tuple[MemoryKey, ...]
    changed: tuple[MemoryKey, ...]
    removed: tuple[MemoryKey, ...]
    unchanged: int

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def memory_diff(old: Mapping[MemoryKey, str], new: Mapping[MemoryKey, str]) -> MemoryDiff:
    """Keys only in ``new`` are added, only in ``old`` removed; same key, other text: changed."""
    added = tuple(sorted(k for k in new if k not in old))
    removed = tuple(sorted(k for k in old if k not in new))
    changed = tuple(sorted(k for k in new if k in old and old[k] != new[k]))
    unchanged = sum(1 for k in new if k in old and old[k] == new[k])
    return MemoryDiff(added=added, changed=changed, removed=removed, unchanged=unchanged)
