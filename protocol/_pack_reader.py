"""Reading a MIP 1 pack: one streaming pass that trusts nothing, extracting only on success.

The first member must be ``manifest.json``, in RFC 8785 canonical form and
valid; every other member must pass the member rules
(:mod:`protocol._pack_members`) and be a payload the manifest lists or a
signature named by its key id. Sizes are checked against the manifest before
a byte is read, digests and payload content (:mod:`protocol.payloads`) while
streaming; the limits of :class:`protocol.archive.ReadLimits` are enforced
throughout (:mod:`protocol._pack_limits`). With a target, files are written
through :class:`protocol._pack_extract.Extraction`, committed at the very end
and removed on any failure.

:func:`protocol.archive.read_pack` tells MIP 1 from MIP 2 by the first bytes
and owns the extraction; the member helpers here (the manifest, signatures,
hashed member streams) serve the MIP 2 reader (:mod:`protocol._pack2_reader`)
too.

Not here: signature *trust* decisions (callers pass :attr:`Pack.signatures` to
:func:`protocol.trust.verify_signatures`), writing (:mod:`protocol._pack_writer`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

from ._pack_extract import Extraction
from ._pack_limits import CHUNK, Budget, CountingReader, Inflated, ReadLimits, safe_tarinfo
from ._pack_members import MANIFEST_MEMBER, SIGNATURE_RE, check_member_name, check_member_type
from .canonical import canonical_bytes
from .errors import (
    ArchiveError,
    IntegrityError,
    LimitExceededError,
    ManifestError,
    MIPError,
    PayloadError,
)
from .manifest import Manifest, MemCube, PayloadRef, parse_json
from .payloads import validate_payload
from .signing import Signature

__all__ = [
    "MemberStream",
    "Pack",
    "Sink",
    "member_file",
    "read_manifest",
    "read_pack1",
    "read_signature",
]


@dataclass(frozen=True)
class Pack:
    """What a successful read returns. ``root`` is set when files were extracted."""

    manifest: Manifest
    manifest_bytes: bytes
    signatures: tuple[Signature, ...]
    file_sha256: str
    file_size: int
    root: Path | None = None

    def payload_path(self, ref: PayloadRef) -> Path:
        if self.root is None:
            raise ValueError("this pack was read without extracting files")
        return self.root / ref.path


class Sink(Protocol):
    """Where a member's bytes are copied as they are read."""

    def write(self, data: bytes, /) -> object: ...


class MemberStream(io.RawIOBase):
    """A member's bytes as read: hashed and optionally copied to a sink."""

    def __init__(self, source: IO[bytes], sink: Sink | None) -> None:
        self._source = source
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        self._consume(data)
        buffer[: len(data)] = data
        return len(data)

    def _consume(self, data: bytes) -> None:
        self.size += len(data)
        self.sha256.update(data)
        if self._sink is not None:
            self._sink.write(data)

    def drain(self) -> None:
        for chunk in iter(lambda: self._source.read(CHUNK), b""):
            self._consume(chunk)

    def check(
        self,
        size: int,
        sha256: str,
        content_error: PayloadError | None,
        *,
        what: str,
        **detail: Any,
    ) -> None:
        """Refuse bytes that are not the signed ones, then a content problem found on the way.

        Integrity first: a payload or blob that is not the signed bytes is reported
        as such, whatever its content looks like (MIP 1 and MIP 2 readers alike).
        """
        if self.size != size:
            raise IntegrityError(
                f"{what} has {self.size} bytes; the manifest says {size}",
                code="integrity.size_mismatch",
                **detail,
            )
        if self.sha256.hexdigest() != sha256:
            raise IntegrityError(
                f"{what} does not match its sha256 in the manifest",
                code="integrity.digest_mismatch",
                **detail,
            )
        if content_error is not None:
            content_error.detail.setdefault("path", detail.get("path"))
            raise content_error


def read_pack1(
    raw: BinaryIO, limits: ReadLimits, extraction: Extraction | None, check_content: bool
) -> Pack:
    """Read a MIP 1 pack (gzip'd tar) from ``raw``; the caller owns the extraction."""
    counter = CountingReader(raw, limits)
    budget = Budget(counter, limits)
    try:
        gz = gzip.GzipFile(fileobj=counter, mode="rb")
        inflated = Inflated(gz, budget)
        with tarfile.open(
            fileobj=inflated,
            mode="r|",
            encoding="utf-8",
            errors="strict",
            tarinfo=safe_tarinfo(limits),
        ) as tar:
            pack = _read_members(tar, limits, extraction, check_content)
            # Read to the end of the gzip stream, so the file digest covers every
            # byte, and check that nothing but zero padding follows the archive.
            inflated.check_end(tar.offset)
    except MIPError:
        raise
    except UnicodeError as exc:
        raise ArchiveError(
            f"a member name is not valid UTF-8: {exc}", code="archive.bad_name_encoding"
        ) from exc
    except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(
            f"not a readable .memcube (gzip'd tar): {exc}", code="archive.corrupt"
        ) from exc
    return Pack(
        manifest=pack[0],
        manifest_bytes=pack[1],
        signatures=pack[2],
        file_sha256=counter.sha256.hexdigest(),
        file_size=counter.count,
        root=extraction.target if extraction is not None else None,
    )


