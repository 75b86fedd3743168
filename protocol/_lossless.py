"""The lossless-fields rule: what a typed MIP object keeps of the dict it was built from.

Every level of a manifest keeps, in its ``extra`` mapping, the properties it
does not know, the known ones written as an explicit ``null``, and the known
ones written with the default value that ``to_dict()`` leaves out. Putting
them back on output makes ``to_dict(from_dict(d)) == d``, so a 1.x reader
neither drops nor changes what a newer 1.y writer wrote, and the canonical
bytes (and therefore the signatures) survive a round trip.

Not here: the objects themselves (:mod:`protocol._cube`, :mod:`protocol.manifest`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["extra_fields", "merge_fields"]


def extra_fields(
    data: Mapping[str, Any], known: Sequence[str], omitted: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The entries of ``data`` that ``to_dict()`` would not write back from the typed fields."""
    # Unknown keys, known keys written as an explicit null, and known keys
    # written with the value to_dict() leaves out (a default such as [] or
    # 0.5): all go back out unchanged, so that to_dict() reproduces the input
    # exactly and the canonical bytes (and signatures) survive a round trip.
    omitted = omitted or {}
    return {
        k: v
        for k, v in data.items()
        if k not in known
        or v is None
        or (k in omitted and not isinstance(v, bool) and v == omitted[k])
    }


def merge_fields(known: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` overlaid with the typed fields that are set (``None`` means "not written")."""
    out = dict(extra)
    out.update({k: v for k, v in known.items() if v is not None})
    return out
