"""One ingestion job per published version: its status is what clients see."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from ..packs.models import PackVersion
from .states import IngestStatus


class IngestJob(models.Model):
    version = models.OneToOneField(PackVersion, on_delete=models.CASCADE, related_name="ingest")
    status = models.CharField(
        max_length=16,
        choices=[(s.value, s.value) for s in IngestStatus],
        default=IngestStatus.PENDING.value,
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    memory_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"ingest {self.version}: {self.status}"
