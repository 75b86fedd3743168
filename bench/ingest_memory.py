"""Ingest worker memory (issue 17): peak RSS of one ingestion at 10k, 20k and 100k memories.

Not a test: run by hand, results go to bench/RESULTS.md. The goal it checks: the
memory of an ingest worker stays flat (within 10 %) from a 10k-memory to a
100k-memory pack, because ingestion streams records in batches
(``memstore.ingest.pipeline``) instead of holding the version in memory.

What runs, all real and local: PostgreSQL 18 + pgvector (embedded, started and
migrated by ``registry_bench.setup_django`` in ``var/bench/ingest-memory/pg``),
local blob storage in ``var/bench/ingest-memory/blobs`` (``MEMSTORE_STORAGE=local``),
packs built and signed with the protocol's builder (``memstore.testing.packs``) and
published with ``pack_publish``. The memories are real sentences (docstrings of the
installed Python packages, ``registry_corpus.sentences``; ~97 chars on average),
listed once and cached in ``ingest_sentences.json``; the smaller packs are prefixes
of the larger one.

Each version is ingested in a FRESH child process (this script with ``--child``)
that sets Django up as the worker does (``server.celery`` loaded, the tasks
imported, a database connection open) and calls the Celery task function itself,
``memstore.ingest.tasks.ingest_version`` (claim, stream, embed, write, finish),
with the shipped batch size. Two embedders:

* ``stub``: a fixed-cost deterministic stand-in (the fault tests' one: one-hot
  vectors, no model loaded), so the figure is the pipeline's own memory;
* ``real``: all-MiniLM-L6-v2 (``search.embedding``), loaded before the baseline;
  10k and 20k only (50-200 sentences/s on 2 cores, by load: 100k would take 10-40 min).

Measured per child: ``base`` = VmRSS after imports (and model load), before the
ingestion; ``ing. peak`` = VmHWM of the ingestion alone (reset through
/proc/self/clear_refs just before it); ``peak`` = the child's lifetime peak, the larger
of the VmHWM before the reset and ``ing. peak``; growth = ing. peak - base. Not
ru_maxrss: a child's ru_maxrss (``os.wait4``, RUSAGE_CHILDREN) starts from the
*parent's* high-water mark at fork (Linux keeps the pre-exec hiwater), and the parent
holds the corpus, so it reads the parent's size (kept in the JSON as
``wait4_maxrss_kb``, for the record). Also: the wall time of the task; the rows the
index holds for the version afterwards (must equal the memories). Not measured:
PostgreSQL's memory (another process), the publish side, throughput under load. RSS
figures do not depend on CPU load, but the load average is printed anyway. Rows are
deleted after each measurement so the index (and its HNSW inserts) does not grow.

Run:  nice -n 19 .venv/bin/python bench/ingest_memory.py
      [--sizes 10000,20000,100000] [--real-sizes 10000,20000] (``--real-sizes ''``: none)
Output: a table, and var/bench/ingest_memory.json
(``MEMSTORE_BENCH_DIR`` moves the folder, and the JSON into it).
Small check:  MEMSTORE_BENCH_DIR=/tmp/im nice -n 19 .venv/bin/python bench/ingest_memory.py \\
      --sizes 500,2000 --real-sizes 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if os.environ.get("MEMSTORE_BENCH_DIR"):
    BENCH = Path(os.environ["MEMSTORE_BENCH_DIR"])
    JSON_OUT = BENCH / "ingest_memory.json"
else:
    BENCH = ROOT / "var" / "bench" / "ingest-memory"
    JSON_OUT = ROOT / "var" / "bench" / "ingest_memory.json"
    os.environ["MEMSTORE_BENCH_DIR"] = str(BENCH)  # registry_bench's setup_django reads it


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


# --------------------------------------------------------------------------- the child


def child(version_id: int, embedder: str) -> None:
    """One ingestion, as the worker runs it; prints one JSON line of figures."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import numpy as np

    import server.celery  # noqa: F401  # the worker's app, as `celery -A server` loads it
    from memstore.ingest import pipeline, services, tasks
    from memstore.ingest.models import IngestJob
    from memstore.search.embedding import DIMENSION, embed

    if embedder == "stub":

        def stub(texts: Any, **_: Any) -> Any:  # the fault tests' stand-in (fault_worker.py)
            out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
            for i, text in enumerate(texts):
                out[i, sum(text.encode()) % DIMENSION] = 1.0
            return out

        pipeline.embed = stub  # type: ignore[assignment]
        services.embed = stub  # type: ignore[assignment]
    else:
        embed(["warm up the model"])  # loaded (and its first-call buffers) before the baseline
    IngestJob.objects.filter(version_id=version_id).exists()  # the connection, open
    base_kb = _status_kb("VmRSS")
    hwm_setup_kb = _status_kb("VmHWM")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)
        reset = True
    except OSError:
        reset = False
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not done.wait(0.1):
            samples.append((round(time.perf_counter() - t0, 2), _status_kb("VmRSS")))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = tasks.ingest_version(version_id)  # the task function the worker calls
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    step = max(1, len(samples) // 40)
    print(
        json.dumps(
            {
                "result": result,
                "ingest_s": seconds,
                "base_kb": base_kb,
                "setup_hwm_kb": hwm_setup_kb,
                "ingest_hwm_kb": _status_kb("VmHWM"),
                "hwm_reset": reset,
                "end_rss_kb": _status_kb("VmRSS"),
                "rss_trace": samples[::step],
            }
        ),
        flush=True,
    )


def run_child(version_id: int, embedder: str) -> dict[str, Any]:
    """Ingest in a fresh process; its figures, plus its lifetime peak RSS from ``wait4``."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(version_id), "--embedder", embedder],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"ingestion child failed ({proc.returncode}): {out[-2000:]!r}")
    figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    # Not the peak: it starts from this process's high-water mark at fork (see above).
    figures["wait4_maxrss_kb"] = usage.ru_maxrss
    figures["peak_kb"] = max(figures["setup_hwm_kb"], figures["ingest_hwm_kb"])
    if not figures["hwm_reset"]:  # no reset: VmHWM covers the whole life, setup included
        figures["peak_kb"] = figures["ingest_hwm_kb"]
    return figures


# --------------------------------------------------------------------------- the parent


def corpus(size: int) -> list[str]:
    cache = BENCH / "ingest_sentences.json"
    if cache.exists():
        texts: list[str] = json.loads(cache.read_text("utf-8"))
        if len(texts) >= size:
            return texts[:size]
    sys.path.insert(0, str(ROOT / "bench"))
    from registry_corpus import sentences

    texts = sentences(size)
    BENCH.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(texts), encoding="utf-8")
    return texts


def publish(variant: str, sizes: list[int], texts: list[str]) -> dict[int, int]:
    """One version per size (a pack of its own, named for this run); size -> version id."""
    from memstore.accounts.actor import system_actor
    from memstore.ingest import tasks as ingest_tasks
    from memstore.packs.services import pack_publish
    from memstore.testing.factories import publisher
    from memstore.testing.packs import build_pack

    ingest_tasks.ingest_enqueue = lambda **_: None  # type: ignore[assignment]  # the children run it
    user, _, key = publisher("bench", "bench")
    actor = system_actor(user)
    run = time.strftime("%Y%m%d%H%M%S")
    versions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            t0 = time.perf_counter()
            name = f"bench/ingest-mem-{run}-{variant}-{size}"
            pack_file = build_pack(Path(tmp), name=name, keys=[key], memories=texts[:size])
            versions[size] = pack_publish(actor=actor, pack_file=pack_file).pk
            pack_file.unlink()
            print(f"published {size} memories in {time.perf_counter() - t0:.1f}s", flush=True)
    return versions


def rows_of(version_id: int, *, delete: bool) -> int:
    from django.db import connection

    from memstore.search.models import IndexedMemory

    table = IndexedMemory._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE version_id = %s", [version_id])
        count = int(cursor.fetchone()[0])
        if delete:  # out of the next measurement's way (the HNSW index stays small)
            cursor.execute(f"DELETE FROM {table} WHERE version_id = %s", [version_id])
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,20000,100000")
    parser.add_argument("--real-sizes", default="10000,20000")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--embedder", default="stub", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.embedder)
        return
    stub_sizes = [int(s) for s in args.sizes.split(",") if s]
    real_sizes = [int(s) for s in args.real_sizes.split(",") if s]
    sizes = sorted(set(stub_sizes + real_sizes))
    load_start = os.getloadavg()
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    os.environ["MEMSTORE_DATA_DIR"] = str(BENCH)  # blobs in BENCH/blobs, for the children too
    os.environ["MEMSTORE_STORAGE"] = "local"
    # Docstrings talk about passwords and keys: the publish-time scan would refuse a few
    # of the 100k sentences ("looks like a secret"). It still runs; it does not refuse.
    os.environ["MEMSTORE_REFUSE_SECRETS"] = "0"
    sys.path.insert(0, str(ROOT / "bench"))
    from registry_bench import setup_django

    os.environ["DATABASE_URL"] = setup_django()  # children reach the same server
    from django.conf import settings

    from memstore.ingest.pipeline import batch_size

    t0 = time.perf_counter()
    texts = corpus(max(sizes))
    print(f"{len(texts)} sentences in {time.perf_counter() - t0:.1f}s", flush=True)
    # (variant, size): each needs a version of its own (a done job is not rerun).
    plan = [("stub", s) for s in stub_sizes] + [("real", s) for s in real_sizes]
    versions: dict[tuple[str, int], int] = {}
    for variant in ("stub", "real"):
        wanted = [s for v, s in plan if v == variant]
        if wanted:
            for size, vid in publish(variant, wanted, texts).items():
                versions[(variant, size)] = vid
    results: list[dict[str, Any]] = []
    out = {
        "batch": batch_size(),
        "debug": settings.DEBUG,
        "mean_chars": sum(map(len, texts)) / len(texts),
        "load_start": load_start,
        "complete": False,  # written after each measurement: a stopped run keeps its figures
        "results": results,
    }
    JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
    for variant, size in plan:
        figures = run_child(versions[(variant, size)], variant)
        rows = rows_of(versions[(variant, size)], delete=True)
        figures.update(variant=variant, memories=size, rows=rows)
        assert figures["result"].get("status") == "done", figures["result"]
        assert rows == size, f"{rows} rows indexed for {size} memories"
        results.append(figures)
        JSON_OUT.write_text(json.dumps(out, indent=1), encoding="utf-8")
        print(
            f"  {variant} {size}: peak {figures['peak_kb'] / 1024:.0f} MB, "
            f"{figures['ingest_s']:.1f}s",
            flush=True,
        )
    load_end = os.getloadavg()
    print()
    print(
        f"{'embedder':<8} {'memories':>8} {'base MB':>8} {'peak MB':>8} {'ing.peak':>8} "
        f"{'growth':>7} {'ingest s':>8} {'rows':>7}"
    )
    for r in results:
        mb = {k: r[k] / 1024 for k in ("base_kb", "peak_kb", "ingest_hwm_kb")}
        print(
            f"{r['variant']:<8} {r['memories']:>8} {mb['base_kb']:>8.1f} {mb['peak_kb']:>8.1f} "
            f"{mb['ingest_hwm_kb']:>8.1f} {mb['ingest_hwm_kb'] - mb['base_kb']:>7.1f} "
            f"{r['ingest_s']:>8.1f} {r['rows']:>7}"
        )
    ratios: dict[str, dict[str, float]] = {}
    for variant in ("stub", "real"):
        mine = sorted((r for r in results if r["variant"] == variant), key=lambda r: r["memories"])
        if len(mine) >= 2:
            small, large = mine[0], mine[-1]
            key = f"{variant}_{large['memories']}_over_{small['memories']}"
            ratios[key] = {
                "peak": large["peak_kb"] / small["peak_kb"],
                "ingest_peak": large["ingest_hwm_kb"] / small["ingest_hwm_kb"],
            }
            print(
                f"{variant}: peak({large['memories']})/peak({small['memories']}) = "
                f"{ratios[key]['peak']:.3f} (ingestion peak: {ratios[key]['ingest_peak']:.3f})"
            )
    print(f"load average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    out.update(load_end=load_end, ratios=ratios, complete=True)
    JSON_OUT.write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(f"-> {JSON_OUT}")


if __name__ == "__main__":
    main()
