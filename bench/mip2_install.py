"""MIP 2 installs against plain transfers of the same bytes, in one run (issue 11).

A MIP 2 pack of ``--mb`` MB (one plaintext cube of ``--memories`` memories and
nine parameter cubes of random, incompressible LoRA weights, so ten content
blobs plus one LoRA config they share) is served over 127.0.0.1 by
``runtime.tests.fake_registry`` in a process of its own
(``bench/_serve_registry.py``: a registry never shares the client's interpreter
lock), with the resolve contract of memstore/API.md, per-blob URLs and HTTP
Range. Interleaved, ``--runs`` times, we time:

* **curl**: one ``curl`` process fetching every blob URL of the resolve answer (the
  same bytes, from the same server code path the installer uses), each to a file, one
  after another over one keep-alive connection (no checks at all);
* **curl + fsync**: the same, then each file fsynced: the same bytes made durable,
  the floor for an install that (like ours) fsyncs each blob before its rename;
* **curl + sha256sum**: the same, then one coreutils ``sha256sum`` over the files: the
  cheapest way a shell user gets verified bytes;
* **install**: ``Installer.install`` (what ``memos install`` runs) into a fresh
  ``MEMOS_HOME``: resolve, signature check on the manifest, every blob fetched
  (several at once) and hashed while it streams into the cache, payload
  contents checked, memories indexed (hash embedder: model time is measured in
  runtime_search.py), one SQLite commit. Its stages are timed from the
  installer's own stage callback: resolve + trust, fetch + hash, check + commit;
* **upgrade**: from 1.0.0 installed to 1.1.0, in which one of the ten blobs
  changed: time (with the same three stages), and bytes the registry sent, against
  the fresh install. The one changed blob is fetched by four streams taking its
  8 MiB pieces in order (``runtime.download_segments``); the unchanged memories
  file is carried over unread.

* **publish**: ``publish_blobs`` (what ``memos publish`` runs for a MIP 2 pack) of 1.0.0
  to an empty registry (``runtime.tests.fake_blob_uploads``: the blob-upload API of
  memstore/API.md, over a socket), then of 1.1.0: bytes uploaded and time, against the
  first publish.

Then, once (bytes do not vary): a pack carrying KV caches for three model
fingerprints, installed by an engine whose model is one of them: bytes fetched
against the blobs that model needs.

Run:  .venv/bin/python bench/mip2_install.py --mb 1024 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protocol import (  # noqa: E402
    SigningKey,
    manifest_blobs,
    pack_directory,
    read_pack,
    select_blobs,
)
from runtime.blob_publish import publish_blobs  # noqa: E402
from runtime.client import RegistryClient  # noqa: E402
from runtime.engine.embedding import HashEmbedder  # noqa: E402
from runtime.engine.engine import Engine  # noqa: E402
from runtime.install import Installer  # noqa: E402
from runtime.tests.fake_blob_uploads import BlobUploadRegistry  # noqa: E402
from runtime.tests.helpers import (  # noqa: E402
    fingerprint_digest_of,
    kv_cube,
    lora_cube,
    tiny_fingerprint,
    write_source,
)

NAME = "bench/big"


def _pack(work: Path, *, version: str, mb: int, memories: list[str], changed: int | None) -> Path:
    """The ten-blob pack; ``changed`` is the adapter whose weights differ from 1.0.0's."""
    floats = mb * 1024 * 1024 // 4 // 9
    cubes = [
        lora_cube(f"adapter-{i}", floats=floats, seed=i + (1000 if i == changed else 0))
        for i in range(9)
    ]
    source = write_source(
        work / f"src-{version}", name=NAME, version=version, memories=memories, extra_cubes=cubes
    )
    out = work / f"big-{version}.memcube"
    pack_directory(source, out, keys=[KEY], mip_version="2.0")
    shutil.rmtree(source)
    return out


KEY = SigningKey.from_seed(b"b" * 32)


