"""RFC 6962 / RFC 9162 Merkle trees: hashing, proofs from stored subtrees, proof verification.

The registry's transparency log (SPEC section 16.2) and every client share
these rules: a leaf hash is ``sha256(0x00 || entry)``, a node hash
``sha256(0x01 || left || right)``, a tree of ``n > 1`` leaves splits at the
largest power of two below ``n``, the empty tree's root is ``sha256(b"")``.

Every subtree of such a tree is either *perfect* (``2**level`` leaves starting
at a multiple of ``2**level``) or splits into perfect ones, so a log that
stores the hash of each perfect subtree once it is complete (at most one new
one per level per append) can answer any root, inclusion or consistency
proof from ``O(log n)`` stored hashes. The proof builders take a lookup
``(level, index) -> hash`` and :func:`needed_subtrees` tells which keys a
proof will ask for, so a database can fetch them in one query.

Verification is RFC 9162 sections 2.1.3.2 and 2.1.4.2, written here rather
than taken from ``pymerkle``: pymerkle proves from a tree it holds in full and
its proofs carry its own rule and subset bits, not RFC 9162 audit paths
(pymerkle's roots, which are RFC 6962's, are the test oracle).

Pure: no I/O. Not here: storage, signed tree heads (:mod:`protocol.tree_head`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from .errors import MIPError

__all__ = [
    "EMPTY_ROOT",
    "MerkleProofError",
    "consistency_path",
    "inclusion_path",
    "leaf_hash",
    "needed_subtrees",
    "node_hash",
    "perfect_nodes_completed_by",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()

#: ``(level, index)`` -> the hash of the perfect subtree of leaves
#: ``[index * 2**level, (index + 1) * 2**level)``.
Lookup = Callable[[int, int], bytes]


class MerkleProofError(MIPError):
    """A Merkle proof does not verify (``log.bad_proof``)."""

    code = "log.bad_proof"


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(lo: int, hi: int, get: Lookup) -> bytes:
    """The RFC 6962 root of leaves ``[lo, hi)``; ``lo`` is aligned as the recursion makes it."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return get(level, lo >> level)
    k = _split(n)
    return node_hash(subtree_root(lo, lo + k, get), subtree_root(lo + k, hi, get))


def _path(m: int, lo: int, hi: int, get: Lookup) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = _split(n)
    if m - lo < k:
        return [*_path(m, lo, lo + k, get), subtree_root(lo + k, hi, get)]
    return [*_path(m, lo + k, hi, get), subtree_root(lo, lo + k, get)]


def inclusion_path(index: int, size: int, get: Lookup) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]): the audit path of leaf ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    return _path(index, 0, size, get)


def _subproof(m: int, lo: int, hi: int, complete: bool, get: Lookup) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if complete else [subtree_root(lo, hi, get)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, lo, lo + k, complete, get), subtree_root(lo + k, hi, get)]
    return [*_subproof(m - k, lo + k, hi, False, get), subtree_root(lo, lo + k, get)]


def consistency_path(first: int, second: int, get: Lookup) -> list[bytes]:
    """RFC 6962 PROOF(first, D[0:second]); empty when ``first`` is 0 or equals ``second``."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    if first in (0, second):
        return []
    return _subproof(first, 0, second, True, get)


def needed_subtrees(build: Callable[[Lookup], object]) -> set[tuple[int, int]]:
    """The ``(level, index)`` keys ``build`` looks up (the recursion never depends on hashes)."""
    keys: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        keys.add((level, index))
        return EMPTY_ROOT

    build(record)
    return keys


def perfect_nodes_completed_by(index: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level >= 1) that leaf ``index`` completes, lowest first."""
    out: list[tuple[int, int]] = []
    level, count = 1, index + 1
    while count % (1 << level) == 0:
        out.append((level, (count >> level) - 1))
        level += 1
    return out


def _bad(why: str) -> MerkleProofError:
    return MerkleProofError(why, code="log.bad_proof")


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2: raise :class:`MerkleProofError` unless ``leaf`` is at ``index``."""
    if not 0 <= index < size:
        raise _bad(f"leaf {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise _bad("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise _bad(f"leaf {index} is not included in the tree of {size} with this root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2: raise :class:`MerkleProofError` unless tree ``first`` is a prefix."""
    if not 0 <= first <= second:
        raise _bad(f"a tree of {second} cannot extend one of {first}")
    if first == second:
        if path or first_root != second_root:
            raise _bad(f"two different trees of the same size {first}")
        return
    if first == 0:
        if path:
            raise _bad("a consistency proof from the empty tree is empty")
        return
    if not path:
        raise _bad("the consistency proof is empty")
    proof = list(path)
    if first & (first - 1) == 0:
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise _bad("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise _bad(f"the tree of {second} does not extend the tree of {first}")