def _read_members(
    tar: tarfile.TarFile,
    limits: ReadLimits,
    extraction: Extraction | None,
    check_content: bool,
) -> tuple[Manifest, bytes, tuple[Signature, ...]]:
    manifest: Manifest | None = None
    manifest_bytes = b""
    refs: dict[str, tuple[MemCube, PayloadRef]] = {}
    seen: set[str] = set()
    signatures: dict[str, Signature] = {}
    count = 0
    for member in tar:
        count += 1
        if count > limits.max_members:
            raise LimitExceededError(
                f"pack has more than {limits.max_members} members", code="archive.limit.members"
            )
        name = member.name
        check_member_name(name)
        check_member_type(member)
        folded = name.casefold()
        if folded in seen:
            raise ArchiveError(f"member {name!r} appears twice", code="archive.duplicate_member")
        seen.add(folded)
        if manifest is None:
            if name != MANIFEST_MEMBER:
                raise ArchiveError(
                    f"the first member must be {MANIFEST_MEMBER}, found {name!r}",
                    code="archive.manifest_not_first",
                )
            manifest, manifest_bytes = read_manifest(tar, member, limits)
            if manifest.major != 1:
                raise ArchiveError(
                    f"a MIP {manifest.mip_version} manifest in a gzip'd (MIP 1) container",
                    code="archive.version_mismatch",
                )
            if extraction is not None:
                with extraction.open(name) as out:
                    out.write(manifest_bytes)
            for cube in manifest.cubes:
                for ref in cube.payloads:
                    refs[ref.path] = (cube, ref)
            declared = sum(ref.size for _, ref in refs.values())
            if declared > limits.max_total_bytes:
                raise LimitExceededError(
                    f"manifest declares {declared} bytes of payloads; "
                    f"the limit is {limits.max_total_bytes}",
                    code="archive.limit.total_size",
                )
            continue
        if name in refs:
            cube, ref = refs[name]
            _read_payload(tar, member, cube, ref, extraction, check_content)
            continue
        match = SIGNATURE_RE.match(name)
        if match:
            if len(signatures) >= limits.max_signatures:
                raise LimitExceededError("too many signatures", code="archive.limit.signatures")
            sig = read_signature(tar, member, extraction)
            if sig.keyid != match.group(1):
                raise ArchiveError(
                    f"{name} holds a signature by another key ({sig.keyid})",
                    code="archive.signature_name_mismatch",
                )
            signatures[sig.keyid] = sig
            continue
        raise ArchiveError(
            f"member {name!r} is not listed in the manifest", code="archive.unlisted_member"
        )
    if manifest is None:
        raise ArchiveError("the pack has no manifest.json", code="archive.missing_manifest")
    missing = sorted(set(refs) - seen)
    if missing:
        raise ArchiveError(
            f"payload {missing[0]} listed in the manifest is not in the pack"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            code="archive.missing_member",
            paths=missing,
        )
    return manifest, manifest_bytes, tuple(signatures[k] for k in sorted(signatures))


def member_file(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = tar.extractfile(member)
    if handle is None:  # pragma: no cover - regular files always have one
        raise ArchiveError(f"member {member.name!r} has no data", code="archive.corrupt")
    return handle


def _read_small(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int, code: str) -> bytes:
    if member.size > limit:
        raise LimitExceededError(
            f"{member.name} is {member.size} bytes; the limit is {limit}", code=code
        )
    return member_file(tar, member).read(limit + 1)


def read_manifest(
    tar: tarfile.TarFile, member: tarfile.TarInfo, limits: ReadLimits
) -> tuple[Manifest, bytes]:
    data = _read_small(tar, member, limits.max_manifest_bytes, "archive.limit.manifest_size")
    value = parse_json(data, what="manifest")
    manifest = Manifest.from_dict(value)
    # Signatures cover these exact bytes, so they must be the canonical form:
    # otherwise two readers could disagree about what was signed.
    if canonical_bytes(value) != data:
        raise ManifestError(
            "manifest.json is not in RFC 8785 canonical form", code="manifest.not_canonical"
        )
    return manifest, data


def read_signature(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    extraction: Extraction | None,
    limit: int = 4096,
) -> Signature:
    data = _read_small(tar, member, limit, "archive.limit.signature_size")
    sig = Signature.from_bytes(data)
    if extraction is not None:
        with extraction.open(member.name) as out:
            out.write(data)
    return sig


def _read_payload(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    cube: MemCube,
    ref: PayloadRef,
    extraction: Extraction | None,
    check_content: bool,
) -> None:
    if member.size != ref.size:
        raise IntegrityError(
            f"{ref.path} is {member.size} bytes; the manifest says {ref.size}",
            code="integrity.size_mismatch",
            path=ref.path,
        )
    sink = extraction.open(ref.path) if extraction is not None else None
    try:
        stream = MemberStream(member_file(tar, member), sink)
        content_error: PayloadError | None = None
        if check_content:
            try:
                validate_payload(cube, ref, io.BufferedReader(stream, CHUNK))
            except PayloadError as exc:
                content_error = exc
        stream.drain()
    finally:
        if sink is not None:
            sink.close()
    stream.check(ref.size, ref.sha256, content_error, what=ref.path, path=ref.path)
