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
* single-pack TTFT at 2k cached tokens with a ~120-token query, from a pack
  installed into a scratch engine home (``generate_with_memory`` on the
  installed cube's blob: header checks, read-ahead, mapping, cache building,
  template and tokenizing, the forward) vs the floor: the very same forward
  of the same suffix ids over the same states held in memory (a prefill's
  tensors, the cache already built), same run; plus where the difference goes.

Cost (``--questions-per-pack`` 15 gives 45 questions): the full-prefill
reference answers are generated once per question and reused by every row;
the int8 agreement reuses the float32 answers at the default budget; the
recompute curve runs on the first ``--curve-questions`` questions (default:
all) and the timing rows on one question. The stage lines on stderr give each
stage's seconds, and the last line the whole run's.

Run: ``.venv/bin/python bench/kv_compose.py [--questions-per-pack 4 --repeats 3]``;
prints a Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import functools
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
from _kv_compose_parts import answers_of, installed_source

from runtime.models.causal_lm import LoadedModel, greedy_generate, load_smollm2
from runtime.models.generation import generate_with_memory
from runtime.models.kv import build_kv, cache_from_tensors, load_kv, template_for
from runtime.models.kv_codec import transcode_kv
from runtime.models.kv_compose import DEFAULT_RECOMPUTE, compose_kv
from runtime.models.kv_read import _cached
from runtime.models.kv_templates import PromptTemplate, prefix_segments

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
    """Drop ``path``'s pages from the page cache; says so on stderr where some stay (a
    mapping of them still alive would keep them, and the cold row would be warm).
    Written back first: a file just built is dirty in the page cache, and dirty pages
    are not dropped (before this, the first cold rounds of a new file were warm)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        size, page = os.fstat(fd).st_size, bytearray(4096)
        kept = sum(_cached(fd, at, at + 4096, page) for at in range(0, size, 4 << 20))
        if kept:
            print(f"warning: {kept} probed pages of {path.name} stayed cached", file=sys.stderr)
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


_T0 = time.perf_counter()
_last = [_T0]


def stage(what: str) -> None:
    now = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {what}: {now - _last[0]:.1f} s (run so far "
          f"{now - _T0:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    _last[0] = now


def single_pack_row(lm: LoadedModel, tpl: PromptTemplate, texts: list[str], query: str, work: Path,
                    repeats: int) -> None:  # fmt: skip
    """TTFT from the installed cube vs the same forward over the same states in memory."""
    source = installed_source(lm, texts, work)
    ((_fp, blob),) = source.kv
    kv = load_kv(blob, lm)
    ids = list(kv.input_ids)
    suffix = lm.encode(tpl.query_text(query, standalone=False), add_special_tokens=False)
    with torch.no_grad():  # the same states, computed here and held in (anonymous) memory
        out = lm.model(input_ids=torch.tensor([ids]), use_cache=True, logits_to_keep=1)
    mem_k = [layer.keys for layer in out.cache.layers]
    mem_v = [layer.values for layer in out.cache.layers]

    def installed() -> float:
        start = time.perf_counter()
        got = generate_with_memory(lm, source, query, mode="kv", max_new_tokens=1)
        took = time.perf_counter() - start
        assert got.form == "activation", got
        assert got.prompt_tokens == len(ids) + len(suffix), got
        assert got.cached_tokens == len(ids)
        return took

    def in_memory() -> float:
        cache = cache_from_tensors(lm, mem_k, mem_v)
        return first_token_s(lm, [*ids, *suffix], cache)[0]

    def part(fn: object) -> float:
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        return time.perf_counter() - start

    installed(), in_memory()  # warm: page cache, code paths
    ttft, floor, load_s, cache_s, tok_s = [], [], [], [], []
    for _ in range(repeats + 2):  # interleaved, so both see the same machine
        ttft.append(installed())
        floor.append(in_memory())
        load_s.append(part(lambda: load_kv(blob, lm)))
        cache_s.append(part(lambda: compose_kv(lm, [load_kv(blob, lm)]).to_cache(lm)))
        tok_s.append(part(lambda: lm.encode(tpl.query_text(query, standalone=False),
                                            add_special_tokens=False)))  # fmt: skip
    t, f = statistics.median(ttft), statistics.median(floor)
    emit(
        f"| one installed pack of {len(ids)} tokens, {len(suffix)}-token query: TTFT from the "
        f"installed cube / the same forward over the same states in memory | {t:.3f} s / "
        f"{f:.3f} s = {t / f:.2f}x | ≤ 1.3x |"
    )
    med = statistics.median
    _notes.append(
        f"Single pack: of the TTFT's {t * 1000:.0f} ms, loading (header and fingerprint checks, "
        f"read-ahead, mapping) took {med(load_s) * 1000:.1f} ms, load + cache building "
        f"{med(cache_s) * 1000:.1f} ms, template + tokenizing {med(tok_s) * 1000:.1f} ms "
        f"(medians of {repeats + 2}); the rest is the forward."
    )


_notes: list[str] = []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions-per-pack", type=int, default=4)
    parser.add_argument(
        "--curve-questions",
        type=int,
        default=0,
        help="questions for the recompute curve (default 0: all)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    load = os.getloadavg()
    lm = load_smollm2()
    tpl = template_for(lm, None)
    rows = facts()
    packs = packs_of(lm, rows)
    work = Path(tempfile.mkdtemp(prefix="kv-compose-bench-"))
    stage("model loaded")
    raw_paths, int8_paths = [], []
    for i, pack in enumerate(packs):
        info = build_kv(lm, [fact_text(*r) for r in pack], work / f"p{i}.safetensors")
        raw_paths.append(info.path)
        int8_path = work / f"p{i}.int8.safetensors"
        transcode_kv(info.path, int8_path, "int8")
        int8_paths.append(int8_path)
    raw = [load_kv(p, lm) for p in raw_paths]
    qs: list[tuple[str, str]] = []
    for pack in packs:
        step = max(1, len(pack) // args.questions_per_pack)
        qs += [(question(r[0]), r[1]) for r in pack[::step][: args.questions_per_pack]]
    n = len(qs)
    curve_n = min(n, args.curve_questions or n)
    base = compose_kv(lm, raw, recompute=0.0)
    closing = list(base.closing_ids)
    full_ids = list(base.input_ids)
    emit("## Composed, compressed activation memory (issue 14)")
    emit()
    curve_flag = f" --curve-questions {args.curve_questions}" if args.curve_questions else ""
    emit(
        f"Command: `.venv/bin/python bench/kv_compose.py --questions-per-pack "
        f"{args.questions_per_pack}{curve_flag} --repeats {args.repeats}`; SmolLM2-135M-Instruct "
        f"(float32, CPU, 2 torch threads); load average at start {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f}. Fact set: {len(rows)} installed distributions' METADATA (name, version, "
        f"summary); 3 packs of {', '.join(str(k.num_tokens) for k in raw)} tokens "
        f"({sum(len(p) for p in packs)} facts); {n} questions ({args.questions_per_pack} per "
        f"pack; the recompute curve on the first {curve_n}), recall = the version string in the "
        f"first {RECALL_TOKENS} greedy tokens. Composed prompt: {len(full_ids)} cached tokens."
    )
    emit()
    emit("| figure | value | goal |")
    emit("|---|---|---|")
    # TTFT: composed (warm, default budget) vs plaintext prefill of the same ids.
    stage("3 packs built")
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
    # 2k single pack, installed, vs the same forward over in-memory states.
    stage("TTFT composed vs plaintext")
    texts4k = [fact_text(*r) for r in rows]
    while lm.count_tokens("".join(texts4k)) < 4000:
        texts4k = texts4k + texts4k
    long_q = " ".join(s for _, _, s in rows[:12])[:430] + " " + qs[0][0]
    single_pack_row(lm, tpl, _fit(lm, tpl, texts4k, 2000), long_q, work, args.repeats)
    # int8: bytes/token, warm single-pack TTFT.
    stage("single installed pack vs the in-memory forward")
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
    # Interleaved, each encoding first in every other round (the second of a pair runs on
    # caches the first warmed): a small difference, so more rounds than the other rows.
    warm_one: dict[str, list[float]] = {"float32": [], "int8": []}
    rounds = 4 * args.repeats + 3
    for at in range(rounds):
        pair = [("float32", raw_paths[0]), ("int8", int8_paths[0])]
        for label, path in pair[at % 2 :] + pair[: at % 2]:
            warm_one[label].append(load_and_first_token(lm, path, [*closing, *q0]))
    emit(
        f"| warm load + first token, one pack: int8 / float32 (medians of {rounds} interleaved) | "
        f"{statistics.median(warm_one['int8']):.3f} s / "
        f"{statistics.median(warm_one['float32']):.3f} s | int8 ≤ float32 |"
    )
    # 4k cold vs warm.
    stage("int8 size, 1k warm")
    big = build_kv(lm, _fit(lm, tpl, texts4k, 4000), work / "big.safetensors")
    big8 = work / "big.int8.safetensors"
    transcode_kv(big.path, big8, "int8")
    warm_of: dict[str, list[float]] = {}
    for label, path in (("float32", big.path), ("int8", big8)):
        warm_s, cold_s = [], []
        for _ in range(2 * args.repeats + 1):  # noisy (the disk, the host): 7 pairs
            gc.collect()
            evict(path)
            cold_s.append(load_and_first_token(lm, path, q0))
            warm_s.append(load_and_first_token(lm, path, q0))
        c, w = statistics.median(cold_s), statistics.median(warm_s)
        emit(
            f"| {big.num_tokens}-token cache {label} ({path.stat().st_size / 1e6:.0f} MB): cold / "
            f"warm load + first token | {c:.3f} s / {w:.3f} s = {c / w:.2f}x | ≤ 1.3x |"
        )
    for _ in range(2 * args.repeats + 1):  # warm, interleaved: wall and process CPU seconds
        for label, path in (("float32", big.path), ("int8", big8)):
            cpu = time.process_time()
            wall = load_and_first_token(lm, path, q0)
            warm_of.setdefault(label, []).append(wall)
            warm_of.setdefault(label + " cpu", []).append(time.process_time() - cpu)
    m = {k: statistics.median(v) for k, v in warm_of.items()}
    emit(
        f"| {big.num_tokens}-token cache, warm load + first token, int8 / float32 (medians of "
        f"{2 * args.repeats + 1} interleaved; process CPU) | {m['int8']:.3f} s / "
        f"{m['float32']:.3f} s ({m['int8 cpu']:.3f} / {m['float32 cpu']:.3f} CPU s) | "
        "int8 ≤ float32 |"
    )
    # Quality: full prefill's KV of the composed ids, once (see the docstring); every row
    # below compares against these reference answers, generated once per question.
    stage("4k cold / warm")
    with torch.no_grad():
        full_out = lm.model(input_ids=torch.tensor([full_ids]), use_cache=True, logits_to_keep=1)
    full_k = [layer.keys for layer in full_out.cache.layers]
    full_v = [layer.values for layer in full_out.cache.layers]
    prompts = [[*full_ids, *closing, *lm.encode(tpl.query_text(q), add_special_tokens=False)]
               for q, _ in qs]  # fmt: skip

    def recall_of(got: list[tuple[int, ...]]) -> int:
        return sum(v in lm.decode(a) for a, (_, v) in zip(got, qs, strict=False))

    full_answers = answers_of(lm, lambda: cache_from_tensors(lm, full_k, full_v), prompts,
                              RECALL_TOKENS)  # fmt: skip
    stage(f"full prefill and its answers ({n})")
    full_recall = recall_of(full_answers)
    emit(f"| full prefill: recall | {full_recall}/{n} ({full_recall / n:.0%}) | |")
    c_raw = compose_kv(lm, raw, recompute=DEFAULT_RECOMPUTE)
    default_answers = answers_of(lm, lambda: c_raw.to_cache(lm), prompts, RECALL_TOKENS,
                                 full_answers)  # fmt: skip
    stage(f"default-budget answers ({n})")
    c_int8 = compose_kv(lm, int8, recompute=DEFAULT_RECOMPUTE)
    int8_answers = answers_of(lm, lambda: c_int8.to_cache(lm), prompts, 16, default_answers)
    stage(f"int8 answers ({n})")
    same16 = sum(a[:16] == b for a, b in zip(default_answers, int8_answers, strict=True))
    emit(
        f"| int8 vs float32 caches, composed: first 16 greedy tokens identical | {same16}/{n} "
        f"({same16 / n:.0%}) | ≥ 95% |"
    )
    d_recall = recall_of(default_answers)
    d_same = sum(a[0] == b[0] for a, b in zip(default_answers, full_answers, strict=True))
    emit(
        f"| default recompute ({DEFAULT_RECOMPUTE:.0%}), all {n} questions: recall / first "
        f"token = full prefill | {d_recall}/{n} ({d_recall / n:.0%}) vs full "
        f"{full_recall / n:.0%}; {d_same}/{n} ({d_same / n:.0%}) | within 5 points; ≥ 90% |"
    )
    emit()
    emit(f"Recompute curve (3 packs composed vs full prefill of the same token ids; first "
         f"{curve_n} questions):")  # fmt: skip
    emit()
    emit("| recompute budget | compose s | tokens recomputed | first token = full | recall "
         "| full prefill recall |")  # fmt: skip
    emit("|---|---|---|---|---|---|")
    full_c = full_answers[:curve_n]
    for budget in BUDGETS:
        start = time.perf_counter()
        composed = compose_kv(lm, raw, recompute=budget)
        compose_s = time.perf_counter() - start
        if budget == DEFAULT_RECOMPUTE:
            got = default_answers[:curve_n]
        else:
            got = answers_of(lm, functools.partial(composed.to_cache, lm), prompts[:curve_n],
                             RECALL_TOKENS, full_c)  # fmt: skip
        stage(f"budget {budget}")
        same = sum(a[0] == b[0] for a, b in zip(got, full_c, strict=True))
        recall, f_recall = recall_of(got), recall_of(full_c)
        emit(
            f"| {budget:.0%} | {compose_s:.3f} | {composed.recomputed} | {same}/{curve_n} "
            f"({same / curve_n:.0%}) | {recall}/{curve_n} ({recall / curve_n:.0%}) "
            f"| {f_recall}/{curve_n} ({f_recall / curve_n:.0%}) |"
        )
    after = os.getloadavg()
    emit()
    for note in _notes:
        emit(note)
        emit()
    emit(f"Load average at the end: {after[0]:.2f} / {after[1]:.2f} / {after[2]:.2f}; the run "
         f"took {time.perf_counter() - _T0:.0f} s.")  # fmt: skip


def _fit(lm: LoadedModel, tpl: PromptTemplate, texts: list[str], tokens: int) -> list[str]:
    out: list[str] = []
    for text in texts:
        out.append(text)
        if len(prefix_segments(lm, tpl, out)[3]) >= tokens:
            break
    return out


if __name__ == "__main__":
    main()
