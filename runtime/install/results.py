"""What the installer answers: the result of one install, and an installed pack.

Not here: how either is produced (:mod:`runtime.install.installer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["InstallResult", "InstalledPack"]


@dataclass(frozen=True)
class InstallResult:
    name: str
    version: str
    sha256: str
    size: int
    memories: int
    signed_by: tuple[str, ...]
    source: str
    changed: bool = True
    previous_version: str | None = None
    warnings: tuple[str, ...] = ()
    #: blob digests installed (those chosen for the running model), and which had to be fetched
    blobs: tuple[str, ...] = ()
    fetched: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "memories": self.memories,
            "signed_by": list(self.signed_by),
            "source": self.source,
            "changed": self.changed,
            "previous_version": self.previous_version,
            "warnings": list(self.warnings),
            "blobs": list(self.blobs),
            "fetched": list(self.fetched),
        }


@dataclass(frozen=True)
class InstalledPack:
    name: str
    version: str
    sha256: str
    size: int
    registry: str | None
    installed_at: datetime
    signed_by: tuple[str, ...]
    memories: int
    payloads: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "registry": self.registry,
            "installed_at": self.installed_at.isoformat(),
            "signed_by": list(self.signed_by),
            "memories": self.memories,
        }
