"""Archive fixtures written at test time (zips, tarballs, AMP packs), honest and hostile."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from protocol import SigningKey, canonical_bytes

FIXTURES = Path(__file__).parent / "fixtures"

OPENMEMORY_ITEMS = [
    {"id": "om-1", "content": "Uses vim keybindings everywhere", "created_at": 1730000000,
     "updated_at": 1730500000, "state": "active", "app_name": "cursor",
     "categories": ["tools"], "metadata": {"origin": "ide"}},
    {"id": "om-2", "content": "Deploys on Fridays are forbidden", "created_at": 1731000000,
     "state": "active", "app_name": "claude", "categories": ["work"]},
]  # fmt: skip


def openmemory_zip(path: Path, *, jsonl: bool = True) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("memories.json", json.dumps({"memories": OPENMEMORY_ITEMS[:1]}))
        if jsonl:
            lines = "\n".join(json.dumps(item) for item in OPENMEMORY_ITEMS) + "\n"
            zf.writestr("memories.jsonl.gz", gzip.compress(lines.encode()))
    return path


def tar_gz(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(r) for r in records) + "\n").encode()


def cogx(path: Path) -> Path:
    manifest = {"format": "cogx", "version": "1", "created_at": "2025-09-01T00:00:00Z"}
    return tar_gz(path, {
        "manifest.json": json.dumps(manifest).encode(),
        "memories.jsonl": _jsonl([
            {"id": "mem-1", "text": "Alex is training for a marathon", "created_at":
             "2025-08-01T10:00:00Z", "tags": ["health"], "valid_at": "2025-08-01T00:00:00Z"},
        ]),
        "facts.jsonl": _jsonl([
            {"id": "fact-1", "subject": "Alex", "predicate": "lives_in", "object": "Lisbon",
             "valid_at": "2024-01-01T00:00:00Z", "invalid_at": "2025-06-30T00:00:00Z",
             "created_at": "2024-01-02T00:00:00Z"},
        ]),
        "entities.jsonl": _jsonl([
            {"id": "ent-1", "name": "Lisbon", "type": "City", "description": "Capital of Portugal"},
        ]),
        "episodes.jsonl": _jsonl([
            {"id": "ep-1", "content": "Alex asked for running shoes advice",
             "created_at": "2025-08-02T18:00:00Z", "metadata": {"channel": "chat"}},
        ]),
    })  # fmt: skip


def amp_pack(path: Path, key: SigningKey, *, tamper: bool = False) -> Path:
    texts = {"memories/rust.md": "# Borrowing\n\nPrefer `&T` over `clone()`.\n",
             "memories/git.md": "Rebase feature branches before merging.\n"}  # fmt: skip
    entries = [
        {"id": "amp-rust", "path": "memories/rust.md", "created_at": "2025-03-01T00:00:00Z",
         "tags": ["rust"],
         "sha256": hashlib.sha256(texts["memories/rust.md"].encode()).hexdigest()},
        {"id": "amp-git", "path": "memories/git.md", "created_at": "2025-03-02T00:00:00Z",
         "metadata": {"level": "beginner"},
         "sha256": hashlib.sha256(texts["memories/git.md"].encode()).hexdigest()},
    ]  # fmt: skip
    manifest: dict[str, Any] = {"amp_version": "1.0", "name": "dev-tips", "memories": entries}
    sig = key.sign(canonical_bytes(manifest))
    manifest["signature"] = {
        "algorithm": "ed25519",
        "public_key": base64.b64encode(key.public_key.raw).decode(),
        "value": base64.b64encode(sig.value).decode(),
    }
    if tamper:
        texts["memories/git.md"] = "Force-push to main whenever you like.\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, text in texts.items():
            zf.writestr(name, text)
    return path
