"""What an MCP search round trip over stdio adds to the engine's own search (issue 15).

A MEMOS_HOME with ``--memories`` memories (hash embedder by default, so the
model's time, the same on both paths, does not hide the overhead) is searched
``--queries`` times, interleaved:

* **engine**: ``MemOS.search`` in this process;
* **mcp**: the ``search`` tool of ``memos mcp`` (a real subprocess on the same
  home) through the ``mcp`` SDK's client over stdio.

Prints p50/p95 of both and the p50 difference (goal ≤ 5 ms).

Run:  .venv/bin/python bench/mcp_search.py --memories 10000 --queries 300
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

from runtime import MemOS  # noqa: E402
from runtime.engine.types import NewMemory  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from import_rate import texts  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


async def run(home: Path, queries: list[str], embedder: str) -> tuple[list[float], list[float]]:
    env = {"MEMOS_HOME": str(home), "MEMOS_EMBEDDER": embedder, "MEMOS_PRINCIPAL": "bench"}
    os.environ.update(env)
    params = StdioServerParameters(command=str(Path(sys.executable).parent / "memos"),
                                   args=["mcp", "--as", "bench"], env=env)  # fmt: skip
    engine_s, mcp_s = [], []
    with MemOS(home, principal="bench") as mem:
        async with Client(params) as client:
            for q in queries[:10]:  # warm both
                mem.search(q, k=10)
                await client.call_tool("search", {"query": q, "k": 10})
            for q in queries:
                start = time.perf_counter()
                mem.search(q, k=10)
                engine_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                result = await client.call_tool("search", {"query": q, "k": 10})
                mcp_s.append(time.perf_counter() - start)
                assert not result.is_error, result.content
    return engine_s, mcp_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--embedder", choices=("hash", "minilm"), default="hash")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="memos-mcp-bench-"))
    try:
        home = work / "home"
        os.environ["MEMOS_EMBEDDER"] = args.embedder
        with MemOS(home, principal="bench") as mem:
            mem.engine.add_many([NewMemory(text=t) for t in texts(args.memories)], actor="bench")
        rng = random.Random(7)
        queries = [" ".join(rng.sample(t.split(), 3)) for t in texts(args.queries, seed=99)]
        engine_s, mcp_s = anyio.run(run, home, queries, args.embedder)
        e50, m50 = pct(engine_s, 0.5), pct(mcp_s, 0.5)
        print(f"memories: {args.memories}  queries: {args.queries}  embedder: {args.embedder}")
        print(f"engine search  p50 {e50:7.2f} ms  p95 {pct(engine_s, 0.95):7.2f} ms")
        print(f"MCP over stdio p50 {m50:7.2f} ms  p95 {pct(mcp_s, 0.95):7.2f} ms")
        print(
            f"added by MCP (p50): {m50 - e50:.2f} ms  (goal ≤ 5 ms); "
            f"mean {1000 * (statistics.mean(mcp_s) - statistics.mean(engine_s)):.2f} ms"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
