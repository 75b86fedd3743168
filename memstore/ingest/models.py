"""One ingestion job per published version: its status is what clients see.

While ``running`` the job carries a lease (``worker``, ``leased_until``) and
``attempts`` is the fencing token of the run that holds it (:mod:`.lease`);
``progress`` counts the memories the current attempt has written so far,
``memory_count`` those of the index that is published.
"""

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
    progress = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, default="")
    leased_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"ingest {self.version}: {self.status}"
