"""The lease of a running ingestion job: who runs it, until when, and as which attempt.

A run first *claims* its job: under the job's row lock, a pending job (or a
running one whose lease has expired: its worker was killed) becomes running
with ``attempts + 1``, this worker's name and ``leased_until``. Two workers
can therefore never both hold a job, and the attempt number is the fencing
token: every later write of that run (renew, done, retry, failed) is
conditional on it, so a worker that lost its lease (paused, cut off, presumed
dead) and wakes up afterwards changes nothing. The run renews its lease while
it works (:class:`Heartbeat`); ``tasks.ingest_requeue`` re-enqueues jobs whose
lease expired. Not here: the ingestion itself (``services``), the broker (``tasks``).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ..errors import ConflictError
from .models import IngestJob
from .states import IngestStatus, check_transition

__all__ = [
    "Heartbeat",
    "Lease",
    "LeaseLostError",
    "job_claim",
    "job_finish",
    "job_release",
    "lease_renew",
    "lease_seconds",
]


class LeaseLostError(ConflictError):
    """The run no longer holds its job (another attempt claimed it): it must not commit."""

    code = "registry.ingest_lease_lost"


@dataclass(frozen=True)
class Lease:
    job_id: int
    attempt: int  # the fencing token
    worker: str


def lease_seconds() -> float:
    """How long a claim lasts without renewal (``MEMSTORE_INGEST_LEASE_SECONDS``, 300)."""
    return float(getattr(settings, "MEMSTORE_INGEST_LEASE_SECONDS", 300))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def job_claim(*, job_id: int, worker: str | None = None) -> Lease | None:
    """Claim the job for one run, or ``None`` if it is done, failed or held by a live lease."""
    with transaction.atomic():
        job = IngestJob.objects.select_for_update().get(pk=job_id)
        now = timezone.now()
        status = IngestStatus(job.status)
        if status not in (IngestStatus.PENDING, IngestStatus.RUNNING):
            return None
        if status is IngestStatus.RUNNING and job.leased_until and job.leased_until > now:
            return None
        check_transition(status, IngestStatus.RUNNING)
        job.status = IngestStatus.RUNNING.value
        job.attempts += 1
        job.worker = worker or worker_name()
        job.leased_until = now + timedelta(seconds=lease_seconds())
        job.progress = 0
        job.error = ""
        job.updated_at = now
        job.save()
        return Lease(job_id=job.pk, attempt=job.attempts, worker=job.worker)


def _held(lease: Lease) -> dict[str, object]:
    return {"pk": lease.job_id, "attempts": lease.attempt, "status": IngestStatus.RUNNING.value}


def lease_renew(lease: Lease, *, progress: int) -> bool | None:
    """Extend the lease and record progress: True, False when lost, None when the job is
    not visible from this connection (a test's uncommitted transaction)."""
    now = timezone.now()
    until = now + timedelta(seconds=lease_seconds())
    updated = IngestJob.objects.filter(**_held(lease)).update(
        leased_until=until, progress=progress, updated_at=now
    )
    if updated:
        return True
    return False if IngestJob.objects.filter(pk=lease.job_id).exists() else None


def job_finish(lease: Lease, *, memory_count: int) -> IngestJob:
    """Mark the job done, if this run still holds it (call inside the index transaction,
    so a run that lost its lease rolls its index rows back with it)."""
    job = IngestJob.objects.select_for_update().get(pk=lease.job_id)
    if job.attempts != lease.attempt or job.status != IngestStatus.RUNNING.value:
        raise LeaseLostError(
            "this ingestion run lost its lease to another attempt",
            attempt=lease.attempt,
            current_attempt=job.attempts,
            status=job.status,
        )
    check_transition(IngestStatus.RUNNING, IngestStatus.DONE)
    job.status = IngestStatus.DONE.value
    job.memory_count = job.progress = memory_count
    job.leased_until = None
    job.worker = ""
    job.updated_at = timezone.now()
    job.save()
    return job


def job_release(lease: Lease, new: IngestStatus, *, error: str) -> bool:
    """End the run as pending (a retry) or failed, if it still holds the job."""
    check_transition(IngestStatus.RUNNING, new)
    updated = IngestJob.objects.filter(**_held(lease)).update(
        status=new.value,
        error=error[:2000],
        leased_until=None,
        worker="",
        updated_at=timezone.now(),
    )
    return bool(updated)


class Heartbeat:
    """Renews a lease from a thread of its own while the run works inside its transaction.

    Its own thread means its own database connection, in autocommit: the renewals and
    the progress count are visible to others while the index rows are not yet. A renewal
    that finds the job claimed by another attempt sets :attr:`lost`; the run checks it
    between batches (the commit itself is fenced by :func:`job_finish` regardless).
    """

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.progress = 0
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._interval = max(lease_seconds() / 3, 0.05)
        self._thread = threading.Thread(target=self._run, name="ingest-lease", daemon=True)

    def record(self, progress: int) -> None:
        """The count written so far, sent with the next renewal."""
        self.progress = progress

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        used = False
        try:
            while not self._stop.wait(self._interval):
                used = True
                try:
                    if lease_renew(self.lease, progress=self.progress) is False:
                        self.lost.set()
                        return
                except Exception:  # the database is away: the lease just lapses
                    connection.close()
        finally:
            if used:
                connection.close()
