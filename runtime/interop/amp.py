"""MemoryMarket AMP packs: a ``manifest.json`` and one Markdown file per memory, signed.

The manifest lists ``memories`` (``id``, ``path`` of its ``.md`` file, the file's
``sha256``, ``created_at``/``updated_at``, ``tags``, ``metadata``) and carries an
Ed25519 ``signature`` (``algorithm``, base64 ``public_key`` and ``value``) over the
RFC 8785 canonical JSON of the manifest without its ``signature``. A pack is a
directory or a ``.zip`` of one. Import verifies the signature (with
``cryptography``) and every file's digest, refuses an unsigned, altered or
(when ``trusted_keys`` are given) untrusted pack, and records the signer in
each memory's provenance. Paths are checked like archive members.

Not here: MIP pack signatures (:mod:`protocol.signing`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol import PublicKey, SigningKey, canonical_bytes, format_timestamp

from ..errors import InteropError
from .model import ExportReport, PortableMemory, Skipped, portable
from .safe_read import (
    check_member_name,
    check_not_pickle,
    json_bytes,
    read_file,
    read_zip_members,
)

__all__ = ["SYSTEM", "export_amp", "read_amp"]

SYSTEM = "memorymarket-amp"
MAX_MEMORIES = 1_000_000


def _files(source: Path, names: set[str]) -> dict[str, bytes]:
    if source.is_dir():
        out = {}
        for name in names:
            path = source / check_member_name(name)
            if path.is_symlink():
                raise InteropError(f"{name} is a symlink", code="interop.unsafe_path")
            if path.is_file():
                out[name] = read_file(path)
        return out
    return read_zip_members(source, names)


def _verify(manifest: dict[str, Any], trusted: Sequence[PublicKey]) -> str:
    sig = manifest.get("signature")
    if not isinstance(sig, dict):
        raise InteropError("the AMP pack is not signed", code="interop.amp_unsigned")
    if sig.get("algorithm") != "ed25519":
        raise InteropError("AMP signatures must be ed25519", code="interop.amp_bad_signature")
    try:
        raw_key = base64.b64decode(str(sig.get("public_key")), validate=True)
        value = base64.b64decode(str(sig.get("value")), validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw_key)
    except (binascii.Error, ValueError) as exc:
        raise InteropError(f"bad AMP signature fields: {exc}",
                           code="interop.amp_bad_signature") from exc  # fmt: skip
    body = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        key.verify(value, canonical_bytes(body))
    except InvalidSignature as exc:
        raise InteropError("the AMP manifest's signature does not verify: it was altered",
                           code="interop.amp_bad_signature") from exc  # fmt: skip
    if trusted and raw_key not in {k.raw for k in trusted}:
        raise InteropError("the AMP pack is signed by a key you did not trust",
                           code="interop.amp_untrusted")  # fmt: skip
    return base64.b64encode(raw_key).decode()


def read_amp(source: Path, trusted: Sequence[PublicKey] = ()) -> list[PortableMemory]:
    found = _files(source, {"manifest.json"})
    if "manifest.json" not in found:
        raise InteropError(f"{source} has no manifest.json", code="interop.bad_archive")
    manifest = json_bytes(found["manifest.json"], "manifest.json")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("memories"), list):
        raise InteropError("manifest.json must be an object with a memories list",
                           code="interop.bad_record")  # fmt: skip
    signer = _verify(manifest, trusted)
    entries = manifest["memories"]
    if len(entries) > MAX_MEMORIES or not all(isinstance(e, dict) for e in entries):
        raise InteropError("manifest memories must be objects", code="interop.bad_record")
    paths = {check_member_name(str(e.get("path", ""))) for e in entries}
    files = _files(source, paths) if source.is_dir() else read_zip_members(
        source, {Path(p).name for p in paths})  # fmt: skip
    out = []
    for n, entry in enumerate(entries, 1):
        where = f"AMP memory {n}"
        path = check_member_name(str(entry.get("path", "")))
        data = files.get(path, files.get(Path(path).name))
        if data is None:
            raise InteropError(f"{where}: {path} is missing", code="interop.bad_archive")
        check_not_pickle(path, data[:4])
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise InteropError(f"{where}: {path} does not match its signed digest",
                               code="interop.amp_bad_signature")  # fmt: skip
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InteropError(f"{where}: {path} is not UTF-8", code="interop.bad_record") from exc
        meta = entry.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise InteropError(f"{where}: metadata must be an object", code="interop.bad_record")
        meta = {**(meta or {}), "amp": {"signer": signer, "signature_verified": True,
                                        "pack": manifest.get("name")}}  # fmt: skip
        out.append(portable(
            system=SYSTEM, original_id=entry.get("id"), text=text, where=where,
            created_at=entry.get("created_at"), updated_at=entry.get("updated_at"),
            tags=entry.get("tags"), metadata=meta,
        ))  # fmt: skip
    return out


def export_amp(memories: Sequence[PortableMemory], out: Path, key: SigningKey | None
               ) -> ExportReport:  # fmt: skip
    """Write a signed AMP pack as a ``.zip`` (``key`` is required: AMP packs are signed)."""
    if key is None:
        raise InteropError("AMP packs are signed: pass --key KEYFILE",
                           code="interop.amp_unsigned")  # fmt: skip
    entries = []
    files: dict[str, bytes] = {}
    for n, mem in enumerate(memories):
        data = mem.text.encode("utf-8")
        path = f"memories/{n:06d}.md"
        files[path] = data
        meta = {k: v for k, v in mem.metadata.items() if k != "amp"}
        entry: dict[str, Any] = {"id": mem.original_id, "path": path,
                                 "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
        if mem.created_at:
            entry["created_at"] = format_timestamp(mem.created_at)
        if mem.updated_at:
            entry["updated_at"] = format_timestamp(mem.updated_at)
        if mem.tags:
            entry["tags"] = list(mem.tags)
        if meta:
            entry["metadata"] = meta
        entries.append(entry)
    manifest: dict[str, Any] = {"amp_version": "1.0", "name": out.stem, "memories": entries}
    signature = key.sign(canonical_bytes(manifest))
    manifest["signature"] = {
        "algorithm": "ed25519",
        "public_key": base64.b64encode(key.public_key.raw).decode(),
        "value": base64.b64encode(signature.value).decode(),
    }
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
        for path, data in files.items():
            archive.writestr(path, data)
    tmp.replace(out)
    dropped = [Skipped(m.original_id, "amp signer", "re-signed with your key")
               for m in memories if "amp" in m.metadata]  # fmt: skip
    return ExportReport(str(out), SYSTEM, len(memories), dropped)
