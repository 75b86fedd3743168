"""The ``.memcube`` container: deterministic writing and safe reading.

A pack is a gzip-compressed POSIX tar (PAX) holding, in this order::

    manifest.json                 RFC 8785 canonical bytes of the manifest
    payloads/<cube-id>/<file>     every payload the manifest lists, sorted by path
    signatures/<keyid>.json       detached Ed25519 signatures, sorted by key id

Writing is deterministic: fixed member metadata (mtime 0, uid/gid 0, mode
0644, no user names), fixed order, gzip without a name or time, so the same
inputs give a byte-identical file (signatures included: Ed25519 is
deterministic).

Reading is a single streaming pass that trusts nothing: the first member must
be the manifest; every other member must be a regular file with a safe,
unique, listed name; sizes are checked against the manifest before a byte is
read, digests and content while streaming; hard limits bound the manifest,
the member count, the total size and the compression ratio. When a target
directory is given, files are written only inside it, into a private
``.mip-partial`` folder that is moved into place at the very end and removed
on any failure, so a failed read leaves the target as it was.

Not here: signature *trust* decisions (callers pass the result of
:func:`protocol.trust.verify_signatures`), registries, caches.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

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
    "MANIFEST_MEMBER",
    "Pack",
    "ReadLimits",
    "read_pack",
    "write_pack",
]

MANIFEST_MEMBER = "manifest.json"
SIGNATURE_DIR = "signatures/"
_SIGNATURE_RE = re.compile(r"^signatures/([0-9a-f]{64})\.json$")
_PARTIAL = ".mip-partial"
_CHUNK = 1024 * 1024
_GZIP_LEVEL = 6


@dataclass(frozen=True)
class ReadLimits:
    """Hard limits for reading a pack. Defaults suit packs of a few GiB."""

    max_pack_bytes: int = 8 * 1024**3
    max_manifest_bytes: int = 4 * 1024**2
    max_members: int = 10_000
    max_total_bytes: int = 16 * 1024**3
    max_compression_ratio: int = 200
    max_signatures: int = 64
    # PAX extended headers and GNU long names are read into memory by tar readers.
    max_header_bytes: int = 1024**2
    # Ratios are only meaningful once a little data has been read.
    ratio_grace_bytes: int = 4 * 1024**2


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


# --------------------------------------------------------------------------- writing


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def write_pack(
    out: Path,
    manifest: Manifest,
    payloads: Mapping[str, Path | bytes],
    signatures: Iterable[Signature] = (),
    *,
    manifest_bytes: bytes | None = None,
) -> Path:
    """Write a pack atomically to ``out`` (a temp file renamed into place).

    ``payloads`` maps each manifest payload path to its bytes or a file. The
    size and sha256 of each are checked against the manifest first, so a
    writer cannot produce a pack its own reader would refuse.
    """
    # Re-signing passes the bytes as read, so signatures stay valid whatever
    # a newer minor version put in the manifest.
    if manifest_bytes is None:
        manifest_bytes = manifest.canonical_bytes()
    refs = {p.path: p for p in manifest.payloads()}
    missing = sorted(set(refs) - set(payloads))
    unlisted = sorted(set(payloads) - set(refs))
    if missing or unlisted:
        raise ArchiveError(
            f"payload files do not match the manifest (missing {missing}, unlisted {unlisted})",
            code="archive.payload_set_mismatch",
        )
    for path, ref in refs.items():
        _check_source(ref, payloads[path])
    sigs = sorted({s.keyid: s for s in signatures}.values(), key=lambda s: s.keyid)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as raw:
            with (
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=_GZIP_LEVEL
                ) as gz,
                tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                tar.addfile(
                    _tarinfo(MANIFEST_MEMBER, len(manifest_bytes)), io.BytesIO(manifest_bytes)
                )
                for path in sorted(refs):
                    source = payloads[path]
                    if isinstance(source, bytes):
                        tar.addfile(_tarinfo(path, len(source)), io.BytesIO(source))
                    else:
                        with open(source, "rb") as fh:
                            tar.addfile(_tarinfo(path, refs[path].size), fh)
                for sig in sigs:
                    body = sig.to_bytes()
                    tar.addfile(
                        _tarinfo(f"{SIGNATURE_DIR}{sig.keyid}.json", len(body)),
                        io.BytesIO(body),
                    )
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _check_source(ref: PayloadRef, source: Path | bytes) -> None:
    if isinstance(source, bytes):
        digest, size = hashlib.sha256(source), len(source)
    else:
        with open(source, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256")
            size = fh.tell()
    if size != ref.size or digest.hexdigest() != ref.sha256:
        raise IntegrityError(
            f"payload {ref.path} does not match its manifest entry (size or sha256)",
            code="integrity.digest_mismatch",
            path=ref.path,
        )


# --------------------------------------------------------------------------- reading


class _CountingReader(io.RawIOBase):
    """Wraps the raw pack file: hashes it and counts compressed bytes read."""

    def __init__(self, raw: BinaryIO, limits: ReadLimits) -> None:
        self._raw = raw
        self._limits = limits
        self.sha256 = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        self.count += len(data)
        if self.count > self._limits.max_pack_bytes:
            raise LimitExceededError(
                f"pack is larger than {self._limits.max_pack_bytes} bytes",
                code="archive.limit.pack_size",
            )
        self.sha256.update(data)
        buffer[: len(data)] = data
        return len(data)


class _Budget:
    """Tracks decompressed bytes against the total and compression-ratio limits.

    Every decompressed byte counts (tar headers and padding included), so a
    bomb hidden in a PAX header or in padding is caught like one in a payload.
    """

    def __init__(self, counter: _CountingReader, limits: ReadLimits) -> None:
        self.counter = counter
        self.limits = limits
        self.total = 0

    def spend(self, amount: int) -> None:
        self.total += amount
        if self.total > self.limits.max_total_bytes:
            raise LimitExceededError(
                f"pack content exceeds {self.limits.max_total_bytes} bytes",
                code="archive.limit.total_size",
            )
        compressed = max(self.counter.count, 1)
        if (
            self.total > self.limits.ratio_grace_bytes
            and self.total > compressed * self.limits.max_compression_ratio
        ):
            raise LimitExceededError(
                f"compression ratio exceeds {self.limits.max_compression_ratio}:1 "
                "(a decompression bomb?)",
                code="archive.limit.compression_ratio",
            )


_TAIL_BYTES = 64 * 1024


class _Inflated(io.RawIOBase):
    """The decompressed tar stream: every byte budgeted; a short tail kept for the end check."""

    def __init__(self, gz: gzip.GzipFile, budget: _Budget) -> None:
        self._gz = gz
        self._budget = budget
        self.position = 0
        self._tail = bytearray()
        self._tail_start = 0

    def readable(self) -> bool:
        return True

    def _take(self, size: int) -> bytes:
        data = self._gz.read(size)
        self._budget.spend(len(data))
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self._take(len(buffer))
        self._tail += data
        if len(self._tail) > 2 * _TAIL_BYTES:
            drop = len(self._tail) - _TAIL_BYTES
            del self._tail[:drop]
            self._tail_start += drop
        buffer[: len(data)] = data
        return len(data)

    def check_end(self, offset: int) -> None:
        """Everything from ``offset`` (where the tar reader stopped) to the end must be zeros.

        A tar reader stops quietly at an unreadable header; without this check a
        damaged or appended header would silently hide the members after it.
        """
        if offset < self._tail_start or self._tail[offset - self._tail_start :].strip(b"\0"):
            raise ArchiveError(
                f"unreadable tar header or data after the end of the archive at offset {offset}",
                code="archive.trailing_data",
            )
        for chunk in iter(lambda: self._take(_CHUNK), b""):
            if chunk.strip(b"\0"):
                raise ArchiveError(
                    "non-zero data after the end of the tar archive", code="archive.trailing_data"
                )
        if self.position - offset < 2 * tarfile.BLOCKSIZE:
            raise ArchiveError(
                "the tar archive is truncated: no end-of-archive marker", code="archive.corrupt"
            )


def _safe_tarinfo(limits: ReadLimits) -> type[tarfile.TarInfo]:
    """A TarInfo that refuses oversized PAX / GNU long-name headers before reading them."""

    class _SafeTarInfo(tarfile.TarInfo):
        def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
            if self.type in _EXTENDED_TYPES and self.size > limits.max_header_bytes:
                raise LimitExceededError(
                    f"a tar extended header is {self.size} bytes; the limit is "
                    f"{limits.max_header_bytes}",
                    code="archive.limit.header_size",
                )
            result: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
            return result

    return _SafeTarInfo


_EXTENDED_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class _MemberStream(io.RawIOBase):
    """A member's bytes as read: hashed and optionally copied to a sink."""

    def __init__(self, source: IO[bytes], sink: BinaryIO | None) -> None:
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
        for chunk in iter(lambda: self._source.read(_CHUNK), b""):
            self._consume(chunk)


