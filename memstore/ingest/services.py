"""Ingestion: extract the plaintext memories of a version, embed them, index them.

``ingest_run`` is idempotent: it replaces the version's index rows in one
transaction, and a version already ``done`` is left alone (unless forced).
The embedder and every write to the index are search's (``search.embedding``,
``search.services``); this module owns the job and its status.
Not here: enqueueing and the Celery tasks (:mod:`.tasks`: thin wrappers with
retries and backoff, subscribed to new versions in ``apps.IngestConfig.ready``).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from protocol import MediaType, iter_memory_records

from ..packs.models import PackVersion
from ..search.embedding import embed
from ..search.services import (
    memories_index_replace,
    pack_document_refresh,
    pack_document_replace,
    pack_document_text,
)
from ..storage.backends import BlobStorage
from ..storage.services import get_blob_storage
from .models import IngestJob
from .quality import quality_run
from .states import IngestStatus, check_transition

__all__ = ["ingest_job_create", "ingest_mark_failed", "ingest_mark_retry", "ingest_run"]

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


def ingest_run(
    *, version_id: int, storage: BlobStorage | None = None, force: bool = False
) -> IngestJob:
    """Extract, embed and index the memories of one version (idempotent)."""
    storage = storage or get_blob_storage()
    job = IngestJob.objects.select_related("version__pack__namespace").get(version_id=version_id)
    if job.status == IngestStatus.DONE.value and not force:
        return job
    if job.status in (IngestStatus.DONE.value, IngestStatus.FAILED.value):
        job = _move(job.pk, IngestStatus.PENDING)
    job = _move(job.pk, IngestStatus.RUNNING, attempts=job.attempts + 1, error="")
    version = job.version
    rows: list[tuple[str, str, list[str], str]] = []  # cube id, record id, tags, text
    for payload in version.payloads.filter(media_type=MediaType.MEMORIES_JSONL.value):
        with storage.open(payload.sha256) as stream:
            for record in iter_memory_records(stream):
                rows.append((payload.cube_id, record.id, list(record.tags), record.text))
    vectors = embed([text for _, _, _, text in rows])
    doc_text = pack_document_text(version)
    doc_vector = embed([doc_text])[0]
    with transaction.atomic():
        count = memories_index_replace(version=version, rows=rows, vectors=vectors)
        pack_document_replace(version=version, text=doc_text, vector=doc_vector)
        # The evaluation questions, through the rows just written: "done" comes with its score.
        quality_run(version=version)
        job = _move(job.pk, IngestStatus.DONE, memory_count=count)
    pack_document_refresh(pack_id=version.pack_id)
    return job


def ingest_mark_retry(*, version_id: int, error: str) -> None:
    job = IngestJob.objects.get(version_id=version_id)
    if job.status == IngestStatus.RUNNING.value:
        _move(job.pk, IngestStatus.PENDING, error=error[:2000])


def ingest_mark_failed(*, version_id: int, error: str) -> None:
    job = IngestJob.objects.get(version_id=version_id)
    if job.status == IngestStatus.PENDING.value:
        job = _move(job.pk, IngestStatus.RUNNING)
    if job.status == IngestStatus.RUNNING.value:
        _move(job.pk, IngestStatus.FAILED, error=error[:2000])
