"""A worker SIGKILLed mid-ingest: its lease expires, requeue hands the job to another
worker, the version is indexed exactly once.

Fails if a killed run's rows survive, if requeue ignores a running job whose
lease expired, if the second run cannot claim it, or if rows are duplicated.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Count
from django.utils import timezone

from memstore.accounts.actor import Actor
from memstore.ingest.models import IngestJob
from memstore.ingest.tasks import ingest_requeue
from memstore.packs.services import pack_publish
from memstore.search.models import IndexedMemory
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack

from .conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

N = 40


def test_a_killed_worker_loses_its_lease_and_the_job_finishes_once(
    tmp_path: Path, private_redis: Any, send_to: Any, workers: Any
) -> None:
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    send_to(private_redis, queue)
    # Hangs after 3 batches of 4: caught mid-ingest, with rows written (uncommitted).
    doomed = workers(broker=private_redis.url, queue=queue, lease=1.5, batch=4, hang_after=3)
    user, _, key = publisher("acme", "alice")
    version = pack_publish(
        actor=Actor(user=user, scopes=None),
        pack_file=build_pack(
            tmp_path,
            name="acme/killed",
            keys=[key],
            memories=[f"memory {i} of a worker that dies" for i in range(N)],
        ),
    )

    def job() -> IngestJob:
        return IngestJob.objects.get(version=version)

    # The heartbeat shows the progress of the running attempt.
    wait_until(lambda: job().progress >= 8, what="the first worker to write batches")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    killed = job()
    assert (killed.status, killed.attempts) == ("running", 1)
    assert not IndexedMemory.objects.filter(version=version).exists()  # rolled back with it

    wait_until(lambda: job().leased_until < timezone.now(), what="the lease to expire")
    assert ingest_requeue(older_than_seconds=3600) == [version.pk]
    workers(broker=private_redis.url, queue=queue, lease=1.5, batch=4)
    done = wait_until(lambda: (j := job()).status == "done" and j, what="the job to finish")

    assert (done.attempts, done.memory_count, done.progress) == (2, N, N)
    assert done.leased_until is None and done.error == ""
    rows = IndexedMemory.objects.filter(version=version)
    assert rows.count() == N
    assert not rows.values("cube_id", "record_id").annotate(n=Count("id")).filter(n__gt=1)
    assert ingest_requeue(older_than_seconds=0) == []  # nothing stuck
