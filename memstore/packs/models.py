"""Pack models. A published version is immutable and its name@version never reusable.

Rows of :class:`PackVersion` are never deleted: "deleting" a version sets
``deleted_at``, and the unique constraint on (pack, version) then keeps that
name@version reserved forever, as on PyPI.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from ..accounts.models import Namespace, SigningKey, User


class Pack(models.Model):
    namespace = models.ForeignKey(Namespace, on_delete=models.PROTECT, related_name="packs")
    name = models.CharField(max_length=100)
    private = models.BooleanField(default=False)
    deprecated = models.BooleanField(default=False)
    deprecation_message = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    download_count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["namespace", "name"], name="uniq_pack_name"),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.namespace.name}/{self.name}"


class PackVersion(models.Model):
    pack = models.ForeignKey(Pack, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=100)
    # The exact canonical manifest bytes that the signatures cover, and the parsed form.
    manifest_bytes = models.BinaryField()
    manifest = models.JSONField()
    manifest_sha256 = models.CharField(max_length=64)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, default="")
    license = models.CharField(max_length=100)
    price_amount_minor = models.PositiveBigIntegerField(default=0)
    price_currency = models.CharField(max_length=3, blank=True, default="")
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    memory_types = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    base_models = ArrayField(models.CharField(max_length=300), default=list, blank=True)
    file_sha256 = models.CharField(max_length=64)
    file_size = models.BigIntegerField()
    published_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    yanked = models.BooleanField(default=False)
    yanked_reason = models.CharField(max_length=500, blank=True, default="")
    yanked_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    download_count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pack", "version"], name="uniq_pack_version"),
            models.CheckConstraint(
                condition=models.Q(price_amount_minor=0) | ~models.Q(price_currency=""),
                name="paid_needs_currency",
            ),
        ]
        indexes = [models.Index(fields=["file_sha256"])]

    def __str__(self) -> str:
        return f"{self.pack}@{self.version}"

    @property
    def is_paid(self) -> bool:
        return self.price_amount_minor > 0


class VersionPayload(models.Model):
    version = models.ForeignKey(PackVersion, on_delete=models.CASCADE, related_name="payloads")
    cube_id = models.CharField(max_length=100)
    memory_type = models.CharField(max_length=20)
    path = models.CharField(max_length=500)
    media_type = models.CharField(max_length=100)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "path"], name="uniq_version_payload"),
        ]
        ordering = ["path"]

    def __str__(self) -> str:
        return f"{self.path} ({self.sha256[:12]})"


class VersionSignature(models.Model):
    version = models.ForeignKey(PackVersion, on_delete=models.CASCADE, related_name="signatures")
    keyid = models.CharField(max_length=64)
    algorithm = models.CharField(max_length=20, default="ed25519")
    value_b64 = models.CharField(max_length=100)
    key = models.ForeignKey(SigningKey, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["keyid"]

    def __str__(self) -> str:
        return f"{self.keyid[:12]} on version {self.version_id}"


class Entitlement(models.Model):
    """The right of a user to download a paid pack (granted by the purchase flow)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="entitlements")
    pack = models.ForeignKey(Pack, on_delete=models.CASCADE, related_name="entitlements")
    granted_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=50, default="manual")  # "purchase", "grant", ...
    reference = models.CharField(max_length=200, null=True, blank=True, unique=True)  # idempotency
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "pack"], name="uniq_entitlement"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} -> pack {self.pack_id}"


class UploadSession(models.Model):
    """A resumable upload of one pack file, in chunks (PEP 694 in spirit)."""

    class Status(models.TextChoices):
        OPEN = "open"
        COMPLETED = "completed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="upload_sessions")
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    offset = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    version = models.ForeignKey(PackVersion, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return f"upload {self.id} ({self.offset}/{self.size})"


class VersionDownload(models.Model):
    """One counted download: a version, a UTC day, and who (a user, or a hashed address).

    The unique constraint is the counting rule (:mod:`memstore.packs.downloads`): the
    same account or address resolving a version again that day counts nothing.
    """

    version = models.ForeignKey(PackVersion, on_delete=models.CASCADE, related_name="downloads")
    day = models.DateField()
    who = models.CharField(max_length=80)  # "user:<id>" or "addr:<keyed hash>", never the address

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "day", "who"], name="uniq_download_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.version} on {self.day} by {self.who}"


class VersionEvaluation(models.Model):
    """The registry's own measure of a version: its evaluation questions run through search.

    Written by ingestion (:mod:`memstore.ingest.quality`) after the memories are
    indexed; a version whose manifest carries no ``evaluation`` has no row.
    ``details`` keeps, per question, the answer ids and the rank each was found at.
    """

    version = models.OneToOneField(PackVersion, on_delete=models.CASCADE, related_name="evaluation")
    questions = models.PositiveIntegerField()
    recall_at_5 = models.FloatField()
    mrr = models.FloatField()
    details = models.JSONField(default=list)
    evaluated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"recall@5 {self.recall_at_5:.2f} on {self.questions} questions ({self.version})"


class VersionFinding(models.Model):
    """One thing the publish-time scan (:mod:`memstore.packs.scanning`) found in a memory.

    ``excerpt`` never holds a secret or personal datum in clear: it is masked.
    """

    class Kind(models.TextChoices):
        SECRET = "secret"  # noqa: S105 - a finding kind, not a password
        PERSONAL_DATA = "personal_data"
        PROMPT_INJECTION = "prompt_injection"

    version = models.ForeignKey(PackVersion, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    rule = models.CharField(max_length=100)
    cube_id = models.CharField(max_length=100)
    record_id = models.CharField(max_length=200)
    excerpt = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["kind", "cube_id", "record_id", "id"]

    def __str__(self) -> str:
        return f"{self.kind}/{self.rule} in {self.record_id} ({self.version_id})"


class PackLike(models.Model):
    """A signed-in user's like (star) of a pack: one per user and pack."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="pack_likes")
    pack = models.ForeignKey(Pack, on_delete=models.CASCADE, related_name="likes")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "pack"], name="uniq_pack_like"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} likes pack {self.pack_id}"
