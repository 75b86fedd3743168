"""Redis (the broker) stopped and restarted mid-ingest.

The running job does not need the broker and finishes; a version published
while the broker is down stays pending (publish itself succeeds) and
``ingest_requeue`` enqueues it once the broker is back, to the same worker,
which reconnected. Fails if the outage loses a publish, fails or duplicates a
job, or leaves one stuck.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Count

from memstore.accounts.actor import Actor
from memstore.ingest.models import IngestJob
from memstore.ingest.tasks import ingest_requeue
from memstore.packs.services import pack_publish
from memstore.search.models import IndexedMemory
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack

from .conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

N = 24


def test_a_broker_outage_mid_ingest_loses_no_publish(
    tmp_path: Path, private_redis: Any, send_to: Any, workers: Any
) -> None:
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    send_to(private_redis, queue)
    gate = tmp_path / "gate"
    workers(broker=private_redis.url, queue=queue, lease=1.5, batch=4, hold_after=2, gate=str(gate))
    user, _, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)

    def publish(name: str) -> Any:
        memories = [f"{name} memory {i} across a broker outage" for i in range(N)]
        pack = build_pack(tmp_path, name=f"acme/{name}", keys=[key], memories=memories)
        return pack_publish(actor=actor, pack_file=pack)

    def jobs() -> dict[str, IngestJob]:
        return {j.version.pack.name: j for j in IngestJob.objects.select_related("version__pack")}

    first = publish("during")
    wait_until(lambda: jobs()["during"].progress >= 8, what="the worker to be mid-ingest")
    private_redis.stop()
    second = publish("outage")  # the enqueue fails: the publish stands, its job pending
    assert jobs()["outage"].status == "pending"
    gate.touch()
    wait_until(lambda: jobs()["during"].status == "done", what="the running job to finish")

    private_redis.start()
    assert ingest_requeue(older_than_seconds=0) == [second.pk]
    wait_until(lambda: jobs()["outage"].status == "done", what="the requeued job to finish")

    for name, version in (("during", first), ("outage", second)):
        job = jobs()[name]
        assert (job.status, job.attempts, job.memory_count, job.error) == ("done", 1, N, "")
        rows = IndexedMemory.objects.filter(version=version)
        assert rows.count() == N
        assert not rows.values("cube_id", "record_id").annotate(n=Count("id")).filter(n__gt=1)
    assert ingest_requeue(older_than_seconds=0) == []
