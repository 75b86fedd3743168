"""``memos.lock``: the exact packs a project uses, by version and digest.

JSON, sorted, one entry per pack name::

    {"lockfile_version": 1,
     "packs": {"acme/docs": {"version": "1.2.3", "registry": "http://...",
                             "sha256": "<pack file digest>", "size": 48213,
                             "manifest_sha256": "<sha256 of the canonical manifest>",
                             "signed_by": ["<keyid>"],
                             "keys": ["ed25519:<base64>"],
                             "blobs": ["<sha256 of each installed blob>"],
                             "signatures": [{"alg": ..., "keyid": ..., "sig": ...}]}}}

``blobs`` (the blobs installed for the running model, by digest) and
``signatures`` (kept for packs installed from a file, so ``--locked`` can
reproduce them from the cache) are optional: lockfiles written before MIP 2
lack them and still read.

``memos install --locked`` installs exactly these versions, refuses a pack
whose digest differs, and trusts only the keys pinned here (trust on first
use) that the registry has not revoked since. Written atomically (temp file +
rename) under a lock, so concurrent installs do not lose entries.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from protocol import MIPError, Signature

from .errors import InstallError

__all__ = ["LOCKFILE_NAME", "LockEntry", "read_lockfile", "update_lockfile"]

LOCKFILE_NAME = "memos.lock"
LOCKFILE_VERSION = 1
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class LockEntry:
    name: str
    version: str
    sha256: str
    size: int
    manifest_sha256: str
    signed_by: tuple[str, ...]
    keys: tuple[str, ...]
    registry: str | None = None
    blobs: tuple[str, ...] = ()
    signatures: tuple[Signature, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.blobs:
            extra["blobs"] = list(self.blobs)
        if self.signatures:
            extra["signatures"] = [s.to_dict() for s in self.signatures]
        return {
            **extra,
            "version": self.version,
            "registry": self.registry,
            "sha256": self.sha256,
            "size": self.size,
            "manifest_sha256": self.manifest_sha256,
            "signed_by": list(self.signed_by),
            "keys": list(self.keys),
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> LockEntry:
        try:
            return cls(
                name=name,
                version=str(data["version"]),
                sha256=str(data["sha256"]),
                size=int(data["size"]),
                manifest_sha256=str(data["manifest_sha256"]),
                signed_by=tuple(str(k) for k in data.get("signed_by", [])),
                keys=tuple(str(k) for k in data.get("keys", [])),
                registry=data.get("registry") if isinstance(data.get("registry"), str) else None,
                blobs=tuple(_digest(d) for d in _list(data, "blobs")),
                signatures=tuple(Signature.from_dict(s) for s in _list(data, "signatures")),
            )
        except (KeyError, TypeError, ValueError, AttributeError, MIPError) as exc:
            raise InstallError(
                f"memos.lock entry {name!r} is malformed: {exc}", code="install.bad_lockfile"
            ) from exc


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise TypeError(f"{key!r} is not a list")
    return value


def _digest(value: Any) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ValueError(f"{value!r} is not a sha256 hex digest")
    return value


def read_lockfile(path: Path) -> dict[str, LockEntry]:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError as exc:
        raise InstallError(f"no lockfile at {path}", code="install.no_lockfile") from exc
    except (OSError, ValueError) as exc:
        raise InstallError(
            f"{path} is not a valid lockfile: {exc}", code="install.bad_lockfile"
        ) from exc
    if (
        not isinstance(data, dict)
        or data.get("lockfile_version") != LOCKFILE_VERSION
        or not isinstance(data.get("packs"), dict)
    ):
        raise InstallError(
            f"{path} is not a version-{LOCKFILE_VERSION} memos lockfile",
            code="install.bad_lockfile",
        )
    return {
        name: LockEntry.from_dict(name, entry)
        for name, entry in data["packs"].items()
        if isinstance(entry, dict)
    }


def update_lockfile(
    path: Path, *, add: Mapping[str, LockEntry] | None = None, remove: tuple[str, ...] = ()
) -> None:
    path = Path(path)
    with FileLock(str(path) + ".flock", timeout=120):
        try:
            entries = read_lockfile(path)
        except InstallError as exc:
            if exc.code != "install.no_lockfile":
                raise
            entries = {}
        entries.update(add or {})
        for name in remove:
            entries.pop(name, None)
        body = {
            "lockfile_version": LOCKFILE_VERSION,
            "packs": {name: entries[name].to_dict() for name in sorted(entries)},
        }
        folder = path.parent if str(path.parent) else "."
        fd, tmp = tempfile.mkstemp(prefix=".memos-lock-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(body, fh, indent=2, sort_keys=True)
                fh.write("\n")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
