"""Reads of the TUF repository: a served metadata file, the latest file of each role.

Not here: writing or signing (:mod:`.services`).
"""

from __future__ import annotations

from django.db.models import Max

from .models import MetadataFile

__all__ = ["latest_files", "metadata_file"]


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
