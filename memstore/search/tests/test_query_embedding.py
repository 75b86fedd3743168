"""Issue 17 item 3: query vectors come from a bounded cache, and concurrent queries share
one forward pass. A counting fake encoder stands in for the model (no torch here)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from memstore.search.query_embedding import QueryEmbedder, normalise


class Encoder:
    """Records each batch; ``gate`` (when set) holds the first batch until released."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        self.entered.set()
        if self.gate is not None and len(self.batches) == 1:
            assert self.gate.wait(10)
        return np.stack([np.full(4, float(len(t)), dtype=np.float32) for t in texts])


def test_a_repeated_query_is_embedded_once_whatever_its_spacing_and_case() -> None:
    encoder = Encoder()
    embedder = QueryEmbedder(encoder, model="m", lowercase=True)
    first = embedder.vector("Rotate  the keys")
    again = embedder.vector(" rotate the KEYS ")
    assert encoder.batches == [["rotate the keys"]]
    assert again is first and not first.flags.writeable


def test_case_is_kept_for_a_model_that_does_not_lowercase() -> None:
    encoder = Encoder()
    embedder = QueryEmbedder(encoder, model="m", lowercase=False)
    embedder.vector("Keys")
    embedder.vector("keys")
    assert encoder.batches == [["Keys"], ["keys"]]
    assert normalise("a\u0301  b", lowercase=False) == "\u00e1 b"  # NFC


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    encoder = Encoder()
    embedder = QueryEmbedder(encoder, model="m", lowercase=True, size=2)
    embedder.vector("a")
    embedder.vector("b")
    embedder.vector("a")  # a is now the most recent
    embedder.vector("c")  # evicts b
    embedder.vector("a")
    embedder.vector("b")
    assert encoder.batches == [["a"], ["b"], ["c"], ["b"]]


def test_queries_that_arrive_while_the_model_runs_share_the_next_forward_pass() -> None:
    gate = threading.Event()
    encoder = Encoder(gate)
    embedder = QueryEmbedder(encoder, model="m", lowercase=True)
    results: dict[str, np.ndarray] = {}

    def ask(text: str) -> None:
        results[text] = embedder.vector(text)

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    assert encoder.entered.wait(10)  # the model is busy with "first"
    others = [threading.Thread(target=ask, args=(t,)) for t in ("bb", "ccc", "bb", "dddd")]
    for thread in others:
        thread.start()
    while len(embedder._pending) < len(others):  # all four queued behind the busy model
        threading.Event().wait(0.01)
    gate.set()
    for thread in [first, *others]:
        thread.join(10)
    assert encoder.batches[0] == ["first"]
    assert sorted(encoder.batches[1]) == ["bb", "ccc", "dddd"]  # one pass, duplicates once
    assert len(encoder.batches) == 2 and embedder.batches == 2
    assert {t: float(v[0]) for t, v in results.items()} == {
        "first": 5.0,
        "bb": 2.0,
        "ccc": 3.0,
        "dddd": 4.0,
    }


def test_a_failing_forward_pass_fails_every_query_in_it_and_caches_nothing() -> None:
    def broken(texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("out of memory")

    embedder = QueryEmbedder(broken, model="m", lowercase=True)
    with pytest.raises(RuntimeError, match="out of memory"):
        embedder.vector("x")
    embedder._encode = Encoder()
    assert float(embedder.vector("x")[0]) == 1.0


@pytest.fixture
def fresh_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's query embedder is made anew for the test (and after it)."""
    from memstore.search import query_embedding

    monkeypatch.setattr(query_embedding, "_default", None)


@pytest.mark.usefixtures("fresh_default")
def test_the_registry_embedder_runs_onnx_lowercases_and_matches_torch() -> None:
    from encoders import MIN_COSINE
    from memstore.search import embedding
    from memstore.search.query_embedding import _encode_queries, default_embedder

    embedder = default_embedder()
    assert embedder.lowercase  # all-MiniLM-L6-v2's tokenizer lower-cases
    assert embedder._encode is not _encode_queries  # the ONNX encoder, not torch
    cached = embedder.vector("Rotate the Signing keys")
    direct = embedding.embed_one("rotate the signing keys")
    assert float(cached @ direct) >= MIN_COSINE
    assert embedder.vector("rotate   the signing KEYS") is cached


@pytest.mark.usefixtures("fresh_default")
def test_the_torch_query_encoder_when_configured_matches_embed_one(settings: Any) -> None:
    import torch

    from memstore.search import embedding
    from memstore.search.query_embedding import _encode_queries, default_embedder

    settings.MEMSTORE_ENCODER = "torch"
    embedder = default_embedder()
    assert embedder._encode is _encode_queries and embedder.lowercase
    threads = torch.get_num_threads()
    cached = embedder.vector("Rotate the Signing keys")
    assert torch.get_num_threads() == threads  # one thread for the pass, then restored
    assert np.allclose(cached, embedding.embed_one("rotate the signing keys"), atol=1e-5)


@pytest.mark.usefixtures("fresh_default")
def test_queries_fall_back_to_torch_when_onnx_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import encoders
    from memstore.search.query_embedding import _encode_queries, default_embedder

    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise encoders.EncoderError("encoder.unavailable", "onnxruntime is not installed")

    monkeypatch.setattr(encoders, "onnx_encoder", unavailable)
    assert default_embedder()._encode is _encode_queries
    assert "encoder.unavailable" in caplog.text


def test_a_query_pass_runs_on_one_torch_thread_and_restores_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from memstore.search import query_embedding

    seen: list[int] = []

    def fake_embed(texts: Sequence[str]) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return np.zeros((len(texts), 4), dtype=np.float32)

    monkeypatch.setattr("memstore.search.embedding.embed", fake_embed)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        QueryEmbedder(query_embedding._encode_queries, model="m", lowercase=True).vector("q")
        assert seen == [query_embedding.QUERY_THREADS] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def fresh_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's batch encoder is made anew for the test (and after it)."""
    from memstore.search import embedding

    monkeypatch.setattr(embedding, "_onnx", None)


@pytest.mark.usefixtures("fresh_batches")
def test_memories_are_embedded_on_onnx_and_match_sentence_transformers(settings: Any) -> None:
    from encoders import MIN_COSINE
    from memstore.search import embedding

    texts = ["rotate the signing keys", "a KV cache skips the prefill", "", "word " * 300]
    vectors = embedding.embed(texts)
    assert embedding._onnx  # built (or loaded) and used
    settings.MEMSTORE_ENCODER = "torch"
    reference = embedding.embed(texts)
    assert vectors.shape == reference.shape == (4, embedding.DIMENSION)
    assert vectors.dtype == np.float32
    assert np.sum(vectors * reference, axis=1).min() >= MIN_COSINE


@pytest.mark.usefixtures("fresh_batches")
def test_memories_fall_back_to_torch_when_onnx_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import encoders
    from memstore.search import embedding

    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise encoders.EncoderError("encoder.unavailable", "onnxruntime is not installed")

    monkeypatch.setattr(encoders, "onnx_encoder", unavailable)
    assert embedding.embed(["x"]).shape == (1, embedding.DIMENSION)
    assert embedding._onnx is False and "encoder.unavailable" in caplog.text
