"""Resolve under load (issues 12 and 17): req/s and latency of ``GET /api/v1/resolve`` on 2 cores.

Not a test: run by hand; the lead copies the figures into bench/RESULTS.md. Everything is real
and local: PostgreSQL 18 (embedded, its own folder), the registry's migrations and services
(packs published through ``pack_publish``, so the transparency log holds them), gunicorn on
127.0.0.1 serving ``server.wsgi``.

Two rows, each after a warm-up, for a fixed duration at a fixed number of clients, each run
twice: closed loop (every client sends its next request as soon as the last is answered: the
most the server can do) and open loop at ``--rate`` (300/s: the issues' rate, scheduled, with
latency counted from the scheduled start). With 32 closed-loop clients the mean latency is
32 / throughput (Little's law): p99 <= 100 ms there needs well over 320 req/s, so the p99
target is read from the open-loop row.

* ``resolve``: ``GET /api/v1/resolve/bench/notes?spec=^1.0`` (a range over several versions,
  yanked and deleted ones among them), what ``memos install bench/notes@^1.0`` asks first.
* ``install``: the sequence an install makes before downloading
  (:mod:`runtime.transparency.install_check`): resolve, the signed tree head, and the inclusion
  proof of the manifest in that head. Resolve itself carries no proof; the proof is two more
  requests. Reported per request and per sequence.

The load generator is this process: one thread per client, each with one keep-alive
``http.client`` connection (no per-request client), so it is cheap, but it still competes with
gunicorn for the same cores: the output says so, with ``os.getloadavg()`` before and after.

gunicorn: ``--workers 2 --worker-class gthread --threads 4`` by default: one process per core
(the interpreter lock makes threads share one core), and a few threads each so that one
request's database round trips overlap another's Python; gthread keeps connections alive.

CPU per resolve without gunicorn or clients (single thread, does not need a quiet machine):
:mod:`bench.resolve_profile`, on the same packs.

Run:  nice -n 19 .venv/bin/python bench/resolve_load.py --seconds 10
      [--clients 32] [--warmup 3] [--workers 2] [--threads 4] [--rows resolve,install]
      [--rate 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(os.environ.get("MEMSTORE_BENCH_DIR") or ROOT / "var" / "bench-resolve")
NAMESPACE, NAME, SPEC = "bench", "notes", "^1.0"
VERSIONS = ("0.9.0", "1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "2.0.0")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def setup_django() -> str:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "server.settings"
    os.environ["MEMSTORE_DATA_DIR"] = str(BENCH)  # same secret key and blobs as gunicorn's
    os.environ["MEMSTORE_STORAGE"] = "local"
    from server.embedded import start_embedded_postgres

    url = os.environ.get("MEMSTORE_BENCH_DATABASE_URL") or start_embedded_postgres(
        BENCH / "pg", cleanup_mode="stop"
    )
    os.environ["DATABASE_URL"] = url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


def publish() -> dict[str, Any]:
    """``bench/notes`` in several versions (one yanked, one deleted), once per data folder."""
    from memstore.accounts.actor import system_actor
    from memstore.ingest import tasks as ingest_tasks
    from memstore.packs.models import PackVersion
    from memstore.packs.services import pack_publish, version_yank
    from memstore.testing.factories import publisher
    from memstore.testing.packs import build_pack

    existing = PackVersion.objects.filter(pack__namespace__name=NAMESPACE, pack__name=NAME)
    if existing.count() == len(VERSIONS):
        return {"published": "cached", "versions": len(VERSIONS)}
    user, _, key = publisher(NAMESPACE, "bench")
    actor = system_actor(user)
    ingest_tasks.ingest_enqueue = lambda **_: None  # no worker here
    memories = [f"Memory {i}: the notes a team keeps about its build, part {i}." for i in range(40)]
    with tempfile.TemporaryDirectory() as tmp:
        for version in VERSIONS:
            pack_file = build_pack(
                Path(tmp), name=f"{NAMESPACE}/{NAME}", version=version, keys=[key],
                memories=memories, keywords=["build", "notes"],
            )  # fmt: skip
            pack_publish(actor=actor, pack_file=pack_file)
    # A yanked 1.4.0 and a deleted 1.3.0 make the range pick 1.2.0 and skip two on the way.
    yanked = PackVersion.objects.get(pack__name=NAME, version="1.4.0")
    version_yank(actor=actor, version=yanked, reason="benchmark: a yanked version")
    from django.utils import timezone

    PackVersion.objects.filter(pack__name=NAME, version="1.3.0").update(deleted_at=timezone.now())
    return {"published": "now", "versions": len(VERSIONS)}


def start_gunicorn(url: str, workers: int, threads: int) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=url,
        # One loopback address is every client here: no limit, and a 1 s window keeps the
        # throttle's history (pickled into the cache per request) as short as a real one.
        MEMSTORE_THROTTLE_ANON="1000000/s",
        MEMSTORE_THROTTLE_USER="1000000/s",
        MEMSTORE_THROTTLE_METADATA="1000000/s",  # tree heads and proofs have their own rate
        MEMSTORE_STORAGE="local",
        MEMSTORE_DATA_DIR=str(BENCH),
    )
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "server.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads),
            "--keep-alive", "30", "--backlog", "256", "--log-level", "warning",
        ],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    for _ in range(240):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/log/tree-head")
            if conn.getresponse().status == 200:
                conn.close()
                return server, port
        except OSError:
            time.sleep(0.25)
    server.terminate()
    raise SystemExit("gunicorn did not answer within a minute")


# ------------------------------------------------------------------------ load generator

Step = Callable[[http.client.HTTPConnection, dict[str, Any]], bool]


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Accept": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def resolve_step(conn: http.client.HTTPConnection, state: dict[str, Any]) -> bool:
    status, body = _get(conn, f"/api/v1/resolve/{NAMESPACE}/{NAME}?spec={quote(SPEC)}")
    if status != 200:
        return False
    state["manifest_sha256"] = json.loads(body)["manifest_sha256"]
    return True


def tree_head_step(conn: http.client.HTTPConnection, state: dict[str, Any]) -> bool:
    status, body = _get(conn, "/api/v1/log/tree-head")
    if status != 200:
        return False
    state["size"] = json.loads(body)["size"]
    return True


def inclusion_step(conn: http.client.HTTPConnection, state: dict[str, Any]) -> bool:
    path = (
        f"/api/v1/log/proof/inclusion?size={state['size']}"
        f"&manifest_sha256={state['manifest_sha256']}"
    )
    status, _ = _get(conn, path)
    return status == 200


ROWS: dict[str, list[Step]] = {
    "resolve": [resolve_step],
    "install": [resolve_step, tree_head_step, inclusion_step],
}


def run_load(
    port: int, steps: list[Step], clients: int, warmup: float, seconds: float, rate: float = 0
) -> dict[str, Any]:
    """``clients`` threads repeat ``steps`` for ``warmup + seconds``; only the last part counts.

    ``rate`` 0: closed loop, each client starts its next sequence when the last one ends (the
    most the server can do; mean latency is then ``clients / throughput``, Little's law).
    ``rate`` > 0: open loop, sequences start on a fixed schedule of ``rate`` requests per second
    in all (``rate / len(steps)`` sequences), and a latency counts from the scheduled start,
    so a server that falls behind shows it in the percentiles (no coordinated omission).
    """
    begin = time.perf_counter()
    measure_from, stop_at = begin + warmup, begin + warmup + seconds
    interval = clients * len(steps) / rate if rate else 0.0
    request_s: list[list[float]] = [[] for _ in range(clients)]
    sequence_s: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine_req, mine_seq = request_s[i], sequence_s[i]
        due = begin + interval * i / clients  # the clients' schedules interleave
        while True:
            if interval:
                time.sleep(max(0.0, due - time.perf_counter()))
                t_seq, due = due, due + interval
            else:
                t_seq = time.perf_counter()
            if t_seq >= stop_at:
                break
            state: dict[str, Any] = {}
            counted = t_seq >= measure_from
            ok = True
            for n, step in enumerate(steps):
                t0 = t_seq if n == 0 else time.perf_counter()
                try:
                    ok = step(conn, state)
                except (OSError, http.client.HTTPException, ValueError, KeyError):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if counted:
                    mine_req.append(time.perf_counter() - t0)
                if not ok:
                    break
            if counted:
                if ok:
                    mine_seq.append(time.perf_counter() - t_seq)
                else:
                    errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, measure_from - time.perf_counter()))
    load_start = os.getloadavg()
    cpu_start = time.process_time()
    for t in threads:
        t.join()
    wall = time.perf_counter() - measure_from
    requests = [x for per in request_s for x in per]
    sequences = [x for per in sequence_s for x in per]
    return {
        "mode": f"open loop, {rate:g} req/s scheduled" if rate else "closed loop",
        "clients": clients,
        "seconds": round(wall, 2),
        "requests": len(requests),
        "errors": sum(errors),
        "req_per_s": round(len(requests) / wall, 1),
        "p50_ms": round(pct(requests, 50) * 1000, 1) if requests else None,
        "p95_ms": round(pct(requests, 95) * 1000, 1) if requests else None,
        "p99_ms": round(pct(requests, 99) * 1000, 1) if requests else None,
        "sequences_per_s": round(len(sequences) / wall, 1),
        "sequence_p99_ms": round(pct(sequences, 99) * 1000, 1) if sequences else None,
        # The generator's own share of the cores it shares with gunicorn.
        "load_generator_cpu_s": round(time.process_time() - cpu_start, 2),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rows", default="resolve,install")
    parser.add_argument(
        "--rate", type=float, default=300,
        help="also run each row open loop at this many requests/s in all (0: closed loop only)",
    )  # fmt: skip
    args = parser.parse_args()
    url = setup_django()
    print(json.dumps(publish()), flush=True)
    from django.db import connections

    connections.close_all()
    server, port = start_gunicorn(url, args.workers, args.threads)
    report: dict[str, Any] = {
        "cores": os.cpu_count(),
        "gunicorn": f"{args.workers} workers x {args.threads} threads (gthread), 127.0.0.1",
        "note": "the load generator runs on the same cores as gunicorn (see load_generator_cpu_s)",
        "spec": f"{NAMESPACE}/{NAME}@{SPEC}",
        "loadavg_before": os.getloadavg(),
    }
    try:
        for row in args.rows.split(","):
            for label, rate in ((row, 0.0), (f"{row}@{args.rate:g}/s", args.rate)):
                if label != row and not rate:
                    continue
                result = run_load(port, ROWS[row], args.clients, args.warmup, args.seconds, rate)
                report[label] = result
                print(json.dumps({label: result}), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(report, indent=2), flush=True)


if __name__ == "__main__":
    main()