def _check_member_name(name: str) -> None:
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in name) or "\x00" in name:
        raise ArchiveError(
            f"member name {name!r} is not valid UTF-8", code="archive.bad_name_encoding"
        )
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or name.startswith("\\"):
        raise ArchiveError(f"member {name!r} has an absolute path", code="archive.absolute_path")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise ArchiveError(f"member {name!r} climbs out with '..'", code="archive.path_traversal")
    if "\\" in name or "" in parts or "." in parts:
        raise ArchiveError(
            f"member name {name!r} is not in normal form", code="archive.bad_member_name"
        )


def _check_member_type(member: tarfile.TarInfo) -> None:
    name = member.name
    if member.issym():
        raise ArchiveError(f"member {name!r} is a symbolic link", code="archive.symlink")
    if member.islnk():
        raise ArchiveError(f"member {name!r} is a hard link", code="archive.hardlink")
    if member.isdev():
        raise ArchiveError(f"member {name!r} is a device or FIFO", code="archive.special_file")
    if member.isdir():
        raise ArchiveError(f"member {name!r} is a directory entry", code="archive.directory_member")
    if not member.isreg() or member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        raise ArchiveError(f"member {name!r} is not a regular file", code="archive.special_file")


class _Extraction:
    """Owns the private partial folder inside the target; all writes go through it."""

    def __init__(self, target: Path) -> None:
        self.target = target
        # The folders this read creates (the target and missing parents), so that
        # a failed read removes exactly what it made and nothing else.
        self.created: list[Path] = []
        probe = target
        while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
            self.created.append(probe)
            probe = probe.parent
        if not self.created:
            if not target.is_dir() or target.is_symlink():
                raise ArchiveError(f"{target} is not a directory", code="archive.target_not_empty")
            if any(target.iterdir()):
                raise ArchiveError(f"{target} is not empty", code="archive.target_not_empty")
        target.mkdir(parents=True, exist_ok=True)
        self.partial = target / _PARTIAL
        self.partial.mkdir()

    def open(self, name: str) -> BinaryIO:
        path = self.partial / name
        path.parent.mkdir(parents=True, exist_ok=True)
        resolved = path.parent.resolve()
        if not resolved.is_relative_to(self.partial.resolve()):  # defence in depth
            raise ArchiveError(f"member {name!r} escapes the target", code="archive.path_traversal")
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644
        )
        return os.fdopen(fd, "wb")

    def commit(self) -> None:
        for entry in sorted(self.partial.iterdir()):
            os.replace(entry, self.target / entry.name)
        self.partial.rmdir()

    @property
    def created_target(self) -> bool:
        return bool(self.created)

    def abort(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)
        if self.created:
            shutil.rmtree(self.created[-1], ignore_errors=True)


