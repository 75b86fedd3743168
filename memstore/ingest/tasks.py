"""Celery tasks of the pipeline: thin wrappers over :mod:`.services`, retried with backoff."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from protocol import MIPError

from . import services

MAX_RETRIES = 4


@shared_task(  # type: ignore[untyped-decorator]
    bind=True,
    name="memstore.ingest.ingest_version",
    max_retries=MAX_RETRIES,
    acks_late=True,
)
def ingest_version(self: Any, version_id: int) -> dict[str, Any]:
    try:
        job = services.ingest_run(version_id=version_id)
    except MIPError as exc:  # bad content never gets better: fail at once
        services.ingest_mark_failed(version_id=version_id, error=str(exc))
        return {"version_id": version_id, "status": "failed", "error": exc.code}
    except Exception as exc:
        if self.request.retries >= MAX_RETRIES:
            services.ingest_mark_failed(version_id=version_id, error=repr(exc))
            raise
        services.ingest_mark_retry(version_id=version_id, error=repr(exc))
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 60)) from exc
    return {"version_id": version_id, "status": job.status, "memories": job.memory_count}


@shared_task(name="memstore.ingest.requeue_pending")  # type: ignore[untyped-decorator]
def requeue_pending() -> list[int]:
    return services.ingest_requeue()


@shared_task(name="memstore.packs.collect_garbage")  # type: ignore[untyped-decorator]
def collect_garbage() -> list[str]:
    from ..packs.services import blobs_collect_garbage

    return blobs_collect_garbage()
