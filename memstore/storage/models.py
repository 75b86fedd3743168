"""The registry's record of stored blobs, keyed by sha256, and of blob uploads under way.

A :class:`Blob` row exists for every object the registry has put into blob storage
and not yet removed. Publishing creates rows (and objects) *before* the version's
own transaction, and references them from it; ``packs.blob_refs.blobs_release``
removes objects that nothing references after a failed publish, and the periodic
garbage collection removes any left by a crash.

A :class:`BlobUpload` is one resumable upload of one blob (``POST /api/v1/blobs/uploads``):
chunks at explicit offsets into a part file, checked against the announced size and
sha256 when the last byte arrives. A blob counts as referenced by an upload that is
open, or completed and not yet expired, so garbage collection never removes a blob
a publisher uploaded for a manifest it has not published yet.

Not here: who may upload or read a blob (``memstore.packs.blob_uploads``,
``memstore.packs.selectors``).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from ..accounts.models import User


class Blob(models.Model):
    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"sha256:{self.sha256} ({self.size} bytes)"


class BlobUpload(models.Model):
    """One resumable upload of one blob by one user."""

    class Status(models.TextChoices):
        OPEN = "open"
        COMPLETED = "completed"
        CANCELLED = "cancelled"
        FAILED = "failed"  # the bytes did not have the announced digest

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blob_uploads")
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Bytes this session received in chunks (0 for an upload the registry already had).
    received = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"blob upload {self.id} of {self.sha256[:12]} ({self.offset}/{self.size})"
