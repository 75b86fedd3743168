"""Local engine search at 10k and 100k memories: p50/p95 latency and recall@10 against exact search.

Corpus: real sentences (docstrings on this machine) embedded by the real model
(all-MiniLM-L6-v2), built once by ``bench/registry_corpus.py`` into
``var/bench/corpus.{json,npy}`` (the first 500 sentences are held-out queries).
If that cache is missing, this script embeds the same sentences itself with
the runtime's MiniLMEmbedder (resumable, ``var/bench/runtime_corpus.partial.npy``)
up to ``--embed-limit``; beyond that limit, memories get random unit vectors,
and the results say how many vectors are real (brute-force latency does not
depend on the vectors' content; exact search has recall 1.0 either way). A
sample of vectors is re-embedded with the runtime's embedder to check they agree.

Measured per size (engine in var/bench/runtime-engine-<N>, reused when present):
* semantic retrieval (memory-mapped float32 matrix, brute-force dot product)
  p50/p95, with the query vector looked up (model time excluded) — and its
  recall@10 against exact numpy search over the same vectors;
* full hybrid search (semantic + FTS5 BM25 + RRF + access checks) p50/p95,
  and the overlap of its top 10 with the exact semantic top 10;
* the real model's time to embed one query (p50), to add to either.

Run:  .venv/bin/python bench/runtime_search.py [--sizes 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "var" / "bench"
N_QUERIES = 500

from runtime.engine.engine import Engine, NewMemory  # noqa: E402
from runtime.models.embedding import MiniLMEmbedder  # noqa: E402


class LookupEmbedder:
    """Returns cached vectors for known texts (queries), so timings exclude the model."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    @property
    def model_name(self) -> str:
        return "all-MiniLM-L6-v2"

    @property
    def dimension(self) -> int:
        return 384

    @property
    def relevance_floor(self) -> float:
        return 0.0  # recall is measured against the exact top k, so keep every hit

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack([self.table[t] for t in texts]).astype(np.float32)


