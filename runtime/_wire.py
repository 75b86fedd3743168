"""The registry's JSON wire format, mapped to typed objects in one place.

This is the only module that knows field names of the registry's resolve
response and error body (``memstore/API.md``). Everything here validates
outside data and raises :class:`runtime.errors.RegistryError`
(``registry.bad_response``) or a protocol error with its own code; nothing
else in the runtime touches raw JSON from the registry.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocol import Manifest, MIPError, PublicKey, Signature, canonical_bytes

from .errors import RegistryError

__all__ = ["NamespaceKey", "PackLocation", "Resolution", "parse_error", "parse_resolution"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class NamespaceKey:
    keyid: str
    public_key: PublicKey
    revoked_at: str | None
    label: str = ""

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class PackLocation:
    sha256: str
    size: int
    url: str


@dataclass(frozen=True)
class Resolution:
    """A resolved ``name@version``: what to download and how to trust it."""

    name: str
    version: str
    manifest: Manifest
    manifest_bytes: bytes
    signatures: tuple[Signature, ...]
    keys: tuple[NamespaceKey, ...]
    pack: PackLocation
    published_at: str | None = None
    yanked: bool = False
    yanked_reason: str = ""
    deprecated: bool = False
    deprecation_message: str = ""

    def trusted_keys(self) -> list[PublicKey]:
        """The namespace's keys that are not revoked (revoked ones are never trusted)."""
        return [k.public_key for k in self.keys if not k.revoked]


def _bad(message: str) -> RegistryError:
    return RegistryError(f"unexpected resolve response: {message}", code="registry.bad_response")


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(f"field {key!r} is missing or has the wrong type")
    return value


def parse_resolution(data: Any) -> Resolution:
    """Validate and convert a resolve response body (already JSON-decoded)."""
    if not isinstance(data, dict):
        raise _bad("the body is not a JSON object")
    name = _get(data, "name", str)
    version = _get(data, "version", str)
    manifest_bytes: bytes
    if isinstance(data.get("manifest_b64"), str):
        try:
            manifest_bytes = base64.b64decode(data["manifest_b64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _bad("manifest_b64 is not base64") from exc
    elif isinstance(data.get("manifest"), dict):
        try:
            manifest_bytes = canonical_bytes(data["manifest"])
        except (MIPError, ValueError, TypeError) as exc:
            raise _bad("manifest cannot be put in canonical form") from exc
    else:
        raise _bad("neither manifest_b64 nor manifest is present")
    manifest = Manifest.from_bytes(manifest_bytes)  # protocol errors pass through with their codes
    if manifest.name != name or manifest.version != version:
        raise _bad(f"manifest is {manifest.ref}, response says {name}@{version}")
    raw_sigs = _get(data, "signatures", list)
    signatures = tuple(Signature.from_dict(s) for s in raw_sigs)
    keys: list[NamespaceKey] = []
    for raw in _get(data, "keys", list):
        if not isinstance(raw, dict):
            raise _bad("a key is not an object")
        public = PublicKey.from_text(_get(raw, "public_key", str))
        revoked = raw.get("revoked_at")
        if revoked is not None and not isinstance(revoked, str):
            raise _bad("revoked_at is not a string")
        label = raw.get("label", "")
        keys.append(NamespaceKey(public.keyid, public, revoked, label if isinstance(label, str) else ""))
    pack = _get(data, "pack", dict)
    sha256 = _get(pack, "sha256", str)
    if not _HEX64.match(sha256):
        raise _bad("pack.sha256 is not a sha256 hex digest")
    size = _get(pack, "size", int)
    if size < 0:
        raise _bad("pack.size is negative")
    url = _get(pack, "url", str)

    def opt_str(key: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) else ""

    published = data.get("published_at")
    return Resolution(
        name=name,
        version=version,
        manifest=manifest,
        manifest_bytes=manifest_bytes,
        signatures=signatures,
        keys=tuple(keys),
        pack=PackLocation(sha256, size, url),
        published_at=published if isinstance(published, str) else None,
        yanked=data.get("yanked") is True,
        yanked_reason=opt_str("yanked_reason"),
        deprecated=data.get("deprecated") is True,
        deprecation_message=opt_str("deprecation_message"),
    )


def parse_error(status: int, body: bytes) -> RegistryError:
    """Turn an error response into a RegistryError with the server's stable code."""
    code, message, detail = f"http.{status}", f"the registry answered HTTP {status}", {}
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        err = data["error"]
        if isinstance(err.get("code"), str) and err["code"]:
            code = err["code"]
        if isinstance(err.get("message"), str) and err["message"]:
            message = err["message"]
        if isinstance(err.get("detail"), dict):
            detail = err["detail"]
    return RegistryError(message, code=code, status=status, **{"server_detail": detail})
