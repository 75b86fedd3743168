"""Transparency log benchmarks (issue 12): append latency (registry), proof checks (client).

Not a test: run by hand, results go to bench/RESULTS.md (section "Transparency log").

1. append: ``memstore.transparency.services.append_event`` inside a transaction
   that already writes one row (the event), as a publish pays it, on embedded
   PostgreSQL: the append alone, the transaction with it and without it (commit
   included); p50/p95/p99 over ``--appends`` appends after a warm-up.
2. serving: tree head (sign + root from the head row's right edge) and an inclusion proof at
   the final size, p50 per call (service level, no HTTP).
3. client: verifying one inclusion proof and one consistency proof
   (:mod:`protocol.merkle`) for logs of 10^3 and 10^6 entries (built in memory).

Run:  .venv/bin/python bench/tlog.py [--appends 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50) * 1e3:.2f} ms, p95 {pct(values, 95) * 1e3:.2f} ms, "
        f"p99 {pct(values, 99) * 1e3:.2f} ms"
    )


def setup_django(datadir: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "server.settings"
    from server.embedded import start_embedded_postgres

    os.environ["DATABASE_URL"] = start_embedded_postgres(datadir, cleanup_mode="stop")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def bench_append(n: int) -> None:
    from django.db import connection, transaction

    from memstore.transparency import services

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS tlog_bench_scratch (id serial, body bytea)")

    def event(i: int) -> None:
        # What a publish writes anyway, at least: one row.
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO tlog_bench_scratch (body) VALUES (%s)", [b"x" * 200])

    def append(i: int) -> None:
        services.append_event(
            kind="publish", namespace=f"ns{i % 50}", subject=f"{i:064x}",
            fields={"pack": f"ns{i % 50}/p", "version": f"1.0.{i}", "manifest_sha256": f"{i:064x}"},
        )  # fmt: skip

    def run(count: int, with_append: bool) -> tuple[list[float], list[float]]:
        inside, total = [], []
        for i in range(count):
            t0 = time.perf_counter()
            with transaction.atomic():
                event(i)
                if with_append:
                    t1 = time.perf_counter()
                    append(i)
                    inside.append(time.perf_counter() - t1)
            total.append(time.perf_counter() - t0)
        return inside, total

    run(200, True)  # warm-up
    alone, with_log = run(n, True)
    _, without = run(n, False)
    print(f"append_event alone, inside the event's transaction ({n}): {ms(alone)}")
    print(f"event transaction with the append, commit included: {ms(with_log)}")
    print(f"event transaction without it (one INSERT + commit): {ms(without)}")
    size = services.log_size()
    same = services.tree_head().root_hash == services.root_hash(size)
    print(f"head row's root equals the root from stored subtrees: {same}")
    heads = []
    proofs = []
    for i in range(200):
        t0 = time.perf_counter()
        services.tree_head()
        heads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        services.inclusion_proof(size=size, leaf=(i * 7919) % size)
        proofs.append(time.perf_counter() - t0)
    print(f"tree head (sign, root from the head row): {ms(heads)}")
    print(f"inclusion proof at size {size}: {ms(proofs)}")


def bench_client() -> None:
    from protocol import merkle as m

    for n in (1000, 1_000_000):
        nodes: dict[tuple[int, int], bytes] = {}
        for i in range(n):
            nodes[(0, i)] = m.leaf_hash(b"entry %d" % i)
            for level, index in m.perfect_nodes_completed_by(i):
                nodes[(level, index)] = m.node_hash(
                    nodes[(level - 1, 2 * index)], nodes[(level - 1, 2 * index + 1)]
                )

        def get(level: int, index: int, nodes: dict[tuple[int, int], bytes] = nodes) -> bytes:
            return nodes[(level, index)]

        root, old = m.subtree_root(0, n, get), m.subtree_root(0, n - 17, get)
        path = m.inclusion_path(n // 3, n, get)
        proof = m.consistency_path(n - 17, n, get)
        inc, con = [], []
        for _ in range(2000):
            t0 = time.perf_counter()
            m.verify_inclusion(nodes[(0, n // 3)], n // 3, n, path, root)
            inc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            m.verify_consistency(n - 17, n, old, root, proof)
            con.append(time.perf_counter() - t0)
        print(
            f"client, log of {n}: inclusion verify p50 {pct(inc, 50) * 1e6:.0f} us "
            f"({len(path)} hashes), consistency verify p50 {pct(con, 50) * 1e6:.0f} us "
            f"({len(proof)} hashes)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--skip-client", action="store_true")
    args = parser.parse_args()
    print("load average:", os.getloadavg())
    # A data dir of its own (kept between runs: migrations are the slow part).
    setup_django(Path(os.environ.get("TLOG_BENCH_PG", tempfile.gettempdir() + "/tlog-bench-pg")))
    bench_append(args.appends)
    if not args.skip_client:
        bench_client()
    print("load average:", os.getloadavg())


if __name__ == "__main__":
    main()
