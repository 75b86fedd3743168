"""MIP version negotiation and the migration hook for future majors.

This library reads MIP 1.x and 2.x: it accepts every manifest whose
``mip_version`` has major 1 or 2, whatever its minor: minors only add optional
fields, which readers keep untouched (they stay covered by the signature).
The manifest of 2.x has the shape of 1.1 (SPEC section 14); what differs is
the container and the blob rule. A manifest of another major is refused with
``manifest.unsupported_version`` unless a migration from that major has been
registered with :func:`register_migration`. Migrations are pure functions on
the manifest's JSON value; the migrated value is validated again as 1.x or
2.x. Signatures always cover the bytes as published, never a migrated form,
so a migration cannot forge content.

Not here: what a 1.x manifest must contain (:mod:`protocol.schema`,
:mod:`protocol._manifest_rules`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ManifestError, MIPError, UnsupportedVersionError

__all__ = [
    "MIP2_VERSION",
    "MIP_VERSION",
    "SUPPORTED_MAJOR",
    "SUPPORTED_MAJORS",
    "Migration",
    "major_of",
    "migrate_to_current",
    "parse_version",
    "register_migration",
]

MIP_VERSION = "1.1"  # 1.1: optional model fingerprint weights_sha256 (SPEC section 5)
MIP2_VERSION = "2.0"  # 2.0: a signed manifest over content-addressed blobs (SPEC 14)
SUPPORTED_MAJOR = 1  # the major this library writes by default
SUPPORTED_MAJORS = (1, 2)

_SUPPORTED_TEXT = " and ".join(f"{m}.x" for m in SUPPORTED_MAJORS)

_VERSION_RE = re.compile(r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\Z")

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
    """Register a pure function turning a manifest of ``from_major`` into 1.x or 2.x.

    Only one migration per major; registering again replaces it (useful in tests).
    """
    if from_major in SUPPORTED_MAJORS:
        raise ValueError("no migration is needed for a supported (current) major")
    _migrations[from_major] = migration


def unregister_migration(from_major: int) -> None:
    _migrations.pop(from_major, None)


def major_of(text: object) -> int:
    """The major of a ``MAJOR.MINOR`` MIP version string."""
    return parse_version(text)[0]


def migrate_to_current(data: dict[str, Any]) -> dict[str, Any]:
    """Return ``data`` as a 1.x or 2.x manifest value, migrating it if a hook allows."""
    major, _minor = parse_version(data.get("mip_version"))
    if major in SUPPORTED_MAJORS:
        return data
    migration = _migrations.get(major)
    if migration is None:
        raise UnsupportedVersionError(
            f"this reader supports MIP {_SUPPORTED_TEXT}; the pack declares "
            f"MIP {data.get('mip_version')}. Upgrade memos/memstore to read it.",
            mip_version=data.get("mip_version"),
            supported=_SUPPORTED_TEXT,
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
    if parse_version(migrated.get("mip_version"))[0] not in SUPPORTED_MAJORS:
        raise UnsupportedVersionError(
            f"migration from MIP {major}.x did not produce a {_SUPPORTED_TEXT} manifest",
            mip_version=data.get("mip_version"),
        )
    return migrated
