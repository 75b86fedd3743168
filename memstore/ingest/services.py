"""Ingestion: stream the plaintext memories of a version, embed them, index them.

A run claims its job first (:mod:`.lease`: at most one live run per job, the
attempt number as fencing token), then streams the records from storage in
batches, embedded a batch ahead in a thread (:mod:`.pipeline`), and inserts
them in one transaction that also writes the pack document, runs the
evaluation and marks the job done, fenced by the attempt: the version's index
rows are replaced all or nothing, by exactly one attempt, and a run that lost
its lease rolls back. One transaction rather than rows staged under the
attempt and flipped visible at the end: PostgreSQL's atomicity gives the
all-or-nothing for free, no reader can see a staged row, and a killed worker's
rows vanish with its connection; the progress count is written by the lease's
heartbeat on its own connection. ``ingest_run`` is idempotent: a version
already ``done`` is left alone (unless forced).
The embedder and every write to the index are search's (``search.embedding``,
``search.services``); this module owns the job and its status.
Not here: enqueueing and the Celery tasks (:mod:`.tasks`: thin wrappers with
retries and backoff, subscribed to new versions in ``apps.IngestConfig.ready``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import numpy as np
from django.db import transaction
from django.utils import timezone

from protocol import MediaType

from ..packs.models import PackVersion
from ..search.embedding import embed
from ..search.services import (
    memories_index_write,
    pack_document_refresh,
    pack_document_replace,
    pack_document_text,
)
from ..storage.backends import BlobStorage
from ..storage.services import get_blob_storage
from .lease import Heartbeat, Lease, LeaseLostError, job_claim, job_finish, job_release
from .models import IngestJob
from .pipeline import Batch, Row, embedded_batches
from .quality import quality_run
from .states import IngestStatus, check_transition

__all__ = [
    "LeaseLostError",
    "ingest_claim",
    "ingest_job_create",
    "ingest_mark_failed",
    "ingest_mark_retry",
    "ingest_run",
]

SNIPPET_CHARS = 160


def ingest_job_create(*, version: PackVersion) -> IngestJob:
    """The version's job, pending (idempotent); created in the publish transaction."""
    job, _ = IngestJob.objects.get_or_create(version=version)
    return job


def _move(job_id: int, new: IngestStatus, **fields: object) -> IngestJob:
    with transaction.atomic():
        job = IngestJob.objects.select_for_update().get(pk=job_id)
        check_transition(IngestStatus(job.status), new)
        job.status = new.value
        job.updated_at = timezone.now()
        for key, value in fields.items():
            setattr(job, key, value)
        job.save()
        return job


def ingest_claim(*, version_id: int, force: bool = False) -> Lease | None:
    """Claim the version's job for one run (a failed job is run again); ``None`` when it is
    done (unless ``force``) or held by another run whose lease is alive."""
    job = IngestJob.objects.get(version_id=version_id)
    if job.status == IngestStatus.FAILED.value or (force and job.status == IngestStatus.DONE.value):
        _move(job.pk, IngestStatus.PENDING)
    return job_claim(job_id=job.pk)


def _fenced(batches: Iterator[Batch], beat: Heartbeat) -> Iterator[tuple[list[Row], np.ndarray]]:
    """The batches, until the heartbeat finds the lease lost (then stop before writing more)."""
    for batch in batches:
        if beat.lost.is_set():
            raise LeaseLostError("this ingestion run lost its lease", attempt=beat.lease.attempt)
        yield batch.rows, batch.vectors


def ingest_run(
    *,
    version_id: int,
    storage: BlobStorage | None = None,
    force: bool = False,
    lease: Lease | None = None,
) -> IngestJob:
    """Stream, embed and index the memories of one version, as the run holding ``lease``
    (claimed here when not given). Returns the job; it is left as it is when this run
    could not claim it. Raises :class:`LeaseLostError` when another attempt took over."""
    storage = storage or get_blob_storage()
    if lease is None:
        lease = ingest_claim(version_id=version_id, force=force)
        if lease is None:
            return IngestJob.objects.get(version_id=version_id)
    job = IngestJob.objects.select_related("version__pack__namespace").get(pk=lease.job_id)
    version = job.version
    payloads = list(
        version.payloads.filter(media_type=MediaType.MEMORIES_JSONL.value).values_list(
            "cube_id", "sha256"
        )
    )
    doc_text = pack_document_text(version)
    with (
        Heartbeat(lease) as beat,
        closing(embedded_batches(storage, payloads)) as batches,
        transaction.atomic(),
    ):
        count = memories_index_write(
            version=version, batches=_fenced(batches, beat), on_batch=beat.record
        )
        pack_document_replace(version=version, text=doc_text, vector=embed([doc_text])[0])
        # The evaluation questions, through the rows just written: "done" comes with its score.
        quality_run(version=version)
        job = job_finish(lease, memory_count=count)
    pack_document_refresh(pack_id=version.pack_id)
    return job


def ingest_mark_retry(*, version_id: int, error: str, lease: Lease | None = None) -> None:
    """Back to pending for a retry: the run holding ``lease`` only (any running one if None)."""
    if lease is not None:
        job_release(lease, IngestStatus.PENDING, error=error)
        return
    job = IngestJob.objects.get(version_id=version_id)
    if job.status == IngestStatus.RUNNING.value:
        _move(job.pk, IngestStatus.PENDING, error=error[:2000], leased_until=None, worker="")


def ingest_mark_failed(*, version_id: int, error: str, lease: Lease | None = None) -> None:
    """Give up: failed, from the run holding ``lease`` only (from pending or running if None)."""
    if lease is not None:
        job_release(lease, IngestStatus.FAILED, error=error)
        return
    job = IngestJob.objects.get(version_id=version_id)
    if job.status == IngestStatus.PENDING.value:
        job = _move(job.pk, IngestStatus.RUNNING)
    if job.status == IngestStatus.RUNNING.value:
        _move(job.pk, IngestStatus.FAILED, error=error[:2000], leased_until=None, worker="")
