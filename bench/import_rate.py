"""Importing a Mem0 export against the raw embedding rate of the same texts, in one run (issue 15).

Writes a ``Memory.get_all()`` JSON of ``--count`` memories (sentences of varied
length built from a fixed vocabulary, seeded), then, interleaved ``--runs`` times:

* **embed**: the embedder alone over the same texts, in input order, in batches
  of 256 (what a caller with the texts in hand would do);
* **import**: ``runtime.interop.import_to_pack`` (what ``memos import --from mem0
  --embed`` runs): parse and validate, embed (length-sorted batches), write the
  records with their vectors, sign, write and read back the pack.

Prints memories/s for both and the ratio import ÷ embed (goal ≥ 0.9).
``--embedder minilm`` (default) is the real model; ``hash`` shows the fixed
overhead alone.

Run:  .venv/bin/python bench/import_rate.py --count 100000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protocol import SigningKey  # noqa: E402
from runtime.interop import import_to_pack  # noqa: E402
from runtime.models.embedding import default_embedder  # noqa: E402

WORDS = (
    "memory", "agent", "user", "prefers", "rust", "python", "deploy", "tuesday", "server",
    "cache", "vector", "search", "window", "seat", "flight", "allergy", "peanut", "lisbon",
    "berlin", "team", "review", "branch", "merge", "test", "release", "budget", "latency",
    "token", "prompt", "context", "schedule",
)  # fmt: skip


def texts(count: int, seed: int = 15) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(4, 40))).capitalize() + "."
            for _ in range(count)]  # fmt: skip


def write_export(path: Path, items: list[str]) -> None:
    results = [{"id": f"m-{i}", "memory": t, "metadata": {"n": i}, "categories": ["bench"],
                "created_at": "2025-01-01T00:00:00Z", "user_id": "bench"}
               for i, t in enumerate(items)]  # fmt: skip
    path.write_text(json.dumps({"results": results}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--embedder", choices=("minilm", "hash"), default="minilm")
    args = parser.parse_args()
    embedder = default_embedder(args.embedder)
    items = texts(args.count)
    work = Path(tempfile.mkdtemp(prefix="memos-import-bench-"))
    key = SigningKey.from_seed(b"b" * 32)
    try:
        source = work / "mem0.json"
        write_export(source, items)
        embedder.embed(items[:64])  # load the model outside the timings
        embed_s, import_s = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            for i in range(0, len(items), 256):
                embedder.embed(items[i : i + 256])
            embed_s.append(time.perf_counter() - start)
            out = work / "out.memcube"
            start = time.perf_counter()
            import_to_pack("mem0", source, out, name="bench/import", key=key, embedder=embedder)
            import_s.append(time.perf_counter() - start)
            size = out.stat().st_size
            out.unlink()
        e, m = min(embed_s), min(import_s)
        print(f"memories: {args.count}  embedder: {embedder.model_name}  runs: {args.runs}")
        print(f"embed only:  {e:8.2f} s  {args.count / e:9.0f} memories/s")
        print(
            f"import:      {m:8.2f} s  {args.count / m:9.0f} memories/s  (pack {size / 1e6:.1f} MB)"
        )
        print(f"import ÷ embed rate: {e / m:.3f}  (goal ≥ 0.9)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
