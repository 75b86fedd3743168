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

Measured per size (engine in var/bench/runtime-engine-<N>, reused when present;
before the end-to-end rows every memory is put back to ``generated`` with no
uses, as freshly added memories are, so the first searches pay for activations):

* ``e2e_*`` — the shipped path, as users run it: ``MemOS.search`` with its
  default usage recording (counters, generated->activated, an audit row per
  search, written after the answer by the usage log's background writer), the
  real MiniLM embedder run inside every call (distinct held-out query texts,
  each asked once, so the query cache never answers) and MiniLM's real
  relevance floor (0.25);
* ``e2e_repeated_*`` — the same with a few queries asked again and again: the
  query-vector cache answers, no model call (labelled: it flatters);
* ``e2e_sync_recording_*`` — ``Engine.search`` with the same embedder and
  cache misses but usage written synchronously in the search (the behaviour
  before the usage log), for the difference;
* ``engine_only_*`` — the engine alone, the query vector looked up (no model):
  semantic retrieval (floor 0, against exact numpy search: recall@10; from
  32,768 rows a coarse first pass and exact re-scoring, see
  runtime/engine/coarse.py; below, the brute-force dot product over the
  memory-mapped float32 matrix) and hybrid search (semantic +
  FTS5 BM25 + RRF + access checks, real floor, ``record=False``) with the
  overlap of its top 10 with the exact semantic top 10;
* ``engine_only_first_search_and_coarse_build_s`` — the first two searches of
  a process and the coarse copy of the vectors the second starts building in
  the background (runtime/engine/coarse.py; from 32,768 rows): every section waits
  for it after its warm-up, so the rows are the steady state (searches before
  it is ready are exact, at the old speed);
* ``engine_only_keyword_*`` — the keyword leg alone (FTS5 BM25 top 50, all
  states), as shipped (only memories holding a rarer phrase are ranked,
  runtime/engine/keyword.py) and as one OR query over every phrase (before),
  and the overlap of their top 10 and top 50;
* ``engine_only_insert_per_s`` — building the engine: precomputed vectors, no
  audit rows (engine only; null when the engine was reused); ``e2e_add_per_s``
  — ``MemOS.add`` one memory at a time as shipped (model call, version row,
  audit row) on a sample;
* ``engine_only_hybrid_{deferred,sync}_recording_*`` — the same hybrid search
  recording its use (fresh memories each), by the usage log after the answer
  (shipped) and inside the search (before): the cost of recording alone;
* the real model's time to embed one query (p50, p95, as shipped: ONNX Runtime
  on one thread; torch on one thread, the fallback; torch on all its threads, as
  before), and ``uptime``'s load
  average before and after (the figures mean little on a busy machine).

