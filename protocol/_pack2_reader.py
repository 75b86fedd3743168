"""Reading a MIP 2 pack: one streaming pass over a plain tar of manifest, blobs, signatures.

The first member must be ``manifest.json`` (canonical, valid, major 2); then
every blob the manifest names, once, sorted by digest, as
``blobs/sha256/<hex>`` (raw: its tar size must be the declared size) or
``blobs/sha256/<hex>.zst`` (one zstd frame, text media types only: its output
is cut off as soon as it passes the declared size); then the signatures,
sorted by key id. Every blob is hashed and its content checked while it
streams (:func:`protocol.payloads.validate_payload`, once per blob: the
manifest's blob rule makes every payload of a digest check alike) and copied
to the extraction (each payload path) and to the caller's :class:`BlobSink`.
Member names and types pass the MIP 1 rules (:mod:`protocol._pack_members`);
the limits of :class:`protocol.archive.ReadLimits` hold throughout.

Not here: telling MIP 1 from MIP 2 and owning the extraction
(:func:`protocol.archive.read_pack`), writing (:mod:`protocol._pack2_writer`).
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import replace
from typing import IO, Any, BinaryIO, Protocol

import zstandard

from . import dsse
from ._blob_rules import iter_payloads
from ._pack2_writer import BLOB_DIR, TEXT_MEDIA_TYPES
from ._pack_extract import Extraction
from ._pack_limits import CHUNK, Budget, CountingReader, Inflated, ReadLimits, safe_tarinfo
from ._pack_members import MANIFEST_MEMBER, SIGNATURE_RE, check_member_name, check_member_type
from ._pack_reader import MemberStream, Pack, member_file, read_manifest, read_signature
from .blobs import BlobEntry, manifest_blobs
from .errors import (
    ArchiveError,
    IntegrityError,
    LimitExceededError,
    MIPError,
    PayloadError,
    SignatureError,
)
from .manifest import Manifest, MemCube, PayloadRef
from .payloads import validate_payload
from .signing import Signature

__all__ = ["BlobSink", "BlobWriter", "read_pack2"]

BLOB_RE = re.compile("^" + re.escape(BLOB_DIR) + r"([0-9a-f]{64})(\.zst)?\Z")
# zstd can turn a few bytes into a 128 KiB block: feeding 64 bytes at a time
# bounds what one call may produce (2 MiB) before the declared size is checked.
_FEED = 64


class BlobWriter(Protocol):
    """Receives one blob's bytes; told at the end whether they were the declared blob."""

    def write(self, data: bytes, /) -> object: ...

    def commit(self) -> None:
        """The bytes written are the blob: size, sha256 and content checked."""

    def abort(self) -> None:
        """The blob (or the pack) was refused: discard what was written."""


class BlobSink(Protocol):
    """Where :func:`protocol.read_pack` delivers MIP 2 blobs as they stream.

    ``open_blob`` is called once per blob, in container order, before its
    first byte; return a :class:`BlobWriter`, or ``None`` to skip writing a
    blob you already have (the reader still hashes and checks it, so the
    outcome of a read never depends on the sink). A writer is committed as
    soon as its blob is verified, or aborted; a pack refused later may thus
    leave verified blobs in the sink, never an unverified one. Example: a
    content-addressed cache that keeps one file per digest::

        class CacheSink:
            def __init__(self, root: Path) -> None:
                self.root = root

            def open_blob(self, entry: BlobEntry) -> BlobWriter | None:
                final = self.root / entry.sha256
                return None if final.exists() else FileWriter(final)

        class FileWriter:
            def __init__(self, final: Path) -> None:
                self.final, self.tmp = final, final.with_suffix(".part")
                self.fh = open(self.tmp, "wb")

            def write(self, data: bytes) -> object:
                return self.fh.write(data)

            def commit(self) -> None:
                self.fh.flush(); os.fsync(self.fh.fileno()); self.fh.close()
                os.replace(self.tmp, self.final)

            def abort(self) -> None:
                self.fh.close(); self.tmp.unlink(missing_ok=True)

        pack = read_pack(path, blobs=CacheSink(cache_root))
    """

    def open_blob(self, entry: BlobEntry) -> BlobWriter | None: ...


