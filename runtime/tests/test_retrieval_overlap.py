"""A search embeds its query on another thread while the keyword leg runs: the same
ranking as embedding first, the embedder's errors still reach the caller."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from runtime.engine.embedding import HashEmbedder
from runtime.engine.engine import Engine
from runtime.engine.lifecycle import RETRIEVABLE
from runtime.engine.retrieval import ranked


class _Watched(HashEmbedder):
    """The hash embedder, noting the thread of each query it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []
        self.fail = False

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if len(texts) == 1:
            self.threads.append(threading.current_thread().name)
            if self.fail:
                raise RuntimeError("the model fell over")
        return super().embed(texts)


@pytest.fixture
def watched(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    engine = Engine(tmp_path / "home", embedder=_Watched())
    for i in range(40):
        engine.add(f"rotate the signing keys of service {i} before the audit")
    return engine


def _ranking(engine: Engine, query: str, *, keyword: bool = True) -> list[tuple[int, float]]:
    options = engine._rank_options(None, tuple(RETRIEVABLE), 100, True, keyword, 0.0)
    return [(r.rowid, r.rrf) for r in ranked(query, store=engine.store, **options)]


def test_the_query_is_embedded_beside_the_keyword_leg_with_the_same_ranking(
    watched: Engine,
) -> None:
    embedder = watched.embedder
    assert isinstance(embedder, _Watched)
    overlapped = _ranking(watched, "rotate signing keys audit")
    assert embedder.threads[-1].startswith("memos-query-embed")
    watched.queries = type(watched.queries)()  # a fresh cache: embed again, inline
    semantic_only = _ranking(watched, "rotate signing keys audit", keyword=False)
    assert embedder.threads[-1] == threading.current_thread().name
    assert overlapped and semantic_only
    # Same vector either way: the keyword-free ranking is the overlapped one's semantic part.
    assert {pk for pk, _ in semantic_only} <= {pk for pk, _ in overlapped}


def test_an_embedder_error_reaches_the_caller(watched: Engine) -> None:
    embedder = watched.embedder
    assert isinstance(embedder, _Watched)
    embedder.fail = True
    with pytest.raises(RuntimeError, match="fell over"):
        _ranking(watched, "a query nobody asked before")
