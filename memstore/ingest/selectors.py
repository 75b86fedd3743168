"""Reads about ingestion jobs. Not here: writes (``services``), enqueueing (``tasks``)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .models import IngestJob
from .states import IngestStatus

__all__ = ["versions_lease_expired", "versions_stuck_pending"]


def versions_stuck_pending(*, older_than_seconds: int = 300) -> list[int]:
    """Versions whose job has been pending that long (the broker was down at publish time)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        IngestJob.objects.filter(
            status=IngestStatus.PENDING.value, updated_at__lt=cutoff
        ).values_list("version_id", flat=True)
    )


def versions_lease_expired() -> list[int]:
    """Versions whose job is running under an expired lease (its worker died or hung)."""
    now = timezone.now()
    return list(
        IngestJob.objects.filter(status=IngestStatus.RUNNING.value)
        .filter(Q(leased_until__lt=now) | Q(leased_until__isnull=True))
        .values_list("version_id", flat=True)
    )
