"""The registry's JSON wire format, mapped to typed objects in one place.

This is the only module that knows field names of the registry's answers
(``memstore/API.md``): resolve, error bodies, tokens, ``whoami``, signing keys,
uploads and published versions. Every parser here validates outside data and
raises :class:`runtime.errors.RegistryError` (``registry.bad_response``) or a
protocol error with its own code; nothing else in the runtime touches raw JSON
from the registry.

Not here: HTTP (:mod:`runtime.client`), trust decisions (:mod:`runtime.install`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protocol import Manifest, MIPError, PublicKey, Signature, canonical_bytes, manifest_blobs

from .errors import RegistryError

__all__ = [
    "BlobLocation",
    "NamespaceKey",
    "PackLocation",
    "PublishResult",
    "Resolution",
    "TokenInfo",
    "UploadSession",
    "WhoAmI",
    "parse_error",
    "parse_key",
    "parse_keys",
    "parse_publish_result",
    "parse_resolution",
    "parse_token",
    "parse_upload_offset",
    "parse_upload_session",
    "parse_whoami",
]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------- the objects


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


@dataclass(frozen=True)
class WhoAmI:
    username: str
    namespaces: tuple[tuple[str, str], ...]  # (namespace, role)
    scopes: tuple[str, ...] | None


@dataclass(frozen=True)
class PublishResult:
    name: str
    version: str
    sha256: str
    size: int
    signed_by: tuple[str, ...]
    ingest_status: str
    url: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class UploadSession:
    """A resumable upload: where to send chunks, how big they may be, where to go on."""

    id: str
    offset: int
    max_chunk_bytes: int | None


# ---------------------------------------------------------------- field readers


def _bad(message: str) -> RegistryError:
    return RegistryError(f"unexpected resolve response: {message}", code="registry.bad_response")


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """A resolve response's field, of ``kind``."""
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(f"field {key!r} is missing or has the wrong type")
    return value


def _invalid(what: str) -> RegistryError:
    return RegistryError(f"the registry's answer has {what}", code="registry.bad_response")


def _field(data: Any, key: str, kind: type) -> Any:
    """Any other answer's field, of ``kind``."""
    if not isinstance(data, dict) or not isinstance(data.get(key), kind):
        raise _invalid(f"no valid {key!r}")
    return data[key]


def _text(data: Mapping[str, Any], key: str) -> str:
    """An optional string field ("" when absent or not a string)."""
    value = data.get(key)
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- parsers


def parse_key(data: Any, *, own_keyid: bool = False) -> NamespaceKey:
    """A key object, as the keys endpoints and resolve's ``keys`` send it.

    The server's ``keyid`` must be a sha256 hex digest. With ``own_keyid``
    (resolve) the key's own id is used instead and the server's is not read:
    what is trusted derives from the key alone. A ``public_key`` that is not
    a key raises the protocol's ``signature.bad_key``.
    """
    keyid = None if own_keyid else _field(data, "keyid", str)
    if keyid is not None and not _HEX64.match(keyid):
        raise _invalid(f"an invalid keyid {keyid!r}")
    public = PublicKey.from_text(_field(data, "public_key", str))
    revoked_at = data.get("revoked_at")
    if revoked_at is not None and not isinstance(revoked_at, str):
        raise _invalid("an invalid 'revoked_at'")
    return NamespaceKey(
        keyid=public.keyid if keyid is None else keyid,
        public_key=public,
        revoked_at=revoked_at,
        label=_text(data, "label"),
        created_at=_text(data, "created_at"),
        revocation_reason=_text(data, "revocation_reason"),
    )


def parse_keys(data: Any) -> tuple[NamespaceKey, ...]:
    """A namespace's key list (revoked keys included)."""
    if not isinstance(data, list):
        raise _invalid("no list of keys")
    return tuple(parse_key(item) for item in data)


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
    # Protocol errors pass through with their codes.
    manifest = Manifest.from_bytes(manifest_bytes)
    if manifest.name != name or manifest.version != version:
        raise _bad(f"manifest is {manifest.ref}, response says {name}@{version}")
    raw_sigs = _get(data, "signatures", list)
    signatures = tuple(Signature.from_dict(s) for s in raw_sigs)
    keys = tuple(parse_key(raw, own_keyid=True) for raw in _get(data, "keys", list))
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
        yanked_reason=_text(data, "yanked_reason"),
        deprecated=data.get("deprecated") is True,
        deprecation_message=_text(data, "deprecation_message"),
        blobs=_blob_locations(raw_blobs),
    )


def _pack_location(
    data: Mapping[str, Any], manifest: Manifest, manifest_bytes: bytes, raw_blobs: Any
) -> PackLocation:
    """Resolve's ``pack``; for a version published as a manifest over blobs (``pack: null``,
    MIP 2) one with no ``url``, named by the manifest's digest and the blobs' total size."""
    if data.get("pack") is None and "pack" in data:
        if not raw_blobs:
            raise _bad("a version without a pack file lists no blobs")
        total = sum(entry.size for entry in manifest_blobs(manifest))
        return PackLocation(hashlib.sha256(manifest_bytes).hexdigest(), total, "")
    pack = _get(data, "pack", dict)
    sha256 = _get(pack, "sha256", str)
    if not _HEX64.match(sha256):
        raise _bad("pack.sha256 is not a sha256 hex digest")
    size = _get(pack, "size", int)
    if size < 0:
        raise _bad("pack.size is negative")
    return PackLocation(sha256, size, _get(pack, "url", str))


