"""Upload sessions (whole packs and single blobs), missing blobs and published versions.

Not here: resolve and keys (:mod:`.registry`), HTTP (:mod:`runtime.client`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import _fields as _f

__all__ = [
    "BlobUpload",
    "PublishCheck",
    "PublishFinding",
    "PublishResult",
    "UploadSession",
    "parse_blob_upload",
    "parse_blobs_missing",
    "parse_publish_check",
    "parse_publish_result",
    "parse_upload_offset",
    "parse_upload_session",
]


@dataclass(frozen=True)
class PublishFinding:
    """What the registry's publish-time scan found in one memory (the value masked)."""

    kind: str  # secret | personal_data | prompt_injection
    rule: str
    cube_id: str
    record_id: str
    excerpt: str


@dataclass(frozen=True)
class PublishResult:
    name: str
    version: str
    sha256: str
    size: int
    signed_by: tuple[str, ...]
    ingest_status: str
    url: str
    findings: tuple[PublishFinding, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class UploadSession:
    """A resumable upload: where to send chunks, how big they may be, where to go on."""

    id: str
    offset: int
    max_chunk_bytes: int | None


def parse_upload_session(data: Any) -> UploadSession:
    """``POST /api/v1/uploads/``'s answer: the session to send chunks to."""
    session_id = _f.field(data, "id", str)
    return UploadSession(
        id=session_id,
        offset=_f.count(data, "offset"),
        max_chunk_bytes=_f.count(data, "max_chunk_bytes") or None,
    )


def parse_upload_offset(data: Any) -> int:
    """An upload session's state: how many bytes the server has."""
    return int(_f.field(data, "offset", int))


def parse_publish_result(data: Any) -> PublishResult:
    """A published version (``packs/upload`` or ``uploads/<id>/complete``)."""
    ingest = data.get("ingest") if isinstance(data, dict) else None
    return PublishResult(
        name=_f.field(data, "name", str),
        version=_f.field(data, "version", str),
        sha256=_f.field(data, "sha256", str),
        size=_f.field(data, "size", int),
        signed_by=tuple(str(k) for k in _f.field(data, "signed_by", list)),
        ingest_status=str(ingest.get("status", "")) if isinstance(ingest, dict) else "",
        url=str(data.get("url", "")),
        findings=_findings(data.get("findings")),
    )


@dataclass(frozen=True)
class PublishCheck:
    """What a publish would say (``packs/check-manifest``): nothing was published."""

    name: str
    version: str
    memories_scanned: int
    findings: tuple[PublishFinding, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def parse_publish_check(data: Any) -> PublishCheck:
    """``POST /api/v1/packs/check-manifest``'s answer."""
    return PublishCheck(
        name=_f.field(data, "name", str),
        version=_f.field(data, "version", str),
        memories_scanned=_f.count(data, "memories_scanned"),
        findings=_findings(data.get("findings")),
    )


def _findings(value: Any) -> tuple[PublishFinding, ...]:
    """The scan findings of a publish answer (absent from registries without a scan)."""
    if not isinstance(value, list):
        return ()
    keys = ("kind", "rule", "cube_id", "record_id", "excerpt")
    return tuple(
        PublishFinding(*(str(item.get(k, "")) for k in keys))
        for item in value
        if isinstance(item, dict)
    )


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
    sha256 = _f.field(data, "sha256", str)
    if not _f.HEX64.match(sha256):
        raise _f.invalid("an upload whose sha256 is not a sha256 hex digest")
    size, offset = _f.count(data, "size"), _f.count(data, "offset")
    status = _f.field(data, "status", str)
    if status not in _UPLOAD_STATUSES:
        raise _f.invalid(f"an unknown upload status {status!r}")
    if offset > size:
        raise _f.invalid(f"an upload offset {offset} past its size {size}")
    upload_id = _f.field(data, "id", str)
    if not upload_id or "/" in upload_id:
        raise _f.invalid(f"an invalid upload id {upload_id!r}")
    return BlobUpload(
        id=upload_id,
        sha256=sha256,
        size=size,
        offset=offset,
        status=status,
        max_chunk_bytes=_f.count(data, "max_chunk_bytes") or None,
    )


def parse_blobs_missing(data: Any, asked: Sequence[str]) -> tuple[str, ...]:
    """``POST /api/v1/blobs/missing``'s answer: the asked digests still to upload.

    Only digests that were asked count (anything else is a bad answer), each once.
    """
    raw = _f.field(data, "missing", list)
    wanted = set(asked)
    missing: dict[str, None] = {}
    for digest in raw:
        if not isinstance(digest, str) or digest not in wanted:
            raise _f.invalid(f"a missing digest that was not asked: {digest!r}")
        missing[digest] = None
    return tuple(missing)