Run:  .venv/bin/python bench/runtime_search.py [--sizes 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "var" / "bench"
N_QUERIES = 500

from runtime.engine.engine import Engine, NewMemory  # noqa: E402
from runtime.engine.lifecycle import RETRIEVABLE  # noqa: E402
from runtime.engine.retrieval import fts_terms  # noqa: E402
from runtime.engine.types import Filters  # noqa: E402
from runtime.models.embedding import MINILM_RELEVANCE_FLOOR, MiniLMEmbedder  # noqa: E402
from runtime.sdk import MemOS  # noqa: E402


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
        return MINILM_RELEVANCE_FLOOR  # the real floor; recall asks for 0 explicitly

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack([self.table[t] for t in texts]).astype(np.float32)


def load_corpus(size: int, embed_limit: int) -> tuple[list[str], np.ndarray, str, int]:
    """(texts, vectors, source, number of real-model vectors). See the module docstring."""
    j, n = OUT / "corpus.json", OUT / "corpus.npy"
    if j.exists() and n.exists():
        texts = json.loads(j.read_text("utf-8"))
        vecs = np.load(n)
        return texts, vecs, str(n), len(vecs)
    shared, shared_texts = OUT / "corpus.partial.npy", OUT / "sentences.json"
    listed = json.loads(shared_texts.read_text("utf-8")) if shared_texts.exists() else []
    if len(listed) >= size + N_QUERIES:
        # registry_corpus.py's own list (a larger --size lists other sentences first than
        # sentences(size) would, so its prefix, not sentences(size), matches its vectors)
        texts = listed[: size + N_QUERIES]
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        from registry_corpus import sentences

        texts = sentences(size + N_QUERIES)
    OUT.mkdir(parents=True, exist_ok=True)
    part = OUT / "runtime_corpus.partial.npy"
    # sentences(n) shuffles what it found for n, so another size's partial file holds
    # other texts: keep it only when the texts saved with it are ours.
    part_texts = OUT / "runtime_corpus.partial.json"
    real = np.zeros((0, 384), dtype=np.float32)
    if part.exists() and part_texts.exists():
        saved = np.load(part)
        if json.loads(part_texts.read_text("utf-8"))[: len(saved)] == texts[: len(saved)]:
            real = saved
    part_texts.write_text(json.dumps(texts), "utf-8")
    # registry_corpus.py, while it runs, keeps the same sentences and a preallocated
    # matrix filled from the top: reuse its filled prefix when it is longer than ours.
    if shared.exists() and listed[: len(texts)] == texts:
        other = np.load(shared, mmap_mode="r")
        norms = np.linalg.norm(other, axis=1)
        filled = int(np.argmin(norms > 0)) if not bool(np.all(norms > 0)) else len(other)
        filled = min(filled, len(texts))
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


def build_engine(
    size: int, texts: list[str], vecs: np.ndarray, lookup: LookupEmbedder, n_real: int
) -> tuple[Engine, float | None]:
    home = OUT / f"runtime-engine-{size}"
    eng = Engine(home, embedder=lookup, maintain_every=None)
    have = eng.store.memory_count()
    # Reused only when built from these very texts and vectors.
    digest = hashlib.sha256(json.dumps(texts[: N_QUERIES + size]).encode()).hexdigest()[:16]
    built_from = f"{n_real}:{digest}:{float(vecs[N_QUERIES : N_QUERIES + size].sum()):.6g}"
    if have == size and eng.store.meta("bench_real_vectors") == built_from:
        return eng, None
    if have or eng.store.meta("bench_real_vectors") is not None:
        eng.close()
        import shutil

        shutil.rmtree(home)
        eng = Engine(home, embedder=lookup, maintain_every=None)
    t0 = time.perf_counter()
    batch = 10_000
    for start in range(0, size, batch):
        items = [
            NewMemory(text=texts[N_QUERIES + i], id=f"bench/{i}")
            for i in range(start, min(size, start + batch))
        ]
        first = N_QUERIES + start
        eng.add_many(items, vectors=vecs[first : first + len(items)], audit=False)
    rate = size / (time.perf_counter() - t0)
    eng.store.set_meta("bench_real_vectors", built_from)
    return eng, rate


def load_average() -> str:
    """``uptime``'s load average (1, 5, 15 min), as the results should say."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def fresh_state(eng: Engine) -> None:
    """Every memory generated with no uses, as freshly added memories are (bench only)."""
    with eng.store.write():
        eng.store.db.execute(
            "UPDATE memories SET state = 'generated', access_count = 0, last_accessed_at = NULL"
        )
        eng.bump_generation()


def timed(fn: Callable[[str], object], queries: Sequence[str]) -> list[float]:
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append(time.perf_counter() - t0)
    return out


def p50_p95(prefix: str, times: list[float]) -> dict[str, float]:
    return {f"{prefix}_p50_ms": pct(times, 50) * 1000, f"{prefix}_p95_ms": pct(times, 95) * 1000}


def engine_only(eng: Engine, queries: list[str], exact: list[set[int]], size: int) -> dict:
    id_of = {f"bench/{i}": i for i in range(size)}
    t0 = time.perf_counter()
    eng.retrieve("warm up the row mapping", keyword=False, candidates=10, min_similarity=0)
    eng.search("warm up the row mapping", record=False)
    eng._live.coarse.wait()  # the coarse copy is built in the background: the steady state
    build_s = time.perf_counter() - t0
    sem_t, hyb_t, recall, overlap = [], [], [], []
    for q, ex in zip(queries, exact, strict=True):
        t0 = time.perf_counter()
        cands = eng.retrieve(q, keyword=False, candidates=10, min_similarity=0)
        sem_t.append(time.perf_counter() - t0)
        recall.append(len({id_of[c.memory.id] for c in cands} & ex) / 10)
        t0 = time.perf_counter()
        hits = eng.search(q, k=10, record=False)
        hyb_t.append(time.perf_counter() - t0)
        overlap.append(len({id_of[h.memory.id] for h in hits} & ex) / 10)
    half = len(queries) // 2
    fresh_state(eng)
    deferred = timed(lambda q: eng.search(q, k=10, principal="bench-agent"), queries[:half])
    eng.flush_usage()
    fresh_state(eng)
    eng.usage.linger_s = None  # written inside each search, as before the usage log
    sync = timed(lambda q: eng.search(q, k=10, principal="bench-agent"), queries[half:])
    return {
        "engine_only_first_search_and_coarse_build_s": build_s,
        **p50_p95("engine_only_hybrid_deferred_recording", deferred),
        **p50_p95("engine_only_hybrid_sync_recording", sync),
        **p50_p95("engine_only_semantic_floor0", sem_t),
        "engine_only_recall_at_10": statistics.mean(recall),
        **p50_p95("engine_only_hybrid_no_recording", hyb_t),
        "engine_only_hybrid_top10_overlap_with_exact_semantic": statistics.mean(overlap),
    }


def keyword_leg(eng: Engine, queries: list[str]) -> dict:
    """The keyword leg alone, as shipped (rows holding a rarer phrase: runtime/engine/keyword.py)
    and as one FTS5 OR query over every phrase (before), alternating; the top 10 and 50 kept."""
    shipped_t, single_t, top10, top50 = [], [], [], []
    states = tuple(RETRIEVABLE)
    for q in queries:
        phrases = fts_terms(q)
        if not phrases:
            continue
        t0 = time.perf_counter()
        got = [r for r, _ in eng.store.keyword_in(phrases, Filters(), states, 50)]
        shipped_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()  # every row ranked: one query, as before
        every = eng.store.keyword_in(phrases, Filters(), states, 50, rare_rows=sys.maxsize)
        single_t.append(time.perf_counter() - t0)
        want = [r for r, _ in every]
        top10.append(len(set(got[:10]) & set(want[:10])) / max(1, min(10, len(want))))
        top50.append(len(set(got) & set(want)) / max(1, len(want)))
    return {
        **p50_p95("engine_only_keyword", shipped_t),
        **p50_p95("engine_only_keyword_single_or_query", single_t),
        "engine_only_keyword_top10_overlap_with_single_query": statistics.mean(top10),
        "engine_only_keyword_top50_overlap_with_single_query": statistics.mean(top50),
    }


def end_to_end(
    home: Path,
    model: MiniLMEmbedder,
    queries: list[str],
    args: argparse.Namespace,
    texts: list[str],
) -> dict:
    """The shipped path (see the module docstring): MemOS.search, the model in every call."""
    out: dict[str, object] = {}
    half = len(queries) // 2
    # Scheduled maintenance would merge and archive the corpus at open: not a search.
    os.environ["MEMOS_MAINTAIN_HOURS"] = "0"
    with MemOS(home, principal="bench-agent", embedder=model) as mem:
        fresh_state(mem.engine)
        mem.search("warm up the model and the row mapping")
        mem.search("warm up the model and the row mapping")  # the second starts the coarse copy
        mem.engine._live.coarse.wait()
        mem.engine.flush_usage()
        audit_before = len(mem.engine.store.audit_entries(action="search", limit=10**9))
        moves_before = len(mem.engine.store.audit_entries(action="transition", limit=10**9))
        e2e = timed(lambda q: mem.search(q, k=10), queries[:half])
        out.update(p50_p95("e2e", e2e))
        out["e2e_distinct_queries"] = half
        out["e2e_query_cache_hits"] = mem.engine.queries.hits
        repeated = [queries[i % args.repeat_set] for i in range(half)]
        mem.engine.queries.hits = 0
        out.update(p50_p95("e2e_repeated", timed(lambda q: mem.search(q, k=10), repeated)))
        out["e2e_repeated_query_cache_hits"] = mem.engine.queries.hits
        out["e2e_repeated_distinct_texts"] = args.repeat_set
        mem.engine.flush_usage()
        audit_after = len(mem.engine.store.audit_entries(action="search", limit=10**9))
        out["e2e_search_audit_rows_written"] = audit_after - audit_before
        moves = len(mem.engine.store.audit_entries(action="transition", limit=10**9))
        out["e2e_activations"] = moves - moves_before
    # The old behaviour for the difference: the same model, cache misses, usage written
    # inside the search (fresh memories again, the other half of the queries).
    with Engine(home, embedder=model, maintain_every=None, usage_linger_s=None) as eng:
        fresh_state(eng)
        eng.search("warm up the row mapping again", principal="bench-agent")
        eng.search("warm up the row mapping again", principal="bench-agent")
        eng._live.coarse.wait()
        sync = timed(lambda q: eng.search(q, principal="bench-agent", k=10), queries[half:])
        out.update(p50_p95("e2e_sync_recording", sync))
    # MemOS.add as shipped, on a scratch home (model call, version and audit rows each).
    scratch = OUT / "runtime-add-sample"
    shutil.rmtree(scratch, ignore_errors=True)
    sample = texts[N_QUERIES : N_QUERIES + args.add_sample]
    with MemOS(scratch, principal="bench-agent", embedder=model) as mem:
        t0 = time.perf_counter()
        for text in sample:
            mem.add(text)
        out["e2e_add_per_s"] = len(sample) / (time.perf_counter() - t0)
        out["e2e_add_sample"] = len(sample)
    shutil.rmtree(scratch, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--queries",
        type=int,
        default=200,
        help="held-out queries (at most 500): half for e2e, half for sync",
    )
    parser.add_argument(
        "--repeat-set", type=int, default=10, help="distinct texts in the repeated-query row"
    )
    parser.add_argument(
        "--add-sample", type=int, default=200, help="memories added one at a time through MemOS.add"
    )
    parser.add_argument(
        "--embed-limit",
        type=int,
        default=100_000 + N_QUERIES,
        help="embed at most this many sentences with the real model (when no cached corpus)",
    )
    args = parser.parse_args()
    load_before = load_average()
    print(f"load average before: {load_before}", flush=True)
    texts, vecs, source, n_real = load_corpus(max(args.sizes), args.embed_limit)
    queries = texts[: min(args.queries, N_QUERIES)]
    qvecs = vecs[: len(queries)]
    lookup = LookupEmbedder({t: v for t, v in zip(queries, qvecs, strict=True)})
    lookup.table.update({t: qvecs[0] for t in ("warm up the row mapping",)})

    # The cached vectors agree with the runtime's own embedder? (shipped settings)
    real = MiniLMEmbedder()
    sample = texts[:50]
    agree = float(np.min(np.sum(real.embed(sample) * vecs[:50], axis=1)))
    one_query = timed(lambda q: real.embed([q]), texts[50:100])
    # Same run, same texts: the torch path (MEMOS_QUERY_ENCODER=torch) on one thread,
    # and (a diagnostic, as before query_threads=1) on all of torch's intra-op threads.
    import torch

    torch_path = MiniLMEmbedder(query_encoder="torch")
    torch_query = timed(lambda q: torch_path.embed([q]), texts[50:100])
    torch_path.query_threads = None
    all_threads = timed(lambda q: torch_path.embed([q]), texts[100:150])

    results: dict[str, object] = {
        "corpus": source,
        "real_model_vectors": n_real,
        "min_cosine_cached_vs_runtime_embedder": agree,
        "query_embed_p50_ms": statistics.median(one_query) * 1000,
        "query_embed_p95_ms": pct(one_query, 95) * 1000,
        "query_embed_encoder": "onnx" if real._onnx else "torch",
        "query_embed_query_threads": real.query_threads,
        "query_embed_torch_p50_ms": statistics.median(torch_query) * 1000,
        "query_embed_torch_p95_ms": pct(torch_query, 95) * 1000,
        "query_embed_all_torch_threads_p50_ms": statistics.median(all_threads) * 1000,
        "query_embed_all_torch_threads_p95_ms": pct(all_threads, 95) * 1000,
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load_before,
        "sizes": {},
    }
    for size in args.sizes:
        eng, insert_rate = build_engine(size, texts, vecs, lookup, n_real)
        corpus = vecs[N_QUERIES : N_QUERIES + size]
        exact = [set(np.argsort(-(corpus @ q))[:10].tolist()) for q in qvecs]
        row: dict[str, object] = {
            "memories": size,
            "real_model_vectors_in_corpus": max(0, min(size, n_real - N_QUERIES)),
            "engine_only_insert_per_s": insert_rate,
            **engine_only(eng, queries, exact, size),
            **keyword_leg(eng, queries),
            "vector_file_mb": (eng.dir / "vectors.f32").stat().st_size / 1e6,
        }
        home = eng.home
        eng.close()
        row.update(end_to_end(home, real, queries, args, texts))
        row["load_average_after"] = load_average()
        results["sizes"][str(size)] = row  # type: ignore[index]
        print(json.dumps(row), flush=True)
    results["load_average_after"] = load_average()
    (OUT / "runtime_search.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
