"""MIP version negotiation and the migration hook for future majors.

A reader of MIP 1.x accepts every manifest whose ``mip_version`` has major 1,
whatever its minor: minors only add optional fields, which readers keep
untouched (they stay covered by the signature). A manifest of another major is
refused with ``manifest.unsupported_version`` unless a migration from that
major has been registered with :func:`register_migration`. Migrations are
pure functions on the manifest's JSON value; the migrated value is validated
again as 1.x. Signatures always cover the bytes as published, never a migrated
form, so a migration cannot forge content.

Not here: what a 1.x manifest must contain (:mod:`protocol.schema`,
:mod:`protocol._manifest_rules`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ManifestError, MIPError, UnsupportedVersionError

__all__ = [
    "MIP_VERSION",
    "SUPPORTED_MAJOR",
    "Migration",
    "migrate_to_current",
    "parse_version",
    "register_migration",
]

MIP_VERSION = "1.1"  # 1.1: optional model fingerprint weights_sha256 (SPEC section 5)
SUPPORTED_MAJOR = 1

_VERSION_RE = re.compile(r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$")

Migration = Callable[[dict[str, Any]], dict[str, Any]]
_migrations: dict[int, Migration] = {}


def parse_version(text: object) -> tuple[int, int]:
    """Parse a ``MAJOR.MINOR`` MIP version string."""
    if not isinstance(text, str) or not _VERSION_RE.match(text):
        raise ManifestError(
            f"mip_version must look like '1.0', got {text!r}",
            code="manifest.bad_mip_version",
        )
    major, minor = text.split(".")
    return int(major), int(minor)


def register_migration(from_major: int, migration: Migration) -> None:
    """Register a pure function turning a manifest of ``from_major`` into 1.x.

    Only one migration per major; registering again replaces it (useful in tests).
    """
    if from_major == SUPPORTED_MAJOR:
        raise ValueError("no migration is needed for the current major")
    _migrations[from_major] = migration


def unregister_migration(from_major: int) -> None:
    _migrations.pop(from_major, None)


def migrate_to_current(data: dict[str, Any]) -> dict[str, Any]:
    """Return ``data`` as a 1.x manifest value, migrating it if a hook allows."""
    major, _minor = parse_version(data.get("mip_version"))
    if major == SUPPORTED_MAJOR:
        return data
    migration = _migrations.get(major)
    if migration is None:
        raise UnsupportedVersionError(
            f"this reader supports MIP {SUPPORTED_MAJOR}.x; the pack declares "
            f"MIP {data.get('mip_version')}. Upgrade memos/memstore to read it.",
            mip_version=data.get("mip_version"),
            supported=f"{SUPPORTED_MAJOR}.x",
        )
    try:
        migrated = migration(dict(data))
    except MIPError:
        raise
    except Exception as exc:  # a hook is outside code: report it with a stable code
        raise ManifestError(
            f"migration from MIP {major}.x failed: {exc}", code="manifest.migration_failed"
        ) from exc
    if not isinstance(migrated, dict):
        raise ManifestError(
            f"migration from MIP {major}.x did not return a JSON object",
            code="manifest.migration_failed",
        )
    if parse_version(migrated.get("mip_version"))[0] != SUPPORTED_MAJOR:
        raise UnsupportedVersionError(
            f"migration from MIP {major}.x did not produce a {SUPPORTED_MAJOR}.x manifest",
            mip_version=data.get("mip_version"),
        )
    return migrated
