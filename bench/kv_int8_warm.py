"""Warm load + first token of one ~1k-token KV cache, int8 vs float32, interleaved (issue 14).

The same pack as bench/kv_compose.py's first pack (its fact set, template
and query), built once as float32 and transcoded to int8; both files stay in
the page cache. Each round loads the float32 cache and the int8 one, in turns
first (``load_kv``, ``compose_kv`` of one cache, ``to_cache``, the prefill of
the closing + query and the first token, as kv_compose.py's row),
``--rounds`` times; prints the wall and process-CPU medians and their ratios,
all from this one run, with the load average. ``--ungrouped`` adds int8 loaded
with each tensor dequantized on its own (as before ``kv_codec.Int8Layers``);
``--parts`` also times, per encoding, the load alone, the load and cache
building, and (int8) the dequantization inside attention.

Only the ratio of one run counts: the machine is shared and noisy.
Run: ``nice -n 19 .venv/bin/python bench/kv_int8_warm.py [--rounds 15] [--tokens 1000]
[--threads 2] [--ungrouped] [--parts]``.
Not here: quality figures (bench/kv_compose.py).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from kv_compose import PACK_TOKENS, fact_text, facts, question

from runtime.models import kv_codec
from runtime.models.causal_lm import LoadedModel, greedy_generate, load_smollm2
from runtime.models.kv import LoadedKV, build_kv, load_kv, template_for
from runtime.models.kv_codec import transcode_kv
from runtime.models.kv_compose import compose_kv


def pack_rows(lm: LoadedModel, tokens: int) -> list[tuple[str, str, str]]:
    """kv_compose.py's first pack (every third fact) when ``tokens`` is its size."""
    rows, size = [], 0
    every = facts()
    while size < tokens:
        for row in every[:: 3 if tokens <= PACK_TOKENS else 1]:
            rows.append(row)
            size += lm.count_tokens("- " + fact_text(*row) + "\n")
            if size >= tokens:
                break
    return rows


Loader = Callable[[Path, LoadedModel], LoadedKV]


def load_and_first_token(
    lm: LoadedModel, path: Path, query_ids: list[int], loader: Loader = load_kv
) -> tuple[float, float]:
    """(wall, process CPU) seconds of kv_compose.py's warm row."""
    start, cpu = time.perf_counter(), time.process_time()
    kv = loader(path, lm)
    composed = compose_kv(lm, [kv])
    greedy_generate(lm, [*composed.input_ids, *query_ids], cache=composed.to_cache(lm),
                    max_new_tokens=1)  # fmt: skip
    return time.perf_counter() - start, time.process_time() - cpu


def load_ungrouped(path: Path, lm: LoadedModel) -> LoadedKV:
    """``load_kv`` as before layers were grouped: each tensor dequantized on its own."""
    grid = kv_codec.MappedTensors.get_grid
    kv_codec.MappedTensors.get_grid = lambda *_: None  # type: ignore[method-assign]
    try:
        return load_kv(path, lm)
    finally:
        kv_codec.MappedTensors.get_grid = grid  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=PACK_TOKENS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ungrouped", action="store_true",
                        help="also int8 with each tensor dequantized on its own (the old way)")
    parser.add_argument("--parts", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start_load = os.getloadavg()
    lm = load_smollm2()
    tpl = template_for(lm, None)
    rows = pack_rows(lm, args.tokens)
    work = Path(tempfile.mkdtemp(prefix="kv-int8-warm-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    info = build_kv(lm, [fact_text(*r) for r in rows], work / "p.safetensors")
    int8_path = work / "p.int8.safetensors"
    transcode_kv(info.path, int8_path, "int8")
    kv = load_kv(info.path, lm)
    closing = list(kv.input_ids[kv.num_tokens - kv.closing :])
    ids = [*closing, *lm.encode(tpl.query_text(question(rows[0][0])), add_special_tokens=False)]
    runs: dict[str, tuple[Path, Loader]] = {"float32": (info.path, load_kv),
                                            "int8": (int8_path, load_kv)}  # fmt: skip
    if args.ungrouped:
        runs["int8 ungrouped"] = (int8_path, load_ungrouped)
    for path, loader in runs.values():  # warm: page cache, code paths
        load_and_first_token(lm, path, ids, loader)
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    labels = list(runs)
    for at in range(args.rounds):  # each round in another order: no label always goes first
        for label in labels[at % len(labels) :] + labels[: at % len(labels)]:
            path, loader = runs[label]
            w, c = load_and_first_token(lm, path, ids, loader)
            wall[label].append(w)
            cpu[label].append(c)
    end_load = os.getloadavg()
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"{kv.num_tokens}-token cache, {len(ids)} tokens prefilled, {args.threads} torch "
          f"threads, {args.rounds} interleaved rounds; load average at start "
          f"{start_load[0]:.2f} / {start_load[1]:.2f} / {start_load[2]:.2f}, at end "
          f"{end_load[0]:.2f} / {end_load[1]:.2f} / {end_load[2]:.2f}")  # fmt: skip
    for label in runs:
        print(f"  {label:14s} wall median {med[label] * 1000:7.1f} ms (min "
              f"{min(wall[label]) * 1000:.1f})  process CPU median "
              f"{med_cpu[label] * 1000:7.1f} ms  ratio to float32: wall "
              f"{med[label] / med['float32']:.3f}, CPU "
              f"{med_cpu[label] / med_cpu['float32']:.3f}")  # fmt: skip
    if args.parts:
        parts(lm, {k: p for k, (p, _) in runs.items() if k != "int8 ungrouped"}, ids, args.rounds)


def parts(lm: LoadedModel, paths: dict[str, Path], ids: list[int], rounds: int) -> None:
    """Median ms of the load, load + cache, and int8's dequantization per forward."""
    spent = [0.0]
    dense = kv_codec.Int8Rows.dense

    def timed(self: kv_codec.Int8Rows, slot: str) -> torch.Tensor:
        start = time.perf_counter()
        out = dense(self, slot)
        spent[0] += time.perf_counter() - start
        return out

    kv_codec.Int8Rows.dense = timed  # type: ignore[method-assign]
    got: dict[str, list[float]] = {}
    for _ in range(rounds):
        for label, path in paths.items():
            start = time.perf_counter()
            kv = load_kv(path, lm)
            got.setdefault(label + " load", []).append(time.perf_counter() - start)
            cache = compose_kv(lm, [kv]).to_cache(lm)
            got.setdefault(label + " load+cache", []).append(time.perf_counter() - start)
            spent[0] = 0.0
            greedy_generate(lm, [*kv.input_ids, *ids], cache=cache, max_new_tokens=1)
            got.setdefault(label + " forward", []).append(
                time.perf_counter() - start - got[label + " load+cache"][-1]
            )
            if label == "int8":
                got.setdefault("int8 dequant in forward", []).append(spent[0])
    kv_codec.Int8Rows.dense = dense  # type: ignore[method-assign]
    for label, values in got.items():
        print(f"  {label:24s} median {statistics.median(values) * 1000:7.2f} ms")


if __name__ == "__main__":
    main()
