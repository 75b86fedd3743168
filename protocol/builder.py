"""Build packs from a source folder, and add signatures to existing packs.

A pack source is a folder holding ``manifest.json`` (a manifest whose payload
entries may omit ``size``, ``sha256`` and ``media_type``: the builder fills
them in from the files) and the payload files under ``payloads/<cube-id>/``.
The builder refuses symlinks and files outside ``payloads/``, computes every
digest, writes the pack deterministically, then reads it back with the safe
reader, so it can never emit a pack that a conforming reader would refuse.
A 2.x pack (the template says so, or ``mip_version="2.0"``) has its large
memories files split at record boundaries first (:mod:`protocol.chunking`).

Not here: where keys come from (the CLI reads key files), publishing.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .archive import Pack, ReadLimits, read_pack, write_pack
from .chunking import chunk_payloads
from .errors import ArchiveError, MIPError
from .manifest import Manifest, MediaType, MemoryType, parse_json
from .signing import Signature, SigningKey, sign_manifest
from .version import major_of

__all__ = [
    "SOURCE_MANIFEST",
    "build_manifest",
    "pack_directory",
    "sign_pack",
    "with_version",
]

SOURCE_MANIFEST = "manifest.json"


def _default_media(memory_type: str, name: str) -> MediaType | None:
    """The media type a source payload gets when its entry does not name one."""
    if memory_type == MemoryType.PLAINTEXT:
        return MediaType.MEMORIES_JSONL
    if memory_type == MemoryType.ACTIVATION:
        return MediaType.KV_CACHE
    if memory_type == MemoryType.PARAMETER:
        return MediaType.LORA_CONFIG if name.endswith(".json") else MediaType.LORA_WEIGHTS
    return None


def _digest_file(path: Path) -> tuple[int, str]:
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256")
        return fh.tell(), digest.hexdigest()


def _source_file(root: Path, rel: str) -> Path:
    path = root / rel
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError as exc:
        raise ArchiveError(
            f"payload {rel} is listed in manifest.json but missing from {root}",
            code="build.missing_payload",
            path=rel,
        ) from exc
    if stat.S_ISLNK(mode) or not stat.S_ISREG(mode):
        raise ArchiveError(
            f"payload {rel} must be a regular file, not a link", code="build.not_regular_file"
        )
    if not path.resolve().is_relative_to(root.resolve()):
        raise ArchiveError(
            f"payload {rel} resolves outside the source folder", code="archive.path_traversal"
        )
    return path


def build_manifest(source: Path) -> tuple[Manifest, dict[str, Path]]:
    """Read a source folder's manifest template and complete it from the payload files."""
    source = Path(source)
    template_path = source / SOURCE_MANIFEST
    if not template_path.is_file():
        raise ArchiveError(
            f"{source} has no {SOURCE_MANIFEST}; create one with 'memos init'",
            code="build.no_manifest",
        )
    data: Any = parse_json(template_path.read_bytes(), what=str(template_path))
    if not isinstance(data, dict):
        raise ArchiveError(f"{template_path} must hold a JSON object", code="manifest.schema")
    data = copy.deepcopy(data)
    files: dict[str, Path] = {}
    for cube in data.get("cubes", []) if isinstance(data.get("cubes"), list) else []:
        if not isinstance(cube, dict):
            continue
        for payload in cube.get("payloads", []) if isinstance(cube.get("payloads"), list) else []:
            if not isinstance(payload, dict) or not isinstance(payload.get("path"), str):
                continue
            rel = payload["path"]
            if rel.startswith("payloads/") and ".." not in rel.split("/"):
                path = _source_file(source, rel)
                size, sha = _digest_file(path)
                payload["size"], payload["sha256"] = size, sha
                files[rel] = path
            kind = cube.get("memory_type")
            media = _default_media(kind, rel) if isinstance(kind, str) else None
            if "media_type" not in payload and media is not None:
                payload["media_type"] = media.value
    manifest = Manifest.from_dict(data)
    return manifest, files


def with_version(
    manifest: Manifest, files: Mapping[str, Path | bytes], mip_version: str | None, work: Path
) -> tuple[Manifest, dict[str, Path | bytes]]:
    """``manifest`` as ``mip_version`` (default: its own); a 2.x one has its text chunked.

    Chunk files go into ``work`` (the caller removes it); see :mod:`protocol.chunking`.
    """
    version = mip_version or manifest.mip_version
    if major_of(version) == 2:
        return chunk_payloads(manifest, files, work, mip_version=version)
    if version == manifest.mip_version:
        return manifest, dict(files)
    return Manifest.from_dict({**manifest.to_dict(), "mip_version": version}), dict(files)


def pack_directory(
    source: Path,
    out: Path,
    *,
    keys: Sequence[SigningKey] = (),
    limits: ReadLimits | None = None,
    mip_version: str | None = None,
) -> Pack:
    """Build, sign and write a pack from ``source``; return it as read back.

    ``mip_version`` overrides the template's (``"2.0"`` builds a MIP 2 pack:
    memories files over 1 MiB are split into chunks, the container holds blobs).
    """
    out = Path(out)
    manifest, found = build_manifest(source)
    work = out.parent / f".{out.name}.build-{os.getpid()}"
    try:
        manifest, files = with_version(manifest, found, mip_version, work)
        manifest_bytes = manifest.canonical_bytes()
        signatures = [sign_manifest(manifest_bytes, key) for key in keys]
        write_pack(out, manifest, files, signatures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    try:
        return read_pack(out, limits=limits)
    except MIPError:
        out.unlink(missing_ok=True)
        raise


def sign_pack(
    pack_path: Path,
    keys: Iterable[SigningKey],
    *,
    out: Path | None = None,
    limits: ReadLimits | None = None,
) -> Pack:
    """Add signatures to a pack (rewritten atomically, in place unless ``out``).

    The pack is fully read and checked first; existing signatures are kept.
    Payload bytes are copied through a private folder next to the output.
    """
    pack_path = Path(pack_path)
    out = Path(out) if out is not None else pack_path
    work = out.parent / f".{out.name}.sign-{os.getpid()}"
    try:
        pack = read_pack(pack_path, target=work, limits=limits)
        new: list[Signature] = [sign_manifest(pack.manifest_bytes, key) for key in keys]
        files = {ref.path: work / ref.path for ref in pack.manifest.payloads()}
        write_pack(
            out, pack.manifest, files, [*pack.signatures, *new], manifest_bytes=pack.manifest_bytes
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return read_pack(out, limits=limits)