class _Unzstd(io.RawIOBase):
    """One zstd frame's output, refused once it passes ``limit`` bytes or the frame is bad."""

    def __init__(self, source: IO[bytes], limit: int, name: str) -> None:
        self._source = source
        self._limit = limit
        self._name = name
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._pending = memoryview(b"")
        self._out = bytearray()
        self._produced = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def _bad(self, why: str) -> ArchiveError:
        return ArchiveError(f"{self._name}: {why}", code="archive.bad_compression")

    def _step(self) -> None:
        if not self._pending:
            data = self._source.read(CHUNK)
            if not data:
                if not self._frame.eof:
                    raise self._bad("the zstd frame is truncated")
                self._ended = True
                return
            self._pending = memoryview(data)
        if self._frame.eof:
            raise self._bad("data follows the zstd frame")
        piece, self._pending = self._pending[:_FEED], self._pending[_FEED:]
        try:
            out = self._frame.decompress(piece)
        except zstandard.ZstdError as exc:
            raise self._bad(f"not one valid zstd frame ({exc})") from exc
        if self._frame.unused_data:
            raise self._bad("data follows the zstd frame")
        self._produced += len(out)
        if self._produced > self._limit:
            raise IntegrityError(
                f"{self._name} decompresses to more than the declared {self._limit} bytes",
                code="integrity.size_mismatch",
            )
        self._out += out

    def readinto(self, buffer: Any) -> int:
        while len(self._out) < len(buffer) and not self._ended:
            self._step()
        size = min(len(buffer), len(self._out))
        buffer[:size] = self._out[:size]
        del self._out[:size]
        return size


class _Fanout:
    """Copies every chunk to each of several sinks (payload files, the blob writer)."""

    def __init__(self, sinks: list[Any]) -> None:
        self.sinks = sinks

    def write(self, data: bytes, /) -> object:
        for sink in self.sinks:
            sink.write(data)
        return len(data)


def read_pack2(
    raw: BinaryIO,
    limits: ReadLimits,
    extraction: Extraction | None,
    check_content: bool,
    sink: BlobSink | None,
) -> Pack:
    """Read a MIP 2 pack (plain tar) from ``raw``; the caller owns the extraction."""
    counter = CountingReader(raw, limits)
    stream = Inflated(io.BufferedReader(counter, CHUNK), Budget(counter, limits))
    try:
        with tarfile.open(
            fileobj=stream,
            mode="r|",
            encoding="utf-8",
            errors="strict",
            tarinfo=safe_tarinfo(limits),
        ) as tar:
            found = _Members(tar, limits, extraction, check_content, sink).read()
            stream.check_end(tar.offset)
    except MIPError:
        raise
    except UnicodeError as exc:
        raise ArchiveError(
            f"a member name is not valid UTF-8: {exc}", code="archive.bad_name_encoding"
        ) from exc
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(
            f"not a readable MIP 2 .memcube (tar): {exc}", code="archive.corrupt"
        ) from exc
    return Pack(
        manifest=found[0],
        manifest_bytes=found[1],
        signatures=found[2],
        file_sha256=counter.sha256.hexdigest(),
        file_size=counter.count,
        root=extraction.target if extraction is not None else None,
    )


