"""What a manifest must be, checked on the JSON value before any typed object is built.

The order is fixed: a JSON object, version negotiation (a 1.x manifest as
is, another major only through a registered migration hook), the JSON
Schema, then the cross-field rules the schema cannot express: unique cube
ids, unique payload paths (compared case-insensitively, and no path that is
a folder of another), each payload under its cube's folder, and timestamps
that name real calendar moments. Every violation found is reported at once.

Not here: parsing bytes (:mod:`protocol._json`), building the typed objects
(:mod:`protocol.manifest`), the schema files (:mod:`protocol.schema`),
version hooks (:mod:`protocol.version`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._json import parse_timestamp
from .errors import ManifestError, Violation
from .kv_chunks import chain_violations
from .schema import MANIFEST_SCHEMA_ID, schema_violations
from .version import MIP_VERSION, migrate_to_current

__all__ = ["manifest_violations", "validated_manifest"]


def validated_manifest(data: Any) -> dict[str, Any]:
    """``data`` as a valid current manifest value (migrated if needed), or a ManifestError."""
    if not isinstance(data, dict):
        raise ManifestError("manifest must be a JSON object", code="manifest.schema")
    try:
        current = migrate_to_current(data)
    except ManifestError as exc:
        if exc.code != "manifest.bad_mip_version":
            raise
        # No usable version: check the rest against the current rules anyway, so a
        # reader sees every problem at once, each with its pointer.
        found = data.get("mip_version")
        problem = (
            f'mip_version is missing: write "mip_version": "{MIP_VERSION}" (or "2.0")'
            if found is None
            else exc.message
        )
        others = [
            v for v in manifest_violations(data) if "mip_version" not in v.pointer + v.message
        ]
        more = f" (and {len(others)} more)" if others else ""
        raise ManifestError(
            f"manifest is invalid at /mip_version: {problem}{more}",
            code=exc.code,
            violations=[Violation("/mip_version", problem), *others],
        ) from None
    violations = manifest_violations(current)
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise ManifestError(
            f"manifest is invalid at {first.pointer or '/'}: {first.message}{more}",
            code="manifest.schema",
            violations=violations,
        )
    return current


def manifest_violations(data: Mapping[str, Any]) -> list[Violation]:
    """Every schema violation of a current manifest value, then every cross-field one."""
    return schema_violations(data, MANIFEST_SCHEMA_ID) + _cross_field_violations(data)


def _cross_field_violations(data: Mapping[str, Any]) -> list[Violation]:
    """Rules JSON Schema cannot state. Runs on schema-shaped data only where shaped."""
    found: list[Violation] = []

    def check_time(pointer: str, value: Any) -> None:
        if isinstance(value, str):
            try:
                parse_timestamp(value)
            except ValueError as exc:
                found.append(Violation(pointer, f"{value!r} is not a real timestamp: {exc}"))

    check_time("/created_at", data.get("created_at"))
    cubes = data.get("cubes")
    if not isinstance(cubes, list):
        return found
    seen_ids: set[str] = set()
    seen_paths: set[str] = set()
    folders: set[str] = set()
    for i, cube in enumerate(cubes):
        if not isinstance(cube, dict):
            continue
        cube_id = cube.get("id")
        if isinstance(cube_id, str):
            if cube_id in seen_ids:
                found.append(Violation(f"/cubes/{i}/id", f"duplicate cube id {cube_id!r}"))
            seen_ids.add(cube_id)
        for key in ("created_at", "updated_at"):
            check_time(f"/cubes/{i}/{key}", cube.get(key))
        governance, behaviour = cube.get("governance"), cube.get("behaviour")
        if isinstance(governance, dict):
            check_time(f"/cubes/{i}/governance/expires_at", governance.get("expires_at"))
        if isinstance(behaviour, dict):
            check_time(f"/cubes/{i}/behaviour/last_accessed_at", behaviour.get("last_accessed_at"))
        found.extend(chain_violations(cube, f"/cubes/{i}"))
        payloads = cube.get("payloads")
        if not isinstance(payloads, list):
            continue
        for j, payload in enumerate(payloads):
            path = payload.get("path") if isinstance(payload, dict) else None
            if not isinstance(path, str):
                continue
            pointer = f"/cubes/{i}/payloads/{j}/path"
            folded = path.casefold()
            if folded in seen_paths:
                found.append(Violation(pointer, f"duplicate payload path {path!r}"))
            parents = {folded.rsplit("/", n)[0] for n in range(1, folded.count("/") + 1)}
            if folded in folders or parents & seen_paths:
                found.append(
                    Violation(pointer, f"payload path {path!r} clashes with a folder of another")
                )
            seen_paths.add(folded)
            folders |= parents
            if isinstance(cube_id, str) and not path.startswith(f"payloads/{cube_id}/"):
                found.append(
                    Violation(pointer, f"payload path must be under 'payloads/{cube_id}/'")
                )
    return found
