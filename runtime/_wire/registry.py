"""Resolve answers, namespace keys, tokens, ``whoami`` and error bodies.

Not here: uploads and publishing (:mod:`.uploads`), HTTP (:mod:`runtime.client`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocol import Manifest, MIPError, PublicKey, Signature, canonical_bytes, manifest_blobs

from ..errors import RegistryError
from . import _fields as _f

__all__ = [
    "BlobLocation",
    "NamespaceKey",
    "PackLocation",
    "Resolution",
    "TokenInfo",
    "WhoAmI",
    "parse_error",
    "parse_key",
    "parse_keys",
    "parse_resolution",
    "parse_token",
    "parse_whoami",
]


@dataclass(frozen=True)
class NamespaceKey:
    """A signing key registered for a namespace (revoked keys stay listed)."""

    keyid: str
    public_key: PublicKey
    revoked_at: str | None
    label: str = ""
    created_at: str = ""
    revocation_reason: str = ""

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class PackLocation:
    """The version's ``.memcube`` file; ``url`` is empty for one published as a manifest over
    blobs (then ``sha256`` is the manifest's digest and ``size`` the blobs' total)."""

    sha256: str
    size: int
    url: str


@dataclass(frozen=True)
class BlobLocation:
    """Where one blob of a resolved version can be fetched (Range supported).

    Only ``sha256`` and ``url`` are used to fetch: what the blob must be
    (size, media type) comes from the signed manifest, not from here.
    """

    sha256: str
    size: int
    media_type: str
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
    #: per-blob URLs: the answer's ``blobs`` (MIP 2 registries), else its ``payloads``
    blobs: tuple[BlobLocation, ...] = ()

    def blob_url(self, sha256: str) -> str | None:
        """The URL to fetch blob ``sha256`` from, or None when the answer names none."""
        return next((b.url for b in self.blobs if b.sha256 == sha256), None)

    def trusted_keys(self) -> list[PublicKey]:
        """The namespace's keys that are not revoked (revoked ones are never trusted)."""
        return [k.public_key for k in self.keys if not k.revoked]


@dataclass(frozen=True)
class TokenInfo:
    token: str
    id: int
    name: str
    scopes: tuple[str, ...]
    #: When the token expires (ISO 8601), None from a registry that does not say.
    expires_at: str | None = None


@dataclass(frozen=True)
class WhoAmI:
    username: str
    namespaces: tuple[tuple[str, str], ...]  # (namespace, role)
    scopes: tuple[str, ...] | None


def parse_key(data: Any, *, own_keyid: bool = False) -> NamespaceKey:
    """A key object, as the keys endpoints and resolve's ``keys`` send it.

    The server's ``keyid`` must be a sha256 hex digest. With ``own_keyid``
    (resolve) the key's own id is used instead and the server's is not read:
    what is trusted derives from the key alone. A ``public_key`` that is not
    a key raises the protocol's ``signature.bad_key``.
    """
    keyid = None if own_keyid else _f.field(data, "keyid", str)
    if keyid is not None and not _f.HEX64.match(keyid):
        raise _f.invalid(f"an invalid keyid {keyid!r}")
    public = PublicKey.from_text(_f.field(data, "public_key", str))
    revoked_at = data.get("revoked_at")
    if revoked_at is not None and not isinstance(revoked_at, str):
        raise _f.invalid("an invalid 'revoked_at'")
    return NamespaceKey(
        keyid=public.keyid if keyid is None else keyid,
        public_key=public,
        revoked_at=revoked_at,
        label=_f.text(data, "label"),
        created_at=_f.text(data, "created_at"),
        revocation_reason=_f.text(data, "revocation_reason"),
    )


def parse_keys(data: Any) -> tuple[NamespaceKey, ...]:
    """A namespace's key list (revoked keys included)."""
    if not isinstance(data, list):
        raise _f.invalid("no list of keys")
    return tuple(parse_key(item) for item in data)


