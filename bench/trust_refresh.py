"""What the TUF index costs a warm install of a small pack (issue 12: <= 10 ms + one round trip).

A registry serving a TUF index (``tests/trust/malicious_registry.py``'s
honest mode: the registry's own ``memstore.tuf.repository`` builder) runs in a
thread behind a real HTTP server on 127.0.0.1, with ``--versions`` versions of
``acme/tips`` in its namespace role. A client installs the newest once (pins
the root, caches the metadata); then, ``--runs`` times, interleaved:

* **warm install, index**: ``Installer.install("acme/tips")`` of the same version
  (what ``memos install`` / ``memos upgrade`` does when nothing changed), with its
  index step broken down: refresh (timestamp, one round trip), lookup + versions,
  namespace keys (pins), signature check at publication time;
* **one round trip**: a bare ``GET /api/v1/tuf/timestamp.json`` on the same client
  (the part of the refresh that is the network);
* **warm install, no index**: the same against the same registry serving no TUF
  files (the path of a registry that predates the index).

The index's own cost is refresh - round trip + lookup + keys + check; round trips
are counted by the fetcher. Medians. Run:

    .venv/bin/python bench/trust_refresh.py --runs 30 --versions 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol import SigningKey
from runtime.client import RegistryClient
from runtime.engine.embedding import HashEmbedder
from runtime.engine.engine import Engine
from runtime.install import Installer
from runtime.install import trust as trust_rules
from runtime.tests.helpers import build_pack
from tests.trust.malicious_registry import TufRegistry


def serve(sim: TufRegistry) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            response = sim.handle(httpx.Request("GET", f"http://x{self.path}"))
            body = response.read()
            self.send_response(response.status_code)
            kind = response.headers.get("content-type", "application/json")
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class Timed:
    """Wraps the index steps of one install to time them."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.requests: list[int] = []

    def add(self, name: str, seconds: float) -> None:
        self.times.setdefault(name, []).append(seconds * 1000)


def instrument(timed: Timed) -> None:
    from runtime.install import indexed
    from runtime.trust_index import index as index_mod

    def wrap(owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timed.add(label, time.perf_counter() - start)

        setattr(owner, attr, timed_call)

    wrap(index_mod.TrustIndex, "refresh", "refresh")
    wrap(index_mod.TrustIndex, "lookup", "lookup")
    wrap(index_mod.TrustIndex, "versions", "versions")
    wrap(index_mod.TrustIndex, "publisher_keys", "keys")
    wrap(indexed, "trust_indexed", "check")
    wrap(indexed, "check_indexed", "check_answer")
    assert trust_rules  # the rules module is the one indexed imports from


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--versions", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trust-bench-"))
    key = SigningKey.from_seed(b"b" * 32)
    sim = TufRegistry(now=datetime.now(UTC) - timedelta(minutes=1))
    sim.add_key("acme", key.public_key)
    bare = TufRegistry(now=sim.now)
    bare.add_key("acme", key.public_key)
    for i in range(args.versions):
        pack = build_pack(work / f"v{i}", name="acme/tips", version=f"1.{i}.0", keys=[key],
                          memories=[f"tip {i}"], mip_version="2.0")  # fmt: skip
        sim.publish(pack)
        bare.publish(pack)
    bare.repo.files.clear()
    server, url = serve(sim)
    bare_server, bare_url = serve(bare)
    os.environ["MEMOS_EMBEDDER"] = "hash"
    home = work / "home"
    engine = Engine(home, embedder=HashEmbedder(), maintain_every=None)
    installer = Installer(home, engine)
    installer.install("acme/tips", registry=url)  # pins, caches the metadata
    bare_home = work / "bare-home"
    bare_engine = Engine(bare_home, embedder=HashEmbedder(), maintain_every=None)
    bare_installer = Installer(bare_home, bare_engine)
    bare_installer.install("acme/tips", registry=bare_url)
    timed = Timed()
    instrument(timed)
    with_index, without, rtt, trips = [], [], [], []
    for _ in range(args.runs):
        sim.tuf_requests.clear()
        start = time.perf_counter()
        installer.install("acme/tips", registry=url)
        with_index.append((time.perf_counter() - start) * 1000)
        trips.append(sum(1 for r in sim.tuf_requests))
        with RegistryClient(url) as client:
            with client.stream("api/v1/tuf/timestamp.json") as response:  # warm the connection
                response.read()
            start = time.perf_counter()
            with client.stream("api/v1/tuf/timestamp.json") as response:
                response.read()
            rtt.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        bare_installer.install("acme/tips", registry=bare_url)
        without.append((time.perf_counter() - start) * 1000)
    med = statistics.median
    steps = {name: med(values) for name, values in timed.times.items()}
    own = steps["refresh"] - med(rtt) + sum(v for k, v in steps.items() if k != "refresh")
    print(f"load average: {os.getloadavg()}")
    print(f"versions in the namespace role: {args.versions}, runs: {args.runs}")
    print(f"warm install with index:    {med(with_index):7.2f} ms")
    print(f"warm install without index: {med(without):7.2f} ms")
    print(
        f"TUF metadata requests per warm install: {med(trips):.0f} "
        "(the root probe and timestamp.json go out together: one round trip of wall time)"
    )
    print(f"one round trip (timestamp.json): {med(rtt):7.2f} ms")
    for name, value in steps.items():
        print(f"  {name:13s} {value:7.2f} ms")
    print(f"index cost beyond the round trip: {own:7.2f} ms")
    server.shutdown()
    bare_server.shutdown()
    engine.close()
    bare_engine.close()


if __name__ == "__main__":
    main()
