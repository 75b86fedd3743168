"""Reads of the TUF repository: a served metadata file, the latest file of each role.

Not here: writing or signing (:mod:`.services`).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max

from ..accounts.models import Namespace
from .models import KeyStatement, MetadataFile

__all__ = ["compromised_since", "latest_files", "metadata_file"]


def metadata_file(filename: str) -> bytes | None:
    """The bytes served as ``filename`` (``timestamp.json``, ``<V>.<role>.json``), or None."""
    if filename == "timestamp.json":
        row = MetadataFile.objects.filter(role="timestamp").order_by("-version").first()
        return None if row is None else bytes(row.body)
    if not filename.endswith(".json"):
        return None
    number, _, role = filename[: -len(".json")].partition(".")
    if not number.isdigit() or not role or role == "timestamp":
        return None
    row = MetadataFile.objects.filter(role=role, version=int(number)).first()
    return None if row is None else bytes(row.body)


def latest_files() -> dict[str, bytes]:
    """``{"<role>.json": bytes}``: the latest version of every role."""
    latest = MetadataFile.objects.values("role").annotate(version=Max("version"))
    wanted = {(r["role"], r["version"]) for r in latest}
    files = {}
    for row in MetadataFile.objects.filter(role__in={r for r, _ in wanted}):
        if (row.role, row.version) in wanted:
            files[f"{row.role}.json"] = bytes(row.body)
    return files


def compromised_since(*, namespace: Namespace) -> dict[str, datetime]:
    """keyid -> since when the owner declared the key compromised (keys so declared only)."""
    rows = KeyStatement.objects.filter(namespace=namespace, compromised_since__isnull=False)
    return {r.keyid: r.compromised_since for r in rows if r.compromised_since is not None}