def _blob_locations(raw: Any) -> tuple[BlobLocation, ...]:
    """A resolve answer's ``blobs`` (or ``payloads``): one location per distinct digest."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _bad("blobs is not a list")
    found: dict[str, BlobLocation] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise _bad("a blob entry is not an object")
        sha256 = _get(item, "sha256", str)
        if not _HEX64.match(sha256):
            raise _bad("a blob's sha256 is not a sha256 hex digest")
        size = _get(item, "size", int)
        if size < 0:
            raise _bad("a blob's size is negative")
        found.setdefault(
            sha256, BlobLocation(sha256, size, _text(item, "media_type"), _get(item, "url", str))
        )
    return tuple(found.values())


def parse_token(data: Any) -> TokenInfo:
    """``POST /api/v1/auth/tokens``'s answer: the new token (shown once)."""
    return TokenInfo(
        token=_field(data, "token", str),
        id=_field(data, "id", int),
        name=str(data.get("name", "")),
        scopes=tuple(str(s) for s in _field(data, "scopes", list)),
    )


def parse_whoami(data: Any) -> WhoAmI:
    """``GET /api/v1/auth/whoami``'s answer: the user, their namespaces and roles."""
    namespaces = tuple(
        (str(n.get("name")), str(n.get("role")))
        for n in _field(data, "namespaces", list)
        if isinstance(n, dict)
    )
    scopes = data.get("scopes")
    return WhoAmI(
        username=_field(data, "username", str),
        namespaces=namespaces,
        scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else None,
    )


def _count(data: Mapping[str, Any], key: str) -> int:
    """An optional byte count (0 when absent)."""
    value = data.get(key) or 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _invalid(f"an invalid {key!r}")
    return value


def parse_upload_session(data: Any) -> UploadSession:
    """``POST /api/v1/uploads/``'s answer: the session to send chunks to."""
    session_id = _field(data, "id", str)
    return UploadSession(
        id=session_id,
        offset=_count(data, "offset"),
        max_chunk_bytes=_count(data, "max_chunk_bytes") or None,
    )


def parse_upload_offset(data: Any) -> int:
    """An upload session's state: how many bytes the server has."""
    return int(_field(data, "offset", int))


def parse_publish_result(data: Any) -> PublishResult:
    """A published version (``packs/upload`` or ``uploads/<id>/complete``)."""
    ingest = data.get("ingest") if isinstance(data, dict) else None
    return PublishResult(
        name=_field(data, "name", str),
        version=_field(data, "version", str),
        sha256=_field(data, "sha256", str),
        size=_field(data, "size", int),
        signed_by=tuple(str(k) for k in _field(data, "signed_by", list)),
        ingest_status=str(ingest.get("status", "")) if isinstance(ingest, dict) else "",
        url=str(data.get("url", "")),
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


# ---------------------------------------------------------------- publishing blob by blob (MIP 2)

__all__ += ["BlobUpload", "parse_blob_upload", "parse_blobs_missing"]

_UPLOAD_STATUSES = frozenset({"open", "completed", "failed", "cancelled", "expired"})


@dataclass(frozen=True)
class BlobUpload:
    """One blob's resumable upload (``/api/v1/blobs/uploads``): where it stands."""

    id: str
    sha256: str
    size: int
    offset: int
    status: str  # open | completed | failed | cancelled | expired
    max_chunk_bytes: int | None

    @property
    def completed(self) -> bool:
        return self.status == "completed"


def parse_blob_upload(data: Any) -> BlobUpload:
    """A blob upload as ``POST|GET|PATCH /api/v1/blobs/uploads[/<id>]`` answer it."""
    sha256 = _field(data, "sha256", str)
    if not _HEX64.match(sha256):
        raise _invalid("an upload whose sha256 is not a sha256 hex digest")
    size, offset = _count(data, "size"), _count(data, "offset")
    status = _field(data, "status", str)
    if status not in _UPLOAD_STATUSES:
        raise _invalid(f"an unknown upload status {status!r}")
    if offset > size:
        raise _invalid(f"an upload offset {offset} past its size {size}")
    upload_id = _field(data, "id", str)
    if not upload_id or "/" in upload_id:
        raise _invalid(f"an invalid upload id {upload_id!r}")
    return BlobUpload(
        id=upload_id,
        sha256=sha256,
        size=size,
        offset=offset,
        status=status,
        max_chunk_bytes=_count(data, "max_chunk_bytes") or None,
    )


def parse_blobs_missing(data: Any, asked: Sequence[str]) -> tuple[str, ...]:
    """``POST /api/v1/blobs/missing``'s answer: the asked digests still to upload.

    Only digests that were asked count (anything else is a bad answer), each once.
    """
    raw = _field(data, "missing", list)
    wanted = set(asked)
    missing: dict[str, None] = {}
    for digest in raw:
        if not isinstance(digest, str) or digest not in wanted:
            raise _invalid(f"a missing digest that was not asked: {digest!r}")
        missing[digest] = None
    return tuple(missing)