def load_corpus(size: int, embed_limit: int) -> tuple[list[str], np.ndarray, str, int]:
    """(texts, vectors, source, number of real-model vectors). See the module docstring."""
    j, n = OUT / "corpus.json", OUT / "corpus.npy"
    if j.exists() and n.exists():
        texts = json.loads(j.read_text("utf-8"))
        vecs = np.load(n)
        return texts, vecs, str(n), len(vecs)
    sys.path.insert(0, str(ROOT / "bench"))
    from registry_corpus import sentences

    texts = sentences(size + N_QUERIES)
    OUT.mkdir(parents=True, exist_ok=True)
    part = OUT / "runtime_corpus.partial.npy"
    real = np.load(part) if part.exists() else np.zeros((0, 384), dtype=np.float32)
    # registry_corpus.py, while it runs, keeps the same sentences and a preallocated
    # matrix filled from the top: reuse its filled prefix when it is longer than ours.
    shared, shared_texts = OUT / "corpus.partial.npy", OUT / "sentences.json"
    if (
        shared.exists()
        and shared_texts.exists()
        and json.loads(shared_texts.read_text("utf-8"))[: len(texts)] == texts
    ):
        other = np.load(shared, mmap_mode="r")
        norms = np.linalg.norm(other, axis=1)
        filled = int(np.argmin(norms > 0)) if not bool(np.all(norms > 0)) else len(other)
        if filled > len(real):
            real = np.array(other[:filled], dtype=np.float32)
            print(f"  reusing {filled} vectors from {shared}", file=sys.stderr, flush=True)
    emb = MiniLMEmbedder(threads=2)
    want = min(embed_limit, len(texts))
    while len(real) < want:  # resumable: saved after every batch
        batch = texts[len(real) : min(want, len(real) + 512)]
        real = np.vstack([real, emb.embed(batch)])
        np.save(part, real)
        print(f"  embedded {len(real)}/{want}", file=sys.stderr, flush=True)
    vecs = np.zeros((len(texts), 384), dtype=np.float32)
    vecs[: len(real)] = real[: len(texts)]
    if len(real) < len(texts):  # labelled in the results: random unit vectors for the rest
        rng = np.random.default_rng(7)
        fill = rng.standard_normal((len(texts) - len(real), 384)).astype(np.float32)
        vecs[len(real) :] = fill / np.linalg.norm(fill, axis=1, keepdims=True)
    return texts, vecs, str(part), min(len(real), len(texts))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def build_engine(size: int, texts: list[str], vecs: np.ndarray, lookup: LookupEmbedder,
                 n_real: int) -> tuple[Engine, float | None]:
    home = OUT / f"runtime-engine-{size}"
    eng = Engine(home, embedder=lookup, maintain_every=None)
    have = eng.store.memory_count()
    if have == size and eng.store.meta("bench_real_vectors") == str(n_real):
        return eng, None
    if have or eng.store.meta("bench_real_vectors") is not None:
        eng.close()
        import shutil

        shutil.rmtree(home)
        eng = Engine(home, embedder=lookup, maintain_every=None)
    t0 = time.perf_counter()
    batch = 10_000
    for start in range(0, size, batch):
        items = [NewMemory(text=texts[N_QUERIES + i], id=f"bench/{i}")
                 for i in range(start, min(size, start + batch))]
        first = N_QUERIES + start
        eng.add_many(items, vectors=vecs[first : first + len(items)], audit=False)
    rate = size / (time.perf_counter() - t0)
    eng.store.set_meta("bench_real_vectors", str(n_real))
    return eng, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embed-limit", type=int, default=100_000 + N_QUERIES,
                        help="embed at most this many sentences with the real model "
                             "(when no cached corpus)")
    args = parser.parse_args()
    texts, vecs, source, n_real = load_corpus(max(args.sizes), args.embed_limit)
    queries = texts[: args.queries]
    qvecs = vecs[: args.queries]
    lookup = LookupEmbedder({t: v for t, v in zip(queries, qvecs, strict=True)})

    # The cached vectors agree with the runtime's own embedder?
    real = MiniLMEmbedder(threads=2)
    sample = texts[:50]
    agree = float(np.min(np.sum(real.embed(sample) * vecs[:50], axis=1)))
    one_query: list[float] = []
    for q in queries[:50]:
        t0 = time.perf_counter()
        real.embed([q])
        one_query.append(time.perf_counter() - t0)

    results: dict[str, object] = {"corpus": source, "real_model_vectors": n_real,
                                  "min_cosine_cached_vs_runtime_embedder": agree,
                                  "query_embed_p50_ms": statistics.median(one_query) * 1000,
                                  "sizes": {}}
    for size in args.sizes:
        eng, insert_rate = build_engine(size, texts, vecs, lookup, n_real)
        corpus = vecs[N_QUERIES : N_QUERIES + size]
        exact = [set(np.argsort(-(corpus @ q))[:10].tolist()) for q in qvecs]
        id_of = {f"bench/{i}": i for i in range(size)}
        # warm-up (maps the file, loads the row mapping)
        eng.retrieve(queries[0], keyword=False, candidates=10)
        eng.search(queries[0], record=False)
        sem_t, hyb_t, recall, overlap = [], [], [], []
        for q, ex in zip(queries, exact, strict=True):
            t0 = time.perf_counter()
            cands = eng.retrieve(q, keyword=False, candidates=10)
            sem_t.append(time.perf_counter() - t0)
            got = {id_of[c.memory.id] for c in cands}
            recall.append(len(got & ex) / 10)
            t0 = time.perf_counter()
            hits = eng.search(q, k=10, record=False)
            hyb_t.append(time.perf_counter() - t0)
            overlap.append(len({id_of[h.memory.id] for h in hits} & ex) / 10)
        row = {
            "memories": size,
            "real_model_vectors_in_corpus": max(0, min(size, n_real - N_QUERIES)),
            "insert_per_s": insert_rate,
            "semantic_p50_ms": pct(sem_t, 50) * 1000,
            "semantic_p95_ms": pct(sem_t, 95) * 1000,
            "recall_at_10": statistics.mean(recall),
            "hybrid_p50_ms": pct(hyb_t, 50) * 1000,
            "hybrid_p95_ms": pct(hyb_t, 95) * 1000,
            "hybrid_top10_overlap_with_exact_semantic": statistics.mean(overlap),
            "vector_file_mb": (eng.dir / "vectors.f32").stat().st_size / 1e6,
        }
        results["sizes"][str(size)] = row  # type: ignore[index]
        print(json.dumps(row), flush=True)
        eng.close()
    (OUT / "runtime_search.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
