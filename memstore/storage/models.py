"""The registry's record of stored blobs, keyed by sha256.

A row exists for every object the registry has put into blob storage and not
yet removed. Publishing creates rows (and objects) *before* the version's own
transaction, and references them from it; ``packs.services.blobs_release``
removes objects that nothing references after a failed publish, and the
periodic garbage collection removes any left by a crash.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Blob(models.Model):
    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"sha256:{self.sha256} ({self.size} bytes)"
