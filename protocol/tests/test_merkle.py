"""RFC 6962 trees: roots agree with pymerkle; proofs built from perfect subtrees verify."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from protocol import merkle as m
from protocol.conformance import generate as g
from protocol.tree_head import SignedTreeHead, TreeHeadError


class Store:
    """The registry's layout: every perfect subtree stored once it completes."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0

    def append(self, entry: bytes) -> None:
        i = self.size
        self.nodes[(0, i)] = m.leaf_hash(entry)
        for level, index in m.perfect_nodes_completed_by(i):
            self.nodes[(level, index)] = m.node_hash(
                self.nodes[(level - 1, 2 * index)], self.nodes[(level - 1, 2 * index + 1)]
            )
        self.size += 1

    def get(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def root(self, size: int) -> bytes:
        return m.subtree_root(0, size, self.get)


def _store(n: int) -> tuple[Store, InmemoryTree]:
    store, oracle = Store(), InmemoryTree(algorithm="sha256")
    for i in range(n):
        store.append(b"entry %d" % i)
        oracle.append_entry(b"entry %d" % i)
    return store, oracle


def test_roots_agree_with_pymerkle_for_every_size_up_to_40():
    store, oracle = _store(40)
    assert store.root(0) == m.EMPTY_ROOT
    for size in range(1, 41):
        assert store.root(size) == oracle.get_root(size), size


def test_every_inclusion_and_consistency_proof_verifies_up_to_20():
    store, _ = _store(20)
    for size in range(1, 21):
        root = store.root(size)
        for index in range(size):
            path = m.inclusion_path(index, size, store.get)
            m.verify_inclusion(store.get(0, index), index, size, path, root)
        for first in range(0, size + 1):
            proof = m.consistency_path(first, size, store.get)
            m.verify_consistency(first, size, store.root(first), root, proof)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_tampered_proof_never_verifies(data):
    store, _ = _store(13)
    size = data.draw(st.integers(2, 13))
    index = data.draw(st.integers(0, size - 1))
    path = m.inclusion_path(index, size, store.get)
    root = store.root(size)
    if path:
        at = data.draw(st.integers(0, len(path) - 1))
        bad = [*path[:at], bytes(32), *path[at + 1 :]]
        with pytest.raises(m.MerkleProofError):
            m.verify_inclusion(store.get(0, index), index, size, bad, root)
    with pytest.raises(m.MerkleProofError):
        m.verify_inclusion(store.get(0, index), index, size, [*path, bytes(32)], root)
    first = data.draw(st.integers(1, size - 1))
    proof = m.consistency_path(first, size, store.get)
    with pytest.raises(m.MerkleProofError):
        m.verify_consistency(first, size, bytes(32), root, proof)
    with pytest.raises(m.MerkleProofError):
        m.verify_consistency(first, size, store.root(first), root, [*proof, bytes(32)])


def test_edge_cases_of_verification_are_refused():
    store, _ = _store(4)
    root = store.root(4)
    with pytest.raises(m.MerkleProofError):
        m.verify_inclusion(store.get(0, 0), 4, 4, [], root)
    with pytest.raises(m.MerkleProofError):
        m.verify_consistency(3, 2, root, root, [])
    with pytest.raises(m.MerkleProofError):
        m.verify_consistency(4, 4, store.root(3), root, [])
    with pytest.raises(m.MerkleProofError):
        m.verify_consistency(0, 4, m.EMPTY_ROOT, root, [root])
    with pytest.raises(m.MerkleProofError):
        m.verify_consistency(3, 4, store.root(3), root, [])
    m.verify_consistency(0, 4, m.EMPTY_ROOT, root, [])
    m.verify_consistency(4, 4, root, root, [])
    with pytest.raises(ValueError):
        m.inclusion_path(4, 4, store.get)
    with pytest.raises(ValueError):
        m.consistency_path(5, 4, store.get)


def test_needed_subtrees_names_only_logarithmically_many_stored_hashes():
    store, _ = _store(1000)
    keys = m.needed_subtrees(lambda get: m.inclusion_path(777, 1000, get))
    assert 0 < len(keys) <= 2 * 10 and keys <= set(store.nodes)
    keys = m.needed_subtrees(lambda get: m.consistency_path(513, 1000, get))
    assert keys <= set(store.nodes)


def test_a_tree_head_round_trips_and_verifies_only_under_its_key():
    head = SignedTreeHead(3, bytes(range(32)), 1_700_000_000_000, "").signed_by(g.KEY_A)
    again = SignedTreeHead.from_dict(head.to_dict())
    assert again == head and again.verify(g.KEY_A.public_key) is again
    with pytest.raises(TreeHeadError):
        again.verify(g.KEY_B.public_key)
    forged = SignedTreeHead(4, head.root_hash, head.timestamp, head.log_id, head.signature)
    with pytest.raises(TreeHeadError):
        forged.verify(g.KEY_A.public_key)


@pytest.mark.parametrize(
    "change",
    [
        {"size": -1},
        {"size": True},
        {"timestamp": "x"},
        {"log_id": "ab"},
        {"root_hash": "zz"},
        {"root_hash": 5},
        {"signature": "%%"},
    ],
)
def test_malformed_tree_heads_are_refused(change):
    head = SignedTreeHead(1, bytes(32), 0, "").signed_by(g.KEY_A).to_dict()
    with pytest.raises(TreeHeadError) as err:
        SignedTreeHead.from_dict({**head, **change})
    assert err.value.code == "log.bad_tree_head"
    with pytest.raises(TreeHeadError):
        SignedTreeHead.from_dict([head])