class Stages:
    """Wall-clock marks from the installer's stage callback."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def __call__(self, message: str) -> None:
        self.marks.append((message, time.perf_counter()))

    def first(self, prefix: str) -> float | None:
        return next((t for m, t in self.marks if m.startswith(prefix)), None)


def _installer(home: Path, stages: Callable[[str], None] | None = None, **kw: Any) -> Installer:
    engine = Engine(home, embedder=HashEmbedder(), maintain_every=None)
    return Installer(home, engine, on_stage=stages, **kw)


def _sent(url: str) -> int:
    """Bytes the registry process has sent, all blobs together."""
    return sum(httpx.get(f"{url}/_test/blob-bytes").json().values())


def _serve(*packs: Path) -> tuple[subprocess.Popen[str], str]:
    """The test registry serving ``packs`` in its own process (bench/_serve_registry.py)."""
    argv = [sys.executable, str(ROOT / "bench" / "_serve_registry.py"), "bench",
            KEY.public_key.to_text(), *map(str, packs)]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _curl(urls: list[str], folder: Path) -> tuple[float, list[Path]]:
    folder.mkdir()
    files = [folder / f"blob-{i}" for i in range(len(urls))]
    argv = ["curl", "-sSf"]
    for url, target in zip(urls, files, strict=True):
        argv += [url, "-o", str(target)]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - t0, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--memories", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kv-mb", type=int, default=100, help="size of each of the 3 KV caches")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="memos-mip2-bench-"))
    memories = [
        f"Benchmark memory number {i}: the quick brown fox jumps over lazy dog {i % 97}."
        for i in range(args.memories)
    ]
    print(f"building packs of ~{args.mb} MB in {work} ...", file=sys.stderr)
    v1 = _pack(work, version="1.0.0", mb=args.mb, memories=memories, changed=None)
    v2 = _pack(work, version="1.1.0", mb=args.mb, memories=memories, changed=4)
    kv_path, kv_configs = _kv_pack(work, memories, args.kv_mb)
    pack_size = v1.stat().st_size
    server, reg_url = _serve(v1, v2, kv_path)
    # The packs just written (~2 GB) are still being flushed; every row must start
    # from a quiet disk, or the first rows' fsyncs wait behind that writeback.
    os.sync()
    manifest1 = read_pack(v1).manifest
    blobs1 = manifest_blobs(manifest1)
    urls = [f"{reg_url}/api/v1/blobs/sha256/{b.sha256}" for b in blobs1]
    res: dict[str, list[float]] = {
        k: []
        for k in (
            "curl",
            "curl_fsync",
            "curl_sha",
            "install",
            "resolve",
            "fetch",
            "commit",
            "upgrade",
            "upgrade_resolve",
            "upgrade_fetch",
            "upgrade_commit",
            "upgrade_bytes",
            "install_bytes",
            "publish",
            "publish_delta",
            "publish_bytes",
            "publish_delta_bytes",
        )
    }
    try:
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}", file=sys.stderr)
            elapsed, files = _curl(urls, work / "curl")
            res["curl"].append(elapsed)
            # The same bytes made durable: the floor for any install that fsyncs.
            t0 = time.perf_counter()
            for path in files:
                fd = os.open(path, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
            res["curl_fsync"].append(elapsed + time.perf_counter() - t0)
            shutil.rmtree(work / "curl")
            elapsed, files = _curl(urls, work / "curl")
            t0 = time.perf_counter()
            out = subprocess.run(["sha256sum", *map(str, files)], check=True, capture_output=True)
            res["curl_sha"].append(elapsed + time.perf_counter() - t0)
            sums = [line.split()[0].decode() for line in out.stdout.splitlines()]
            assert sums == [b.sha256 for b in blobs1]
            shutil.rmtree(work / "curl")

            home = work / f"home-{run}"
            stages = Stages()
            before = _sent(reg_url)
            t0 = time.perf_counter()
            inst = _installer(home, stages)
            result = inst.install(f"{NAME}@1.0.0", registry=reg_url, everything=True)
            t1 = time.perf_counter()
            res["install"].append(t1 - t0)
            res["install_bytes"].append(_sent(reg_url) - before)
            fetch_at = stages.first("fetching") or t0
            check_at = stages.first("verifying") or t1
            res["resolve"].append(fetch_at - t0)
            res["fetch"].append(check_at - fetch_at)
            res["commit"].append(t1 - check_at)
            assert result.memories == args.memories + 9, result

            before = _sent(reg_url)
            stages.marks.clear()
            t0 = time.perf_counter()
            up = inst.upgrade([NAME], registry=reg_url, everything=True)
            t1 = time.perf_counter()
            res["upgrade"].append(t1 - t0)
            fetch_at = stages.first("fetching") or t0
            check_at = stages.first("verifying") or t1
            res["upgrade_resolve"].append(fetch_at - t0)
            res["upgrade_fetch"].append(check_at - fetch_at)
            res["upgrade_commit"].append(t1 - check_at)
            res["upgrade_bytes"].append(_sent(reg_url) - before)
            assert up[0].version == "1.1.0", up
            assert len(up[0].fetched) == 1, up
            inst.engine.close()
            shutil.rmtree(home)

            for key, value in _publish_delta(v1, v2).items():
                res[key].append(value)

        kv = _kv_partial(work, reg_url, kv_path, kv_configs)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in res.items()}
    mb = sum(b.size for b in blobs1) / 1e6
    out = {
        "pack_mb": round(pack_size / 1e6, 1),
        "blobs_mb": round(mb, 1),
        "blobs": len(blobs1),
        "memories": args.memories,
        "runs": args.runs,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "curl_s": round(med["curl"], 3),
        "curl_fsync_s": round(med["curl_fsync"], 3),
        "curl_sha256sum_s": round(med["curl_sha"], 3),
        "install_s": round(med["install"], 3),
        "install_mb_s": round(mb / med["install"], 1),
        "breakdown_s": {
            "resolve_trust": round(med["resolve"], 3),
            "fetch_hash": round(med["fetch"], 3),
            "check_commit": round(med["commit"], 3),
        },
        "install_vs_curl_sha256sum": round(med["install"] / med["curl_sha"], 3),
        "install_vs_curl": round(med["install"] / med["curl"], 3),
        "install_vs_curl_fsync": round(med["install"] / med["curl_fsync"], 3),
        "upgrade_s": round(med["upgrade"], 3),
        "upgrade_breakdown_s": {
            "resolve_trust": round(med["upgrade_resolve"], 3),
            "fetch_hash": round(med["upgrade_fetch"], 3),
            "check_commit": round(med["upgrade_commit"], 3),
        },
        "upgrade_time_ratio": round(med["upgrade"] / med["install"], 3),
        "upgrade_bytes_ratio": round(med["upgrade_bytes"] / med["install_bytes"], 3),
        "publish_s": round(med["publish"], 3),
        "publish_delta_s": round(med["publish_delta"], 3),
        "publish_delta_time_ratio": round(med["publish_delta"] / med["publish"], 3),
        "publish_delta_bytes_ratio": round(med["publish_delta_bytes"] / med["publish_bytes"], 3),
        **kv,
    }
    print(json.dumps(out, indent=2))


def _publish_delta(v1: Path, v2: Path) -> dict[str, float]:
    """A fresh publish of 1.0.0, then 1.1.0 (one blob of ten changed), to an empty registry."""
    reg = BlobUploadRegistry(max_chunk_bytes=8 * 1024 * 1024).start()
    try:
        with RegistryClient(reg.url, token="t") as client:
            t0 = time.perf_counter()
            first = publish_blobs(client, v1)
            t1 = time.perf_counter()
            second = publish_blobs(client, v2)
            t2 = time.perf_counter()
    finally:
        reg.stop()
    assert second.blobs_sent == 1, second
    return {
        "publish": t1 - t0,
        "publish_delta": t2 - t1,
        "publish_bytes": first.bytes_sent,
        "publish_delta_bytes": second.bytes_sent,
    }


def _kv_pack(work: Path, memories: list[str], kv_mb: int) -> tuple[Path, list[str]]:
    """A pack with KV caches for three model fingerprints (and the configs they are for)."""
    tokens = kv_mb * 1024 * 1024 // 256
    configs = ["a" * 64, "c" * 64, "d" * 64]
    cubes = [
        kv_cube(f"kv-{i}", config_sha256=c, tokens=tokens, seed=i) for i, c in enumerate(configs)
    ]
    source = write_source(
        work / "src-kv", name="bench/kv", memories=memories[:200], extra_cubes=cubes
    )
    path = work / "kv.memcube"
    pack_directory(source, path, keys=[KEY], mip_version="2.0")
    shutil.rmtree(source)
    return path, configs


def _kv_partial(work: Path, url: str, path: Path, configs: list[str]) -> dict[str, Any]:
    """Bytes fetched by an engine running one of three models, against what it needs."""
    model = fingerprint_digest_of(tiny_fingerprint(configs[1]))
    manifest = read_pack(path).manifest
    needed = sum(b.size for b in select_blobs(manifest, fingerprint=model))
    before = _sent(url)
    home = work / "home-kv"
    inst = _installer(home, model_fingerprint=model)
    inst.install("bench/kv", registry=url)
    inst.engine.close()
    fetched = _sent(url) - before
    every = sum(b.size for b in manifest_blobs(manifest))
    return {
        "kv_pack_mb": round(every / 1e6, 1),
        "kv_needed_mb": round(needed / 1e6, 1),
        "kv_fetched_mb": round(fetched / 1e6, 1),
        "kv_fetched_vs_needed": round(fetched / needed, 3),
    }


if __name__ == "__main__":
    main()
