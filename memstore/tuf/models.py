"""Stored TUF metadata files and what the registry relays about namespace keys.

:class:`MetadataFile` keeps every version of every role (consistent
snapshots: a client asks for ``<V>.snapshot.json`` while a newer one is
being written). :class:`KeyStatement` holds, per publisher key, the
endorsement by an older key of its namespace and the owner's
"compromised since" declaration, both copied into the namespace's
delegation. Not here: building or signing metadata (:mod:`.repository`).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class MetadataFile(models.Model):
    """One signed metadata file as served: ``<version>.<role>.json`` (``timestamp.json``)."""

    role = models.CharField(max_length=80)
    version = models.PositiveIntegerField()
    body = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["role", "version"], name="uniq_tuf_role_version"),
        ]
        indexes = [models.Index(fields=["role", "-version"])]

    def __str__(self) -> str:
        return f"{self.version}.{self.role}.json"


class KeyStatement(models.Model):
    """The endorsement and compromise declaration of one namespace key (both optional)."""

    namespace = models.ForeignKey(
        "accounts.Namespace", on_delete=models.CASCADE, related_name="key_statements"
    )
    keyid = models.CharField(max_length=64)
    endorsed_by = models.CharField(max_length=64, blank=True, default="")
    endorsement = models.CharField(max_length=200, blank=True, default="")  # base64 signature
    compromised_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["namespace", "keyid"], name="uniq_tuf_key_statement"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace_id}:{self.keyid[:12]}"
