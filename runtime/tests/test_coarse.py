"""The coarse first pass of semantic search (runtime/engine/coarse.py) returns what exact
search returns on vectors it can tell apart, keeps up with appends and replaced files,
and stays inside the live rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from runtime.engine.coarse import Coarse
from runtime.engine.vectors import VectorFile

DIM = 64


def _corpus(n: int, seed: int = 1) -> npt.NDArray[np.float32]:
    """Unit vectors near a 12-dimensional subspace, as sentence embeddings are near a few
    hundred of their directions: a 16-dimensional projection tells them apart."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 12)) @ rng.standard_normal((12, DIM))
    x += 0.05 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def vectors(tmp_path: Path) -> VectorFile:
    vf = VectorFile(tmp_path / "vectors.f32", DIM)
    vf.append(_corpus(3000))
    return vf


def _coarse() -> Coarse:
    return Coarse(dims=16, min_rows=1000, rescore=100, background=False)


def _built(coarse: Coarse, vectors: VectorFile, live: npt.NDArray[np.int64]) -> None:
    """Two searches: the second builds the projection."""
    for query in _corpus(2, seed=10):
        coarse.top(vectors, query, live, 5)
    assert coarse.ready(vectors.path, vectors.matrix()) is not None


def test_coarse_top_is_the_exact_top(vectors: VectorFile) -> None:
    coarse = _coarse()
    live = np.arange(vectors.count(), dtype=np.int64)
    for query in _corpus(20, seed=2):
        want_at, want = vectors.top(query, live, 10)
        got_at, got = coarse.top(vectors, query, live, 10)
        assert got_at.tolist() == want_at.tolist()
        np.testing.assert_allclose(got, want, rtol=1e-5)
    assert coarse.ready(vectors.path, vectors.matrix()) is not None  # it did use the projection


def test_rows_appended_after_the_build_are_found(vectors: VectorFile) -> None:
    coarse = _coarse()
    live = np.arange(vectors.count(), dtype=np.int64)
    query = _corpus(1, seed=3)[0]
    _built(coarse, vectors, live)
    row = vectors.append(query[None, :])
    live = np.arange(vectors.count(), dtype=np.int64)
    at, scores = coarse.top(vectors, query, live, 5)
    assert int(live[at[0]]) == row
    assert scores[0] == pytest.approx(1.0, abs=1e-5)


def test_a_replaced_file_is_projected_again(vectors: VectorFile, tmp_path: Path) -> None:
    coarse = _coarse()
    live = np.arange(vectors.count(), dtype=np.int64)
    query = _corpus(1, seed=4)[0]
    _built(coarse, vectors, live)
    other = VectorFile(tmp_path / "vectors-2.f32", DIM)
    other.append(_corpus(3000, seed=5))
    want_at, _ = other.top(query, live, 5)
    got_at, _ = coarse.top(other, query, live, 5)
    assert got_at.tolist() == want_at.tolist()
    assert coarse.ready(other.path, other.matrix()) is not None  # built for the new file


def test_only_live_rows_are_returned(vectors: VectorFile) -> None:
    coarse = _coarse()
    live = np.arange(0, vectors.count(), 2, dtype=np.int64)  # the even rows
    query = np.asarray(vectors.matrix()[1], dtype=np.float32)  # an odd row's own vector
    at, _ = coarse.top(vectors, query, live, 10)
    assert all(int(r) % 2 == 0 for r in live[at])
    want_at, _ = vectors.top(query, live, 10)
    assert at.tolist() == want_at.tolist()


def test_a_process_searching_once_builds_nothing(vectors: VectorFile) -> None:
    coarse = Coarse(dims=16, min_rows=1000, rescore=100, background=False)
    live = np.arange(vectors.count(), dtype=np.int64)
    coarse.top(vectors, _corpus(1, seed=8)[0], live, 10)
    assert coarse._current is None
    coarse.top(vectors, _corpus(1, seed=9)[0], live, 10)
    assert coarse._current is not None


def test_small_files_are_searched_exactly_without_building(vectors: VectorFile) -> None:
    coarse = Coarse(dims=16, min_rows=10_000, rescore=100, background=False)
    live = np.arange(vectors.count(), dtype=np.int64)
    query = _corpus(1, seed=6)[0]
    want_at, _ = vectors.top(query, live, 10)
    assert coarse.top(vectors, query, live, 10)[0].tolist() == want_at.tolist()
    assert coarse._current is None


def test_a_background_build_serves_exact_results_until_ready(vectors: VectorFile) -> None:
    coarse = Coarse(dims=16, min_rows=1000, rescore=100)
    live = np.arange(vectors.count(), dtype=np.int64)
    query = _corpus(1, seed=7)[0]
    want_at, _ = vectors.top(query, live, 10)
    assert coarse.top(vectors, query, live, 10)[0].tolist() == want_at.tolist()
    assert coarse.ready(vectors.path, vectors.matrix()) is None  # the second search starts it
    assert coarse.wait(timeout_s=30)
    assert coarse.ready(vectors.path, vectors.matrix()) is not None
    assert coarse.top(vectors, query, live, 10)[0].tolist() == want_at.tolist()