class _Members:
    """The member loop: order, names, and what each member must be."""

    def __init__(
        self,
        tar: tarfile.TarFile,
        limits: ReadLimits,
        extraction: Extraction | None,
        check_content: bool,
        sink: BlobSink | None,
    ) -> None:
        self.tar = tar
        self.limits = limits
        self.extraction = extraction
        self.check_content = check_content
        self.sink = sink
        self.manifest: Manifest | None = None
        self.manifest_bytes = b""
        self.blobs: dict[str, BlobEntry] = {}
        self.first_use: dict[str, tuple[MemCube, PayloadRef]] = {}
        self.done: set[str] = set()
        self.signatures: dict[str, Signature] = {}

    def read(self) -> tuple[Manifest, bytes, tuple[Signature, ...]]:
        seen: set[str] = set()
        for count, member in enumerate(self.tar, 1):
            if count > self.limits.max_members:
                raise LimitExceededError(
                    f"pack has more than {self.limits.max_members} members",
                    code="archive.limit.members",
                )
            check_member_name(member.name)
            check_member_type(member)
            folded = member.name.casefold()
            if folded in seen:
                raise ArchiveError(
                    f"member {member.name!r} appears twice", code="archive.duplicate_member"
                )
            seen.add(folded)
            self._member(member)
        if self.manifest is None:
            raise ArchiveError("the pack has no manifest.json", code="archive.missing_manifest")
        missing = sorted(set(self.blobs) - self.done)
        if missing:
            paths = sorted(p for d in missing for p in self.blobs[d].paths)
            raise ArchiveError(
                f"blob sha256:{missing[0]} named in the manifest is not in the pack"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                code="archive.missing_member",
                digests=missing,
                paths=paths,
            )
        sigs = tuple(self.signatures[k] for k in sorted(self.signatures))
        return self.manifest, self.manifest_bytes, sigs

    def _member(self, member: tarfile.TarInfo) -> None:
        name = member.name
        if self.manifest is None:
            if name != MANIFEST_MEMBER:
                raise ArchiveError(
                    f"the first member must be {MANIFEST_MEMBER}, found {name!r}",
                    code="archive.manifest_not_first",
                )
            self._read_manifest(member)
            return
        blob = BLOB_RE.match(name)
        if blob:
            self._blob(member, blob.group(1), compressed=blob.group(2) is not None)
            return
        sig = SIGNATURE_RE.match(name)
        if sig:
            self._signature(member, sig.group(1))
            return
        raise ArchiveError(
            f"member {name!r} is not listed in the manifest", code="archive.unlisted_member"
        )

    def _read_manifest(self, member: tarfile.TarInfo) -> None:
        manifest, data = read_manifest(self.tar, member, self.limits)
        if manifest.major != 2:
            raise ArchiveError(
                f"a MIP {manifest.mip_version} manifest in a plain-tar (MIP 2) container",
                code="archive.version_mismatch",
            )
        self.manifest, self.manifest_bytes = manifest, data
        self.blobs = {entry.sha256: entry for entry in manifest_blobs(manifest)}
        for cube, ref in iter_payloads(manifest.cubes):
            self.first_use.setdefault(ref.sha256, (cube, ref))
        declared = sum(entry.size for entry in self.blobs.values())
        if declared > self.limits.max_total_bytes:
            raise LimitExceededError(
                f"manifest declares {declared} bytes of blobs; "
                f"the limit is {self.limits.max_total_bytes}",
                code="archive.limit.total_size",
            )
        if self.extraction is not None:
            with self.extraction.open(MANIFEST_MEMBER) as out:
                out.write(data)

    def _signature(self, member: tarfile.TarInfo, keyid: str) -> None:
        if self.signatures and keyid < max(self.signatures):
            raise ArchiveError(
                f"{member.name} comes after a signature with a greater key id",
                code="archive.member_order",
            )
        if len(self.signatures) >= self.limits.max_signatures:
            raise LimitExceededError("too many signatures", code="archive.limit.signatures")
        statement = dsse.statement_bytes(self.manifest_bytes)
        # An envelope is its statement in base64 plus one key id and signature.
        limit = 4096 + len(statement) * 4 // 3
        sig = read_signature(self.tar, member, self.extraction, limit)
        if sig.keyid != keyid:
            raise ArchiveError(
                f"{member.name} holds a signature by another key ({sig.keyid})",
                code="archive.signature_name_mismatch",
            )
        if sig.is_dsse and sig.statement != statement:
            raise SignatureError(
                f"{member.name}: the envelope's statement is not the one this manifest gives",
                code="signature.statement_mismatch",
            )
        self.signatures[keyid] = replace(sig, statement=None)

    def _blob(self, member: tarfile.TarInfo, digest: str, *, compressed: bool) -> None:
        entry = self.blobs.get(digest)
        if entry is None:
            raise ArchiveError(
                f"blob {member.name!r} is not named in the manifest",
                code="archive.unlisted_member",
            )
        if digest in self.done:
            raise ArchiveError(
                f"blob sha256:{digest} is stored twice", code="archive.duplicate_blob"
            )
        if self.signatures or (self.done and digest < max(self.done)):
            raise ArchiveError(
                f"{member.name} is out of order (blobs sorted by digest, before signatures)",
                code="archive.member_order",
            )
        if compressed and entry.media_type not in TEXT_MEDIA_TYPES:
            raise ArchiveError(
                f"{member.name} is compressed but holds {entry.media_type}; tensors are raw",
                code="archive.compressed_tensor",
            )
        if not compressed and member.size != entry.size:
            raise IntegrityError(
                f"blob sha256:{digest} is {member.size} bytes; the manifest says {entry.size}",
                code="integrity.size_mismatch",
                digest=digest,
            )
        self.done.add(digest)
        source: IO[bytes] = member_file(self.tar, member)
        if compressed:
            source = io.BufferedReader(_Unzstd(source, entry.size, member.name), CHUNK)
        self._stream_blob(entry, source)

    def _stream_blob(self, entry: BlobEntry, source: IO[bytes]) -> None:
        outputs: list[Any] = []
        writer = self.sink.open_blob(entry) if self.sink is not None else None
        try:
            if self.extraction is not None:
                outputs = [self.extraction.open(path) for path in entry.paths]
            stream = MemberStream(source, _Fanout([*outputs, *([writer] if writer else [])]))
            content_error: PayloadError | None = None
            if self.check_content:
                cube, ref = self.first_use[entry.sha256]
                try:
                    validate_payload(cube, ref, io.BufferedReader(stream, CHUNK))
                except PayloadError as exc:
                    content_error = exc
            stream.drain()
            _check_blob(entry, stream, content_error)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            for out in outputs:
                out.close()
        if writer is not None:
            writer.commit()


def _check_blob(entry: BlobEntry, stream: MemberStream, content_error: PayloadError | None) -> None:
    stream.check(
        entry.size, entry.sha256, content_error,
        what=f"blob sha256:{entry.sha256}", digest=entry.sha256, path=entry.paths[0],
    )  # fmt: skip
