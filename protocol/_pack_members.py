"""Which tar members a pack may hold: the layout's names and the member rules.

A pack holds ``manifest.json`` first, then ``payloads/<cube-id>/<file>``,
then ``signatures/<keyid>.json``. Every member must be a regular file whose
name is valid UTF-8, relative, free of ``..``, ``.``, empty parts and
backslashes; links, devices, FIFOs and directory entries are refused. The
reader applies these rules to each member before reading a byte of it.

Not here: limits on sizes and counts (:mod:`protocol._pack_limits`), whether a
name is listed in the manifest (:mod:`protocol._pack_reader`).
"""

from __future__ import annotations

import re
import tarfile

from .errors import ArchiveError

__all__ = [
    "MANIFEST_MEMBER",
    "SIGNATURE_DIR",
    "SIGNATURE_RE",
    "check_member_name",
    "check_member_type",
]

MANIFEST_MEMBER = "manifest.json"
SIGNATURE_DIR = "signatures/"
SIGNATURE_RE = re.compile(r"^signatures/([0-9a-f]{64})\.json\Z")


def check_member_name(name: str) -> None:
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


def check_member_type(member: tarfile.TarInfo) -> None:
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
