"""The project's Celery worker in a process of its own, for the fault tests (run as a script).

What the test decides comes in ``MEMSTORE_FAULT_WORKER`` (JSON): the database
(the test database), the broker and queue, the blob folder, the lease and batch
sizes, and how the embedder misbehaves. The embedder is a deterministic stand-in
(no model to load: seconds saved per worker), which can wait before each batch
(``delay``), hang for good after some batches (``hang_after``) or wait after
some batches until a file exists (``hold_after``, ``gate``): a worker caught
mid-ingest, at a moment the test controls. Everything else is the
project's own code: the task, the claim, the lease, the writes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def main() -> None:
    cfg: dict[str, Any] = json.loads(os.environ["MEMSTORE_FAULT_WORKER"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")
    from django.conf import settings

    settings.DATABASES["default"].update(cfg["database"])
    settings.MEMSTORE_INGEST_LEASE_SECONDS = cfg["lease"]
    settings.MEMSTORE_INGEST_BATCH = cfg["batch"]
    import django

    django.setup()
    import numpy as np
    from celery import current_app

    from memstore.ingest import pipeline, services
    from memstore.search.embedding import DIMENSION
    from memstore.storage.backends import LocalBlobStorage
    from memstore.storage.services import set_blob_storage

    set_blob_storage(LocalBlobStorage(Path(cfg["blobs"]), secret=settings.SECRET_KEY))
    batches = 0

    def embed(texts: Any, **_: Any) -> Any:
        nonlocal batches
        batches += 1
        hang_after = cfg.get("hang_after")
        if hang_after is not None and batches > hang_after:
            while True:  # caught mid-ingest: the test kills this process
                time.sleep(1)
        gate = cfg.get("gate")
        if gate and batches > cfg.get("hold_after", 0):
            while not Path(gate).exists():  # held mid-ingest until the test opens the gate
                time.sleep(0.05)
        time.sleep(cfg.get("delay", 0))
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, sum(text.encode()) % DIMENSION] = 1.0
        return out

    pipeline.embed = embed  # type: ignore[assignment]
    services.embed = embed  # type: ignore[assignment]
    app = current_app._get_current_object()
    app.conf.update(
        broker_url=cfg["broker"],
        task_default_queue=cfg["queue"],
        task_always_eager=False,
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
    )
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--concurrency=1",
            f"--queues={cfg['queue']}",
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            f"--hostname=fault-{os.getpid()}@localhost",
        ]
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
