"""The real all-MiniLM-L6-v2, loaded once per session, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.engine.engine import Engine, NewMemory
from runtime.models.embedding import MINILM_NAME, MiniLMEmbedder
from runtime.tests.helpers import FixedClock

pytestmark = pytest.mark.model


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder(threads=2)


def test_vectors_are_normalized_and_semantic(minilm: MiniLMEmbedder) -> None:
    vecs = minilm.embed(
        [
            "How do I reset my password?",
            "I forgot my login credentials",
            "The recipe needs two eggs",
            "",
        ]
    )
    assert vecs.shape == (4, 384)
    assert vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs[:3], axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2


def test_length_sorted_batches_keep_the_input_order(minilm: MiniLMEmbedder) -> None:
    texts = [
        "short",
        "a much longer sentence about databases and indexes " * 3,
        "medium length text",
    ]
    together = minilm.embed(texts)
    one_by_one = np.vstack([minilm.embed([t]) for t in texts])
    assert np.allclose(together, one_by_one, atol=1e-4)


def test_engine_search_with_the_real_model(minilm: MiniLMEmbedder, tmp_path: Path) -> None:
    eng = Engine(tmp_path, embedder=minilm, clock=FixedClock(), maintain_every=None)
    eng.add_many(
        [
            NewMemory(text=t)
            for t in [
                "Backups run every night at two o'clock",
                "The office cat is called Pixel",
                "Deploy to production only on Tuesdays",
            ]
        ]
    )
    hits = eng.search("when is the nightly backup", record=False)
    assert hits[0].memory.text.startswith("Backups")
    assert eng.store.meta("embedding_model") == MINILM_NAME
    # Nothing stored is about this: no hits, rather than the three least unrelated memories.
    assert eng.search("kubernetes pod autoscaling", record=False) == []
    assert len(eng.search("kubernetes pod autoscaling", record=False, min_similarity=0.0)) == 3
    eng.close()


def test_pack_embeddings_from_the_same_model_are_reused(
    minilm: MiniLMEmbedder, tmp_path: Path
) -> None:
    vec = minilm.embed(["precomputed"])[0]

    class Counting(MiniLMEmbedder):
        calls = 0

        def embed(self, texts):  # type: ignore[no-untyped-def]
            Counting.calls += len(texts)
            return minilm.embed(texts)

    eng = Engine(tmp_path, embedder=Counting(), clock=FixedClock(), maintain_every=None)
    eng.add_many(
        [
            NewMemory(
                text="precomputed",
                embedding=tuple(float(x) for x in vec),
                embedding_model=f"sentence-transformers/{MINILM_NAME}",
            ),
            NewMemory(text="fresh"),
        ]
    )
    assert Counting.calls == 1
    eng.close()


def test_one_query_runs_on_query_threads_and_restores_them(minilm: MiniLMEmbedder) -> None:
    import torch

    before = torch.get_num_threads()
    one = minilm.embed(["How do I reset my password?"])
    assert torch.get_num_threads() == before
    batch = minilm.embed(["How do I reset my password?", "The recipe needs two eggs"])
    assert np.allclose(one[0], batch[0], atol=1e-5)  # same vector on one thread or more


def test_one_text_runs_on_onnx_and_agrees_with_torch(minilm: MiniLMEmbedder) -> None:
    from encoders import MIN_COSINE

    texts = ["when is the nightly backup", "Größe café", ""]
    alone = np.vstack([minilm.embed([t]) for t in texts])
    assert minilm._onnx  # the ONNX encoder ran, not torch
    batch = minilm.embed(texts)  # a batch: torch
    assert np.sum(alone * batch, axis=1).min() >= MIN_COSINE


def test_the_torch_query_encoder_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.models.embedding import default_embedder

    monkeypatch.setenv("MEMOS_QUERY_ENCODER", "torch")
    torch_only = default_embedder("minilm")
    assert isinstance(torch_only, MiniLMEmbedder) and torch_only.query_encoder == "torch"
    torch_only.embed(["q"])
    assert torch_only._onnx is None  # never built or loaded
