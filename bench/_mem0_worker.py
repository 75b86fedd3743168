"""Mem0's side of ``bench/mem0_compare.py``: run in Mem0's own venv, never in ``.venv``.

Why a separate process: Mem0 (and qdrant-client, openai, posthog, grpcio) must not
enter the project's lock or ``.venv``; ``mem0_compare.py`` builds a venv for it under
``var/bench/mem0-venv`` that sees ``.venv``'s torch, transformers,
sentence-transformers and the on-disk all-MiniLM-L6-v2 through a ``.pth`` line, and
starts this script there (in a network namespace of its own when ``unshare -rn``
works). The two processes speak JSON lines: this script answers on stdout, logs on
stderr.

What it runs is Mem0's own harness, as shipped except where noted:
``Memory.from_config`` with the huggingface embedder (sentence-transformers, the
model folder given, no download), qdrant local (``path`` in the store folder, Mem0's
default ``on_disk=False``: vectors held in memory, points persisted by qdrant's
local mode), the history database at its default place under ``MEM0_DIR`` (SQLite,
kept), an LLM config that points at nothing (``infer=False`` never calls it), and
telemetry off (``MEM0_TELEMETRY=False``, set by the parent: on, it would contact
PostHog and GitHub). ``Memory.add(text, user_id=..., infer=False)`` one memory at a
time (unless ``--reuse``: the parent keeps a built store between runs);
``Memory.search(query, filters={"user_id": ...}, top_k=10)``.

Every socket connection or name lookup is refused and counted by an audit hook, so
the report can say that nothing was contacted.

Not here: our side, the corpus or the table (``bench/mem0_compare.py``).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

CONNECTS: list[str] = []


def _no_network(event: str, args: tuple[Any, ...]) -> None:
    """Refuse and count any outward connection or DNS lookup (AF_UNIX stays allowed)."""
    if event == "socket.connect":
        sock = args[0]
        if getattr(sock, "family", None) == socket.AF_UNIX:
            return
        CONNECTS.append(f"connect {args[1]!r}")
        raise OSError("bench/_mem0_worker.py: network refused")
    if event == "socket.getaddrinfo":
        CONNECTS.append(f"getaddrinfo {args[0]!r}")
        raise OSError("bench/_mem0_worker.py: network refused")


def say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="JSON list of memory texts")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder")
    parser.add_argument("--model", required=True, help="all-MiniLM-L6-v2 folder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch's own")
    parser.add_argument("--reuse", action="store_true", help="the store is built: add nothing")
    args = parser.parse_args()
    sys.addaudithook(_no_network)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import mem0
    from mem0 import Memory

    config = {
        "embedder": {
            "provider": "huggingface",
            "config": {"model": args.model, "embedding_dims": 384},
        },
        "vector_store": {
            "provider": "qdrant",
            "config": {
                "collection_name": "bench",
                "embedding_model_dims": 384,
                "path": str(args.work / "qdrant"),
            },
        },
        # Never called with infer=False; the client is built at init, so it needs a key.
        "llm": {
            "provider": "openai",
            "config": {"api_key": "unused-offline", "openai_base_url": "http://127.0.0.1:9/v1"},
        },
    }
    memory = Memory.from_config(config)
    texts: list[str] = [] if args.reuse else json.loads(args.data.read_text("utf-8"))
    memory.search("warm up the embedder", filters={"user_id": "bench"}, top_k=10)
    t0 = time.perf_counter()
    for i, text in enumerate(texts):
        memory.add(text, user_id="bench", infer=False)
        if (i + 1) % 1000 == 0:
            print(f"  mem0 added {i + 1}/{len(texts)}", file=sys.stderr, flush=True)
    add_s = time.perf_counter() - t0
    say(
        {
            "op": "ready",
            "added": len(texts),
            "add_s": add_s,
            "points": memory.vector_store.client.count(collection_name="bench").count,
            "torch_threads": torch.get_num_threads(),
            "versions": {
                p: version(p) for p in ("mem0ai", "qdrant-client", "sentence-transformers", "torch")
            },
            "mem0_file": mem0.__file__,
            "torch_file": torch.__file__,
            "history_db_path": memory.config.history_db_path,
            "qdrant_path": str(args.work / "qdrant"),
            "connects": list(CONNECTS),
        }
    )
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        times, hits = [], []
        for query in request["queries"]:
            t0 = time.perf_counter()
            found = memory.search(query, filters={"user_id": "bench"}, top_k=10)
            times.append(time.perf_counter() - t0)
            hits.append([r["memory"] for r in found["results"]])
        say({"op": "searched", "times": times, "hits": hits})
    say({"op": "bye", "connects": list(CONNECTS)})


if __name__ == "__main__":
    main()
