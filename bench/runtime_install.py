"""Install throughput of ``memos install`` as a ratio against a plain download of the same bytes.

A pack (plaintext memories + a parameter cube of random, incompressible
weights; ~``--mb`` MB) is served by a real HTTP server on 127.0.0.1
(``runtime.tests.fake_registry``: the resolve contract of memstore/API.md,
HTTP Range). In the same run, alternating, we time:

* **plain**: ``httpx`` streaming the pack URL into a file (no hashing, no checks);
* **download**: the installer's resumable download alone (streaming sha256, fsync, rename
  into the cache);
* **read_pack**: the protocol library's safe reader alone on the same file (gunzip, untar,
  every payload digest, extraction): the floor any verified install pays;
* **install**: a full ``Installer.install`` into a fresh MEMOS_HOME: resolve, signature check,
  download, ``read_pack`` (every limit, every payload digest), payloads into the cache,
  memories indexed (fake embedder: model time is measured in runtime_search.py), one SQLite commit.

Ratios are medians of ``--runs`` runs. Run:  .venv/bin/python bench/runtime_install.py [--mb 64]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protocol import SigningKey, read_pack  # noqa: E402
from runtime.cache import BlobCache  # noqa: E402
from runtime.client import RegistryClient  # noqa: E402
from runtime.download import download_blob  # noqa: E402
from runtime.engine.embedding import HashEmbedder  # noqa: E402
from runtime.engine.engine import Engine  # noqa: E402
from runtime.install import Installer  # noqa: E402
from runtime.tests.fake_registry import FakeRegistry  # noqa: E402
from runtime.tests.helpers import build_pack, lora_cube  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--memories", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="memos-install-bench-"))
    key = SigningKey.from_seed(b"b" * 32)
    memories = [
        f"Benchmark memory number {i}: the quick brown fox jumps over lazy dog {i % 97}."
        for i in range(args.memories)
    ]
    pack = build_pack(
        work,
        name="bench/big",
        keys=[key],
        memories=memories,
        extra_cubes=[lora_cube(floats=args.mb * 1024 * 1024 // 4)],
    )
    reg = FakeRegistry(chunk=256 * 1024)
    reg.add_key("bench", key.public_key)
    pub = reg.publish(pack)
    reg.start()
    url = f"{reg.url}/api/v1/blobs/{pub.sha256}?exp=0&sig=x"
    plain, download, install, verify = [], [], [], []
    try:
        for run in range(args.runs):
            target = work / f"plain-{run}"
            t0 = time.perf_counter()
            with (
                httpx.Client() as client,
                client.stream("GET", url) as response,
                open(target, "wb") as fh,
            ):
                for chunk in response.iter_bytes(256 * 1024):
                    fh.write(chunk)
            plain.append(time.perf_counter() - t0)
            assert target.stat().st_size == pub.size
            target.unlink()

            home = work / f"dl-{run}"
            t0 = time.perf_counter()
            with RegistryClient(reg.url) as client:
                download_blob(client, url, sha256=pub.sha256, size=pub.size, cache=BlobCache(home))
            download.append(time.perf_counter() - t0)
            shutil.rmtree(home)

            staging = work / f"read-{run}"
            t0 = time.perf_counter()
            read_pack(pack, target=staging)
            verify.append(time.perf_counter() - t0)
            shutil.rmtree(staging)

            home = work / f"home-{run}"
            t0 = time.perf_counter()
            engine = Engine(home, embedder=HashEmbedder(), maintain_every=None)
            result = Installer(home, engine).install("bench/big", registry=reg.url)
            engine.close()
            install.append(time.perf_counter() - t0)
            assert result.memories == args.memories + 1
            shutil.rmtree(home)
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    mb = pub.size / 1e6
    p, d, i = statistics.median(plain), statistics.median(download), statistics.median(install)
    v = statistics.median(verify)
    out = {
        "pack_mb": round(mb, 1),
        "memories": args.memories,
        "runs": args.runs,
        "plain_s": round(p, 3),
        "plain_mb_s": round(mb / p, 1),
        "download_s": round(d, 3),
        "download_mb_s": round(mb / d, 1),
        "install_s": round(i, 3),
        "install_mb_s": round(mb / i, 1),
        "read_pack_s": round(v, 3),
        "download_ratio": round(d / p, 2),
        "install_vs_plain_plus_read_pack": round(i / (p + v), 2),
        "install_ratio": round(i / p, 2),
        "all": {"plain": plain, "download": download, "read_pack": verify, "install": install},
    }
    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    (ROOT / "var" / "bench" / "runtime_install.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
