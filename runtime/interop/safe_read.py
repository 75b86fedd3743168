"""Reading other systems' files under limits: sizes, member counts, ratios, paths, no pickle.

Archives are never extracted to disk. Members are looked up by name and read
into memory with a hard cap, after the member's name is checked (no absolute
paths, no ``..``, no backslashes or drive letters: a zip-slip name refuses the
whole archive) and the declared and actual sizes and the compression ratio are
bounded (a zip bomb is refused before it is inflated). Tar members must be
regular files. A pickle is recognised by its name or its first bytes and is
never opened further: ``interop.pickle_refused``.

Not here: what the members mean (one module per format).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..errors import InteropError

__all__ = [
    "Limits",
    "check_not_pickle",
    "is_pickle",
    "json_bytes",
    "read_file",
    "read_gzip",
    "read_tar_members",
    "read_zip_members",
]

PICKLE_SUFFIXES = (".pkl", ".pickle", ".pck", ".joblib")


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 512 * 1024**2
    max_member_bytes: int = 512 * 1024**2
    max_total_bytes: int = 1024**3
    max_members: int = 10_000
    max_ratio: int = 200
    ratio_grace_bytes: int = 4 * 1024**2


DEFAULT = Limits()


def _limit(message: str, **detail: Any) -> InteropError:
    return InteropError(message, code="interop.limit_exceeded", **detail)


def is_pickle(name: str, head: bytes) -> bool:
    """A pickle by name, or by its first bytes (protocol 2+ opcode, or protocol-0 ``(dp``)."""
    if name.lower().endswith(PICKLE_SUFFIXES):
        return True
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head.startswith(b"(dp")


def check_not_pickle(name: str, head: bytes) -> None:
    if is_pickle(name, head):
        raise InteropError(
            f"{name} is a Python pickle; memos never loads pickles (they can run code)",
            code="interop.pickle_refused", member=name,
        )  # fmt: skip


def read_file(path: Path, limits: Limits = DEFAULT) -> bytes:
    if not path.is_file():
        raise InteropError(f"{path} is not a file", code="interop.not_found", path=str(path))
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise _limit(f"{path} is {size} bytes, more than {limits.max_file_bytes}")
    with open(path, "rb") as fh:
        return fh.read(limits.max_file_bytes + 1)


def json_bytes(data: bytes, where: str) -> Any:
    """Parse JSON, refusing a pickle where JSON belongs and anything that is not JSON."""
    check_not_pickle(where, data[:4])
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InteropError(f"{where} is not valid JSON: {exc}", code="interop.bad_json") from exc


def _capped(stream: IO[bytes] | io.BufferedIOBase, cap: int, name: str) -> bytes:
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise _limit(f"{name} is larger than {cap} bytes", member=name)
    return data


def read_gzip(data: bytes, name: str, limits: Limits = DEFAULT) -> bytes:
    cap = min(limits.max_member_bytes, max(limits.ratio_grace_bytes, len(data) * limits.max_ratio))
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            return _capped(fh, cap, name)
    except (OSError, EOFError) as exc:
        raise InteropError(f"{name} is not gzip: {exc}", code="interop.bad_archive") from exc


def check_member_name(name: str) -> str:
    """The member's normalised name; refuses absolute paths, ``..``, backslashes, drives."""
    if (
        not name or "\\" in name or "\x00" in name or name.startswith("/")
        or (len(name) > 1 and name[1] == ":")
        or any(part == ".." for part in PurePosixPath(name).parts)
    ):  # fmt: skip
        raise InteropError(
            f"archive member {name!r} points outside the archive", code="interop.unsafe_path",
            member=name,
        )  # fmt: skip
    return str(PurePosixPath(name))


def read_zip_members(path: Path, wanted: set[str], limits: Limits = DEFAULT) -> dict[str, bytes]:
    """The ``wanted`` members of a zip (by name, at its root or one folder down)."""
    read_file_size = path.stat().st_size if path.is_file() else 0
    if not read_file_size:
        raise InteropError(f"{path} is not a file", code="interop.not_found", path=str(path))
    if read_file_size > limits.max_file_bytes:
        raise _limit(f"{path} is larger than {limits.max_file_bytes} bytes")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InteropError(f"{path} is not a zip: {exc}", code="interop.bad_archive") from exc
    out: dict[str, bytes] = {}
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_members:
            raise _limit(f"{path} has {len(infos)} members, more than {limits.max_members}")
        total = 0
        for info in infos:
            name = check_member_name(info.filename)
            total += info.file_size
            if total > limits.max_total_bytes or info.file_size > limits.max_member_bytes:
                raise _limit(f"{path}: members inflate to more than the limit", member=name)
            if (
                info.file_size > limits.ratio_grace_bytes
                and info.file_size > max(info.compress_size, 1) * limits.max_ratio
            ):
                raise _limit(f"{name} inflates {info.file_size} bytes from "
                             f"{info.compress_size}: a zip bomb?", member=name)  # fmt: skip
            base = PurePosixPath(name).name
            if info.is_dir() or base not in wanted or len(PurePosixPath(name).parts) > 2:
                continue
            if base in out:
                raise InteropError(f"{path} holds {base} twice", code="interop.bad_archive")
            try:
                with archive.open(info) as fh:
                    out[base] = _capped(fh, info.file_size, name)
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                raise InteropError(f"{name}: {exc}", code="interop.bad_archive") from exc
    return out


def read_tar_members(path: Path, limits: Limits = DEFAULT) -> dict[str, bytes]:
    """Every regular file of a (gzipped) tar, by its normalised name; links are refused."""
    size = path.stat().st_size if path.is_file() else 0
    if not size:
        raise InteropError(f"{path} is not a file", code="interop.not_found", path=str(path))
    out: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for count, member in enumerate(archive, 1):
                if count > limits.max_members:
                    raise _limit(f"{path} has more than {limits.max_members} members")
                name = check_member_name(member.name)
                if member.isdir():
                    continue
                if not member.isfile():
                    raise InteropError(
                        f"archive member {name!r} is a link or device, not a file",
                        code="interop.unsafe_path", member=name,
                    )  # fmt: skip
                total += member.size
                if total > limits.max_total_bytes or total > max(
                    limits.ratio_grace_bytes, size * limits.max_ratio
                ):
                    raise _limit(f"{path} inflates beyond the limit: a tar bomb?", member=name)
                fh = archive.extractfile(member)
                if fh is None:  # pragma: no cover - regular files always have data
                    continue
                if name in out:
                    raise InteropError(f"{path} holds {name} twice", code="interop.bad_archive")
                out[name] = _capped(fh, member.size, name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InteropError(
            f"{path} is not a tar archive: {exc}", code="interop.bad_archive"
        ) from exc
    return out
