"""The log's rows: entries (the leaves), the hashes of its perfect subtrees, its signing key.

An entry's ``body`` is the exact canonical JSON whose leaf hash is in the tree;
``LogNode`` holds the hash of every perfect subtree once complete (level 0:
the leaf hashes), so roots and proofs need ``O(log n)`` rows
(:mod:`protocol.merkle`). Rows are only ever inserted. Not here: appending
(:mod:`.services`).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class LogEntry(models.Model):
    index = models.BigIntegerField(unique=True)
    kind = models.CharField(max_length=40)
    namespace = models.CharField(max_length=100, db_index=True)
    #: What the entry is about, for lookups: a manifest digest or a key id.
    subject = models.CharField(max_length=200, db_index=True, blank=True, default="")
    body = models.BinaryField()
    leaf_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["index"]

    def __str__(self) -> str:
        return f"#{self.index} {self.kind} {self.namespace}"


class LogNode(models.Model):
    level = models.SmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "index"], name="uniq_tlog_node"),
        ]

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class LogHead(models.Model):
    """The log's size and right edge, one row locked by every append (its serialisation).

    ``frontier`` is the concatenated 32-byte hashes of the perfect subtrees on the
    tree's right edge, largest first (one per set bit of ``size``): enough to add a
    leaf and to compute the root without reading any other row.
    """

    size = models.BigIntegerField(default=0)
    frontier = models.BinaryField(default=b"")

    def __str__(self) -> str:
        return f"log head at size {self.size}"


class LogKey(models.Model):
    """The registry's Ed25519 log key, made on first use (PKCS#8 PEM)."""

    private_pem = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"log key of {self.created_at:%Y-%m-%d}"