def parse_resolution(data: Any) -> Resolution:
    """Validate and convert a resolve response body (already JSON-decoded)."""
    if not isinstance(data, dict):
        raise _f.bad("the body is not a JSON object")
    name = _f.get(data, "name", str)
    version = _f.get(data, "version", str)
    manifest_bytes: bytes
    if isinstance(data.get("manifest_b64"), str):
        try:
            manifest_bytes = base64.b64decode(data["manifest_b64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _f.bad("manifest_b64 is not base64") from exc
    elif isinstance(data.get("manifest"), dict):
        try:
            manifest_bytes = canonical_bytes(data["manifest"])
        except (MIPError, ValueError, TypeError) as exc:
            raise _f.bad("manifest cannot be put in canonical form") from exc
    else:
        raise _f.bad("neither manifest_b64 nor manifest is present")
    # Protocol errors pass through with their codes.
    manifest = Manifest.from_bytes(manifest_bytes)
    if manifest.name != name or manifest.version != version:
        raise _f.bad(f"manifest is {manifest.ref}, response says {name}@{version}")
    raw_sigs = _f.get(data, "signatures", list)
    signatures = tuple(Signature.from_dict(s) for s in raw_sigs)
    keys = tuple(parse_key(raw, own_keyid=True) for raw in _f.get(data, "keys", list))
    published = data.get("published_at")
    raw_blobs = data.get("blobs") if isinstance(data.get("blobs"), list) else data.get("payloads")
    location = _pack_location(data, manifest, manifest_bytes, raw_blobs)
    return Resolution(
        name=name,
        version=version,
        manifest=manifest,
        manifest_bytes=manifest_bytes,
        signatures=signatures,
        keys=keys,
        pack=location,
        published_at=published if isinstance(published, str) else None,
        yanked=data.get("yanked") is True,
        yanked_reason=_f.text(data, "yanked_reason"),
        deprecated=data.get("deprecated") is True,
        deprecation_message=_f.text(data, "deprecation_message"),
        blobs=_blob_locations(raw_blobs),
    )


def _pack_location(
    data: Mapping[str, Any], manifest: Manifest, manifest_bytes: bytes, raw_blobs: Any
) -> PackLocation:
    """Resolve's ``pack``; for a version published as a manifest over blobs (``pack: null``,
    MIP 2) one with no ``url``, named by the manifest's digest and the blobs' total size."""
    if data.get("pack") is None and "pack" in data:
        if not raw_blobs:
            raise _f.bad("a version without a pack file lists no blobs")
        total = sum(entry.size for entry in manifest_blobs(manifest))
        return PackLocation(hashlib.sha256(manifest_bytes).hexdigest(), total, "")
    pack = _f.get(data, "pack", dict)
    sha256 = _f.get(pack, "sha256", str)
    if not _f.HEX64.match(sha256):
        raise _f.bad("pack.sha256 is not a sha256 hex digest")
    size = _f.get(pack, "size", int)
    if size < 0:
        raise _f.bad("pack.size is negative")
    return PackLocation(sha256, size, _f.get(pack, "url", str))


def _blob_locations(raw: Any) -> tuple[BlobLocation, ...]:
    """A resolve answer's ``blobs`` (or ``payloads``): one location per distinct digest."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _f.bad("blobs is not a list")
    found: dict[str, BlobLocation] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise _f.bad("a blob entry is not an object")
        sha256 = _f.get(item, "sha256", str)
        if not _f.HEX64.match(sha256):
            raise _f.bad("a blob's sha256 is not a sha256 hex digest")
        size = _f.get(item, "size", int)
        if size < 0:
            raise _f.bad("a blob's size is negative")
        found.setdefault(
            sha256,
            BlobLocation(sha256, size, _f.text(item, "media_type"), _f.get(item, "url", str)),
        )
    return tuple(found.values())


def parse_token(data: Any) -> TokenInfo:
    """``POST /api/v1/auth/tokens``'s answer: the new token (shown once)."""
    return TokenInfo(
        token=_f.field(data, "token", str),
        id=_f.field(data, "id", int),
        name=str(data.get("name", "")),
        scopes=tuple(str(s) for s in _f.field(data, "scopes", list)),
        expires_at=data["expires_at"] if isinstance(data.get("expires_at"), str) else None,
    )


def parse_whoami(data: Any) -> WhoAmI:
    """``GET /api/v1/auth/whoami``'s answer: the user, their namespaces and roles."""
    namespaces = tuple(
        (str(n.get("name")), str(n.get("role")))
        for n in _f.field(data, "namespaces", list)
        if isinstance(n, dict)
    )
    scopes = data.get("scopes")
    return WhoAmI(
        username=_f.field(data, "username", str),
        namespaces=namespaces,
        scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else None,
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
