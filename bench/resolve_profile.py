"""CPU per resolve, in-process and single-threaded (issue 17): requests/s and a cProfile top 25.

Not a load test (that is :mod:`bench.resolve_load`, gunicorn and 32 clients): this calls the
WSGI application itself, one request after another, so it measures the Python and database
round trips one resolve costs, and does not need a quiet machine; compare figures taken in
the same run (or at least with the same ``uptime``). The database and packs are
:mod:`bench.resolve_load`'s (embedded PostgreSQL, ``bench/notes`` in seven versions, one
yanked, one deleted), so the request is the same ``GET /api/v1/resolve/bench/notes?spec=^1.0``.

It prints the CPU this process spent per request and the CPU the PostgreSQL backend serving
its connection spent (on 2 cores both count against gunicorn's throughput), then cProfile's
top functions. Every request comes from one address, as in the load bench, so after the first
the download count is already made (:mod:`memstore.packs.resolve_counts`).

Run:  nice -n 19 .venv/bin/python bench/resolve_profile.py [-n 2000] [--no-profile]
      [--token]  (resolve as a signed-in publisher, Bearer token, instead of anonymously)
      [--sort tottime] [--top 25] [--dump body.json]  (the first answer's bytes)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Its own data folder (and embedded PostgreSQL), so a load bench can run beside it.
os.environ.setdefault("MEMSTORE_BENCH_DIR", str(ROOT / "var" / "bench-resolve-profile"))

from bench.resolve_load import NAME, NAMESPACE, SPEC, publish, setup_django  # noqa: E402


def _environ(path: str, query: str, headers: dict[str, str]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def _token() -> str:
    from memstore.accounts.models import User
    from memstore.accounts.services import api_token_create

    user = User.objects.get(username="bench")
    _, raw = api_token_create(user=user, name="profile", scopes=["read"])
    return str(raw)


def _backend() -> Any:
    import psutil
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return psutil.Process(cursor.fetchone()[0])


def _cpu(process: Any) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--token", action="store_true")
    parser.add_argument("--sort", default="cumulative", help="pstats order (tottime, ...)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", type=Path, help="write the first answer's body here")
    args = parser.parse_args()
    os.environ.setdefault("MEMSTORE_THROTTLE_ANON", "1000000/s")
    os.environ.setdefault("MEMSTORE_THROTTLE_USER", "1000000/s")
    setup_django()
    print(json.dumps(publish()), flush=True)
    from server.wsgi import application

    headers = {"Authorization": f"Bearer {_token()}"} if args.token else {}
    path, query = f"/api/v1/resolve/{NAMESPACE}/{NAME}", f"spec={SPEC.replace('^', '%5E')}"
    statuses: list[str] = []

    def start_response(status: str, _headers: list[Any], *_: Any) -> None:
        statuses.append(status)

    def once() -> bytes:
        chunks = application(_environ(path, query, headers), start_response)
        try:
            return b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()

    body = once()
    assert statuses[-1].startswith("200"), (statuses[-1], body[:300])
    if args.dump:
        args.dump.write_bytes(body)
    for _ in range(200):  # warm-up: caches, connection, imports
        once()
    statuses.clear()
    backend = _backend()  # the PostgreSQL process serving this connection: its CPU counts too
    load = os.getloadavg()
    t0 = time.perf_counter()
    cpu0, pg0 = time.process_time(), _cpu(backend)
    for _ in range(args.n):
        once()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    pg = _cpu(backend) - pg0
    bad = [s for s in statuses if not s.startswith("200")]
    print(
        json.dumps(
            {
                "requests": args.n,
                "errors": len(bad),
                "req_per_s": round(args.n / wall, 1),
                "ms_per_request": round(wall / args.n * 1000, 3),
                "cpu_ms_per_request": round(cpu / args.n * 1000, 3),
                "postgres_cpu_ms_per_request": round(pg / args.n * 1000, 3),
                "body_bytes": len(body),
                "token": args.token,
                "loadavg": load,
            }
        ),
        flush=True,
    )
    if args.no_profile:
        return
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(min(args.n, 1000)):
        once()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
