"""Editorial data of the web marketplace: the packs featured on the home page.

Editors pick them in the admin. Not here: anything about the packs themselves.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class FeaturedPack(models.Model):
    pack = models.OneToOneField("packs.Pack", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(default=0)
    blurb = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"featured: {self.pack}"