def read_pack(
    source: Path | BinaryIO,
    *,
    target: Path | None = None,
    limits: ReadLimits | None = None,
    check_content: bool = True,
) -> Pack:
    """Read and check a pack in one streaming pass; extract into ``target`` if given.

    Raises a :class:`protocol.errors.MIPError` subclass with a stable code on
    any problem, after removing everything it wrote. Signatures are parsed but
    not trusted here: pass ``Pack.signatures`` to
    :func:`protocol.trust.verify_signatures`.
    """
    limits = limits or ReadLimits()
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            return read_pack(fh, target=target, limits=limits, check_content=check_content)
    extraction = _Extraction(Path(target)) if target is not None else None
    try:
        pack = _read(source, limits, extraction, check_content)
    except BaseException:
        if extraction is not None:
            extraction.abort()
        raise
    if extraction is not None:
        extraction.commit()
    return pack


def _read(
    raw: BinaryIO, limits: ReadLimits, extraction: _Extraction | None, check_content: bool
) -> Pack:
    counter = _CountingReader(raw, limits)
    budget = _Budget(counter, limits)
    try:
        gz = gzip.GzipFile(fileobj=counter, mode="rb")
        inflated = _Inflated(gz, budget)
        with tarfile.open(
            fileobj=inflated,
            mode="r|",
            encoding="utf-8",
            errors="strict",
            tarinfo=_safe_tarinfo(limits),
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
    extraction: _Extraction | None,
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
        _check_member_name(name)
        _check_member_type(member)
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
            manifest, manifest_bytes = _read_manifest(tar, member, limits)
            if extraction is not None:
                with extraction.open(name) as out:
                    out.write(manifest_bytes)
            for cube in manifest.cubes:
                for ref in cube.payloads:
                    refs[ref.path] = (cube, ref)
            declared = sum(ref.size for _, ref in refs.values())
            if declared > limits.max_total_bytes:
                raise LimitExceededError(
                    f"manifest declares {declared} bytes of payloads; the limit is {limits.max_total_bytes}",
                    code="archive.limit.total_size",
                )
            continue
        if name in refs:
            cube, ref = refs[name]
            _read_payload(tar, member, cube, ref, extraction, check_content)
            continue
        match = _SIGNATURE_RE.match(name)
        if match:
            if len(signatures) >= limits.max_signatures:
                raise LimitExceededError("too many signatures", code="archive.limit.signatures")
            sig = _read_signature(tar, member, extraction)
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


def _member_file(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = tar.extractfile(member)
    if handle is None:  # pragma: no cover - regular files always have one
        raise ArchiveError(f"member {member.name!r} has no data", code="archive.corrupt")
    return handle


def _read_small(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int, code: str) -> bytes:
    if member.size > limit:
        raise LimitExceededError(
            f"{member.name} is {member.size} bytes; the limit is {limit}", code=code
        )
    return _member_file(tar, member).read(limit + 1)


def _read_manifest(
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


def _read_signature(
    tar: tarfile.TarFile, member: tarfile.TarInfo, extraction: _Extraction | None
) -> Signature:
    data = _read_small(tar, member, 4096, "archive.limit.signature_size")
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
    extraction: _Extraction | None,
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
        stream = _MemberStream(_member_file(tar, member), sink)
        content_error: PayloadError | None = None
        if check_content:
            try:
                validate_payload(cube, ref, io.BufferedReader(stream, _CHUNK))
            except PayloadError as exc:
                content_error = exc
        stream.drain()
    finally:
        if sink is not None:
            sink.close()
    # Integrity first: a payload that is not the signed bytes is reported as such,
    # whatever its content looks like.
    if stream.size != ref.size:
        raise IntegrityError(
            f"{ref.path} has {stream.size} bytes; the manifest says {ref.size}",
            code="integrity.size_mismatch",
            path=ref.path,
        )
    if stream.sha256.hexdigest() != ref.sha256:
        raise IntegrityError(
            f"{ref.path} does not match its sha256 in the manifest",
            code="integrity.digest_mismatch",
            path=ref.path,
        )
    if content_error is not None:
        content_error.detail.setdefault("path", ref.path)
        raise content_error


def is_regular_file(path: Path) -> bool:
    """True for a plain file that is not a symlink (used by builders)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
