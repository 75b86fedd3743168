"""Composed, compressed activation memory (issue 14), SmolLM2-135M on this machine, one run.

Fact set: the ``*.dist-info/METADATA`` files of the packages installed beside
this interpreter (real text the environment ships): one fact per package,
"The installed version of the <name> package is <version>; <summary>",
sorted by name and dealt round-robin into three packs of ~1k tokens each
(chatml template). Each question asks one fact's version; recall = the
version string appears in the first 20 greedy tokens.

Measured, all in one process:

* TTFT of the three packs' KV caches composed (warm files: load, check,
  place, recompute at the default budget, prefill closing + query, first
  token) vs plaintext prefill of the very same ~3k token ids + query;
* agreement with full prefill over recompute budgets 0-30%: first greedy
  token identical, and recall accuracy (full prefill's KV of the composed
  ids is computed once: causal attention makes it equal to prefilling the
  prefix with every question);
* int8 caches: bytes per token, first 16 greedy tokens identical to the
  float32 caches (composed, default budget), warm TTFT of one pack int8 vs
  float32;
* cold vs warm load + first token of a 4k-token cache (the file's pages
  evicted with ``posix_fadvise(DONTNEED)`` for cold), float32 and int8;
* single-pack TTFT at 2k cached tokens with a ~95-token query vs the
  query's own forward pass (the floor), same run.

Run: ``.venv/bin/python bench/kv_compose.py [--questions-per-pack 4 --repeats 3]``;
prints a Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from runtime.models.causal_lm import LoadedModel, greedy_generate, load_smollm2
from runtime.models.kv import build_kv, load_kv, prefix_segments, template_for
from runtime.models.kv_codec import transcode_kv
from runtime.models.kv_compose import DEFAULT_RECOMPUTE, compose_kv

BUDGETS = (0.0, 0.05, 0.1, 0.2, 0.3)
PACK_TOKENS = 1000
RECALL_TOKENS = 20


def facts() -> list[tuple[str, str, str]]:
    """(name, version, summary) of every installed distribution with a summary."""
    site = Path(sysconfig.get_paths()["purelib"])
    out = {}
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        fields: dict[str, str] = {}
        for line in meta.read_text("utf-8", errors="replace").splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(": ")
            fields.setdefault(key, value.strip())
        name, version, summary = (fields.get(k, "") for k in ("Name", "Version", "Summary"))
        if name and re.fullmatch(r"\d+(\.\d+)+", version) and 10 <= len(summary) <= 160:
            out[name.lower()] = (name, version, summary.rstrip("."))
    return [out[k] for k in sorted(out)]


def fact_text(name: str, version: str, summary: str) -> str:
    return f"The installed version of the {name} package is {version}; {summary}."


def question(name: str) -> str:
    return f"What is the installed version of the {name} package?"


def packs_of(lm: LoadedModel, rows: list[tuple[str, str, str]]) -> list[list[tuple[str, str, str]]]:
    packs: list[list[tuple[str, str, str]]] = [[], [], []]
    sizes = [0, 0, 0]
    for i, row in enumerate(rows):
        j = i % 3
        if sizes[j] >= PACK_TOKENS:
            continue
        packs[j].append(row)
        sizes[j] += lm.count_tokens("- " + fact_text(*row) + "\n")
        if min(sizes) >= PACK_TOKENS:
            break
    return packs


def first_token_s(lm: LoadedModel, ids: list[int], cache: object = None) -> tuple[float, int]:
    start = time.perf_counter()
    out = greedy_generate(lm, ids, cache=cache, max_new_tokens=1)  # type: ignore[arg-type]
    return time.perf_counter() - start, out.tokens[0]



def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def load_and_first_token(lm: LoadedModel, path: Path, query_ids: list[int]) -> float:
    start = time.perf_counter()
    kv = load_kv(path, lm)
    composed = compose_kv(lm, [kv])
    greedy_generate(lm, [*composed.input_ids, *query_ids], cache=composed.to_cache(lm),
                    max_new_tokens=1)  # fmt: skip
    return time.perf_counter() - start


def emit(line: str = "") -> None:
    print(line, flush=True)


def stage(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions-per-pack", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    load = os.getloadavg()
    lm = load_smollm2()
    tpl = template_for(lm, None)
    rows = facts()
    packs = packs_of(lm, rows)
    work = Path(tempfile.mkdtemp(prefix="kv-compose-bench-"))
    stage("building 3 packs")
    raw_paths, int8_paths = [], []
    for i, pack in enumerate(packs):
        info = build_kv(lm, [fact_text(*r) for r in pack], work / f"p{i}.safetensors")
        raw_paths.append(info.path)
        int8 = work / f"p{i}.int8.safetensors"
        transcode_kv(info.path, int8, "int8")
        int8_paths.append(int8)
    raw = [load_kv(p, lm) for p in raw_paths]
    qs: list[tuple[str, str]] = []
    for pack in packs:
        step = max(1, len(pack) // args.questions_per_pack)
        qs += [(question(r[0]), r[1]) for r in pack[::step][: args.questions_per_pack]]
    n = len(qs)
    base = compose_kv(lm, raw, recompute=0.0)
    closing = list(base.closing_ids)
    full_ids = list(base.input_ids)
    emit("## Composed, compressed activation memory (issue 14)")
    emit()
    emit(
        f"Command: `.venv/bin/python bench/kv_compose.py --questions-per-pack "
        f"{args.questions_per_pack} --repeats {args.repeats}`; SmolLM2-135M-Instruct (float32, "
        f"CPU, 2 torch threads); load average at start {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f}. Fact set: {len(rows)} installed distributions' METADATA (name, version, "
        f"summary); 3 packs of {', '.join(str(k.num_tokens) for k in raw)} tokens "
        f"({sum(len(p) for p in packs)} facts); {n} questions ({args.questions_per_pack} per "
        f"pack), recall = the version string in the first {RECALL_TOKENS} greedy tokens. "
        f"Composed prompt: {len(full_ids)} cached tokens."
    )
    emit()
    emit("| figure | value | goal |")
    emit("|---|---|---|")
    # TTFT: composed (warm, default budget) vs plaintext prefill of the same ids.
    stage("TTFT composed vs plaintext")
    q0 = lm.encode(tpl.query_text(qs[0][0]), add_special_tokens=False)
    composed_ttft, plain_ttft = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        loaded = [load_kv(p, lm) for p in raw_paths]
        composed = compose_kv(lm, loaded, recompute=DEFAULT_RECOMPUTE)
        greedy_generate(lm, [*composed.input_ids, *closing, *q0], cache=composed.to_cache(lm),
                        max_new_tokens=1)  # fmt: skip
        composed_ttft.append(time.perf_counter() - start)
    for _ in range(max(1, args.repeats - 1)):
        plain_ttft.append(first_token_s(lm, [*full_ids, *closing, *q0])[0])
    c_med, p_med = statistics.median(composed_ttft), statistics.median(plain_ttft)
    emit(
        f"| TTFT composed 3 packs (default recompute {DEFAULT_RECOMPUTE:.0%}) / plaintext prefill "
        f"of the same ids | {c_med:.3f} s / {p_med:.3f} s = {c_med / p_med:.1%} | ≤ 10% |"
    )
    # 2k single pack vs the query's own forward pass.
    stage("single pack vs floor")
    texts4k = [fact_text(*r) for r in rows]
    while lm.count_tokens("".join(texts4k)) < 4000:
        texts4k = texts4k + texts4k
    two_k = build_kv(lm, _fit(lm, tpl, texts4k, 2000), work / "two.safetensors")
    long_q = " ".join(s for _, _, s in rows[:12])
    long_ids = lm.encode(tpl.query_text(long_q[:430] + " " + qs[0][0]), add_special_tokens=False)
    single = statistics.median(load_and_first_token(lm, two_k.path, long_ids)
                               for _ in range(args.repeats + 2))  # fmt: skip
    floor = statistics.median(first_token_s(lm, long_ids)[0] for _ in range(args.repeats + 2))
    emit(
        f"| one pack of {two_k.num_tokens} tokens, {len(long_ids)}-token query: TTFT / query "
        f"forward alone | {single:.3f} s / {floor:.3f} s = {single / floor:.2f}x | ≤ 1.3x |"
    )
    # int8: bytes/token, warm single-pack TTFT.
    stage("int8")
    int8 = [load_kv(p, lm) for p in int8_paths]
    int8_bpt = statistics.mean(
        p.stat().st_size / k.num_tokens for p, k in zip(int8_paths, int8, strict=True)
    )
    raw_bpt = statistics.mean(
        p.stat().st_size / k.num_tokens for p, k in zip(raw_paths, raw, strict=True)
    )
    emit(
        f"| int8: bytes per token (file / tokens) | {int8_bpt:.0f} B (float32 {raw_bpt:.0f} B, "
        f"{raw_bpt / int8_bpt:.2f}x fewer) | ≤ 12 KB |"
    )
    warm_raw = statistics.median(load_and_first_token(lm, raw_paths[0], [*closing, *q0])
                                 for _ in range(args.repeats + 2))  # fmt: skip
    warm_int8 = statistics.median(load_and_first_token(lm, int8_paths[0], [*closing, *q0])
                                  for _ in range(args.repeats + 2))  # fmt: skip
    emit(
        f"| warm load + first token, one pack: int8 / float32 | {warm_int8:.3f} s / "
        f"{warm_raw:.3f} s | int8 ≤ float32 |"
    )
    # 4k cold vs warm.
    stage("4k cold vs warm")
    big = build_kv(lm, _fit(lm, tpl, texts4k, 4000), work / "big.safetensors")
    big8 = work / "big.int8.safetensors"
    transcode_kv(big.path, big8, "int8")
    for label, path in (("float32", big.path), ("int8", big8)):
        warm_s, cold_s = [], []
        for _ in range(args.repeats):
            gc.collect()
            evict(path)
            cold_s.append(load_and_first_token(lm, path, q0))
            warm_s.append(load_and_first_token(lm, path, q0))
        c, w = statistics.median(cold_s), statistics.median(warm_s)
        emit(
            f"| {big.num_tokens}-token cache {label} ({path.stat().st_size / 1e6:.0f} MB): cold / "
            f"warm load + first token | {c:.3f} s / {w:.3f} s = {c / w:.2f}x | ≤ 1.3x |"
        )
    # Quality: full prefill's KV of the composed ids, once (see the docstring).
    stage("full prefill for quality")
    with torch.no_grad():
        full_out = lm.model(input_ids=torch.tensor([full_ids]), use_cache=True, logits_to_keep=1)
    full_k = [layer.keys for layer in full_out.cache.layers]
    full_v = [layer.values for layer in full_out.cache.layers]
    from runtime.models.kv import cache_from_tensors

    def answer(cache_of: object, q: str, k: int) -> tuple[int, ...]:
        ids = [*full_ids, *closing, *lm.encode(tpl.query_text(q), add_special_tokens=False)]
        return greedy_generate(lm, ids, cache=cache_of(), max_new_tokens=k).tokens  # type: ignore[operator]

    full_answers = [
        answer(lambda: cache_from_tensors(lm, full_k, full_v), q, RECALL_TOKENS) for q, _ in qs
    ]
    full_recall = sum(v in lm.decode(a) for a, (_, v) in zip(full_answers, qs, strict=True))
    emit(f"| full prefill: recall | {full_recall}/{n} | |")
    stage("int8 16-token agreement")
    c_raw = compose_kv(lm, raw, recompute=DEFAULT_RECOMPUTE)
    c_int8 = compose_kv(lm, int8, recompute=DEFAULT_RECOMPUTE)
    same16 = sum(
        answer(lambda: c_raw.to_cache(lm), q, 16) == answer(lambda: c_int8.to_cache(lm), q, 16)
        for q, _ in qs
    )
    emit(
        f"| int8 vs float32 caches, composed: first 16 greedy tokens identical | {same16}/{n} "
        f"| ≥ 95% |"
    )
    emit()
    emit("Recompute curve (3 packs composed vs full prefill of the same token ids):")
    emit()
    emit("| recompute budget | compose s | tokens recomputed | first token = full | recall |")
    emit("|---|---|---|---|---|")
    for budget in BUDGETS:
        stage(f"budget {budget}")
        start = time.perf_counter()
        composed = compose_kv(lm, raw, recompute=budget)
        compose_s = time.perf_counter() - start
        got = [answer(lambda c=composed: c.to_cache(lm), q, RECALL_TOKENS) for q, _ in qs]
        same = sum(a[0] == b[0] for a, b in zip(got, full_answers, strict=True))
        recall = sum(v in lm.decode(a) for a, (_, v) in zip(got, qs, strict=True))
        emit(
            f"| {budget:.0%} | {compose_s:.3f} | {composed.recomputed} | {same}/{n} "
            f"({same / n:.0%}) | {recall}/{n} ({recall / n:.0%}) |"
        )
    after = os.getloadavg()
    emit()
    emit(f"Load average at the end: {after[0]:.2f} / {after[1]:.2f} / {after[2]:.2f}.")


def _fit(lm: LoadedModel, tpl: object, texts: list[str], tokens: int) -> list[str]:
    out: list[str] = []
    for text in texts:
        out.append(text)
        if len(prefix_segments(lm, tpl, out)[3]) >= tokens:  # type: ignore[arg-type]
            break
    return out


if __name__ == "__main__":
    main()
