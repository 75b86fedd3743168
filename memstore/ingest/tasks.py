"""Celery tasks of the pipeline: thin wrappers over :mod:`.services`, retried with backoff.

Also the two ways a job reaches the broker: :func:`version_published`, which
packs calls inside each publish transaction (``apps.IngestConfig.ready``
subscribes it), creates the pending job and enqueues the task once the
transaction commits; :func:`ingest_requeue` (periodic) enqueues jobs left
pending by a broker that was down and running jobs whose lease expired (a
worker killed mid-job). A task first claims its job (``services.ingest_claim``):
a duplicate delivery finds it held and does nothing, and a run that lost its
lease ends without touching the job. Not here: the ingestion itself (``services``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.db import transaction

from protocol import MIPError

from ..packs.models import PackVersion
from . import services
from .selectors import versions_lease_expired, versions_stuck_pending

__all__ = [
    "ingest_enqueue",
    "ingest_requeue",
    "ingest_version",
    "requeue_pending",
    "version_published",
]

log = logging.getLogger(__name__)

MAX_RETRIES = 4


@shared_task(  # type: ignore[untyped-decorator]
    bind=True,
    name="memstore.ingest.ingest_version",
    max_retries=MAX_RETRIES,
    acks_late=True,
)
def ingest_version(self: Any, version_id: int) -> dict[str, Any]:
    lease = services.ingest_claim(version_id=version_id)
    if lease is None:  # done, or another run holds a live lease: a duplicate delivery
        return {"version_id": version_id, "status": "skipped"}
    try:
        job = services.ingest_run(version_id=version_id, lease=lease)
    except services.LeaseLostError as exc:  # another attempt owns the job now
        log.warning("ingestion of version %s: %s", version_id, exc)
        return {"version_id": version_id, "status": "superseded"}
    except MIPError as exc:  # bad content never gets better: fail at once
        services.ingest_mark_failed(version_id=version_id, error=str(exc), lease=lease)
        return {"version_id": version_id, "status": "failed", "error": exc.code}
    except Exception as exc:
        if self.request.retries >= MAX_RETRIES:
            services.ingest_mark_failed(version_id=version_id, error=repr(exc), lease=lease)
            raise
        services.ingest_mark_retry(version_id=version_id, error=repr(exc), lease=lease)
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
    return {"version_id": version_id, "status": job.status, "memories": job.memory_count}


@shared_task(name="memstore.ingest.requeue_pending")  # type: ignore[untyped-decorator]
def requeue_pending() -> list[int]:
    return ingest_requeue()


def ingest_enqueue(*, version_id: int) -> None:
    """Send the ingestion task (called from ``transaction.on_commit``)."""
    try:
        ingest_version.delay(version_id)
    except Exception:  # broker down: the job stays pending; `ingest_requeue` picks it up
        log.exception("could not enqueue ingestion of version %s", version_id)


def ingest_requeue(*, older_than_seconds: int = 300) -> list[int]:
    """Re-enqueue jobs stuck in pending (broker was down at publish time) and running jobs
    whose lease expired (worker killed); the task's claim keeps a job to one live run."""
    ids = versions_stuck_pending(older_than_seconds=older_than_seconds)
    ids += [v for v in versions_lease_expired() if v not in ids]
    for version_id in ids:
        ingest_enqueue(version_id=version_id)
    return ids


def version_published(*, version: PackVersion) -> None:
    """A new version (inside its publish transaction): a pending job now, the task on commit."""
    services.ingest_job_create(version=version)
    transaction.on_commit(lambda: ingest_enqueue(version_id=version.pk))
