"""Install, upgrade and remove packs: resolve, download, verify, then commit atomically.

Order of operations for ``memos install NS/NAME[@SPEC]``:

1. **Resolve** with the registry (:class:`runtime.client.RegistryClient`).
2. **Trust**: the signed manifest bytes from the resolve answer are verified
   against the namespace's keys that are *not revoked* (a signature by a
   revoked or unknown key is refused), and, when keys are pinned in
   ``$MEMOS_HOME/trusted-keys/*.pub``, against those too. With ``--locked``
   the keys pinned in ``memos.lock`` are used instead (minus any the registry
   has revoked since). Nothing is downloaded before the manifest is trusted.
3. **Download** into the content-addressed cache, resumable, sha256 checked
   while streaming (:mod:`runtime.download`).
4. **Read** the pack with ``protocol.read_pack`` into a private staging
   folder (every limit, every payload digest), and check that its manifest is
   byte-for-byte the one that was verified and its signatures verify too.
5. **Commit**: payload blobs move into the cache (content-addressed, shared
   by versions); the memories are embedded; then one SQLite transaction
   replaces the pack's memories (new versions for changed memories,
   tombstones for dropped ones). Until that transaction commits, the
   previous state is intact; if anything fails before, nothing changed.
6. ``memos.lock`` is updated (atomic rename) when a lockfile path is given.

Local files (``memos install ./FILE.memcube``) skip 1-3 and need trusted keys
(``--trusted-key`` or pinned keys).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from protocol import (
    Manifest,
    MediaType,
    MemCube,
    MemoryType,
    Pack,
    PublicKey,
    SignatureError,
    iter_memory_records,
    parse_ref,
    parse_timestamp,
    read_pack,
    read_safetensors_header,
    verify_or_raise,
)
from protocol import (
    Signature as MIPSignature,
)

from ._wire import Resolution
from .cache import BlobCache
from .client import RegistryClient
from .download import ProgressFn, download_blob
from .engine.engine import Engine, NewMemory
from .engine.lifecycle import State
from .engine.types import to_epoch
from .errors import InstallError
from .lockfile import LockEntry, read_lockfile, update_lockfile

__all__ = ["InstallResult", "InstalledPack", "Installer"]


@dataclass(frozen=True)
class InstallResult:
    name: str
    version: str
    sha256: str
    size: int
    memories: int
    signed_by: tuple[str, ...]
    source: str
    changed: bool = True
    previous_version: str | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "memories": self.memories,
            "signed_by": list(self.signed_by),
            "source": self.source,
            "changed": self.changed,
            "previous_version": self.previous_version,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class InstalledPack:
    name: str
    version: str
    sha256: str
    size: int
    registry: str | None
    installed_at: datetime
    signed_by: tuple[str, ...]
    memories: int
    payloads: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "registry": self.registry,
            "installed_at": self.installed_at.isoformat(),
            "signed_by": list(self.signed_by),
            "memories": self.memories,
        }


def _keys_from_pins(folder: Path) -> list[PublicKey]:
    if not folder.is_dir():
        return []
    return [PublicKey.load(p.read_bytes()) for p in sorted(folder.glob("*.pub"))]


class Installer:
    """Installs packs into one MEMOS_HOME (cache + engine)."""

    def __init__(
        self,
        home: Path,
        engine: Engine,
        *,
        cache: BlobCache | None = None,
        transport: httpx.BaseTransport | None = None,
        client_factory: Callable[[str, str | None], RegistryClient] | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> None:
        self.on_stage = on_stage
        self.home = Path(home)
        self.engine = engine
        self.cache = cache or BlobCache(self.home)
        self._transport = transport
        self._client_factory = client_factory

    # ------------------------------------------------------------------ helpers

    def client(self, registry: str, token: str | None) -> RegistryClient:
        if self._client_factory is not None:
            return self._client_factory(registry, token)
        return RegistryClient(registry, token=token, transport=self._transport)

    def _stage(self, message: str) -> None:
        if self.on_stage is not None:
            self.on_stage(message)

    def pinned_keys(self) -> list[PublicKey]:
        return _keys_from_pins(self.home / "trusted-keys")

    def installed(self) -> list[InstalledPack]:
        rows = self.engine.store.db.execute(
            "SELECT p.*, (SELECT COUNT(*) FROM memories m WHERE m.pack = p.name AND m.state != 'removed') AS n "
            "FROM packs p ORDER BY p.name"
        ).fetchall()
        out = []
        for r in rows:
            out.append(
                InstalledPack(
                    r["name"], r["version"], r["sha256"], r["size"], r["registry"],
                    datetime.fromtimestamp(r["installed_at"]).astimezone(),
                    tuple(json.loads(r["signed_by"])), int(r["n"]),
                )
            )
        return out

    def manifest(self, name: str) -> Manifest:
        """The signed manifest of an installed pack (every cube's metadata: provenance, governance, ...)."""
        row = self.engine.store.db.execute("SELECT manifest FROM packs WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise InstallError(f"{name} is not installed", code="install.not_installed")
        return Manifest.from_bytes(str(row[0]).encode("utf-8"))

    def installed_pack(self, name: str) -> InstalledPack | None:
        return next((p for p in self.installed() if p.name == name), None)

    # ------------------------------------------------------------------ install by name

    def install(
        self,
        ref_text: str,
        *,
        registry: str,
        token: str | None = None,
        progress: ProgressFn | None = None,
        lockfile: Path | None = None,
        actor: str | None = None,
    ) -> InstallResult:
        ref = parse_ref(ref_text)
        with self.client(registry, token) as client:
            res = client.resolve(ref)
            trusted = self._trust_registry(res)
            result = self._install_resolved(client, res, trusted, registry=registry, progress=progress, actor=actor)
        if lockfile is not None:
            update_lockfile(lockfile, add={res.name: self._lock_entry(res, result, registry)})
        return result

    def install_locked(
        self,
        lockfile: Path,
        *,
        registry: str,
        token: str | None = None,
        progress: Callable[[str], ProgressFn | None] | None = None,
        actor: str | None = None,
    ) -> list[InstallResult]:
        """Install exactly what ``memos.lock`` says, refusing any difference."""
        results = []
        for name, entry in sorted(read_lockfile(lockfile).items()):
            results.append(
                self._install_entry(entry, registry=entry.registry or registry, token=token,
                                    progress=progress(name) if progress else None, actor=actor)
            )
        return results

    def _install_entry(
        self, entry: LockEntry, *, registry: str, token: str | None, progress: ProgressFn | None, actor: str | None
    ) -> InstallResult:
        pinned = [PublicKey.from_text(k) for k in entry.keys]
        current = self.installed_pack(entry.name)
        if current is not None and current.sha256 == entry.sha256:
            return InstallResult(entry.name, entry.version, entry.sha256, entry.size, current.memories,
                                 current.signed_by, "lockfile", changed=False, previous_version=current.version)
        if entry.registry is None:  # installed from a file: only the cached bytes can reproduce it
            if not self.cache.has(entry.sha256):
                raise InstallError(
                    f"{entry.name}@{entry.version} was installed from a file that is not in the cache",
                    code="install.lock_source_missing",
                )
            result = self._install_blob(self.cache.blob_path(entry.sha256), pinned, expected_manifest=None,
                                        registry=None, actor=actor, source="lockfile")
            if result.sha256 != entry.sha256 or result.version != entry.version:
                raise InstallError(f"{entry.name} in the cache differs from memos.lock", code="install.lock_mismatch")
            return result
        with self.client(registry, token) as client:
            res = client.resolve(parse_ref(f"{entry.name}@{entry.version}"))
            if res.version != entry.version or res.pack.sha256 != entry.sha256 or canonical_sha256_bytes(res.manifest_bytes) != entry.manifest_sha256:
                raise InstallError(
                    f"{entry.name}@{entry.version} on the registry differs from memos.lock "
                    f"(pack {res.pack.sha256[:12]}…, locked {entry.sha256[:12]}…): refused",
                    code="install.lock_mismatch",
                )
            revoked = {k.keyid for k in res.keys if k.revoked}
            trusted = [k for k in pinned if k.keyid not in revoked]
            self._verify(res.manifest_bytes, res.signatures, trusted, revoked)
            return self._install_resolved(client, res, trusted, registry=registry, progress=progress, actor=actor,
                                          source="lockfile")

    def _trust_registry(self, res: Resolution) -> list[PublicKey]:
        trusted = res.trusted_keys()
        revoked = {k.keyid for k in res.keys if k.revoked}
        self._verify(res.manifest_bytes, res.signatures, trusted, revoked)
        pins = self.pinned_keys()
        if pins:
            verify_or_raise(res.manifest_bytes, res.signatures, pins)
        return trusted

    @staticmethod
    def _verify(manifest_bytes: bytes, signatures: Sequence[MIPSignature], trusted: Sequence[PublicKey], revoked: set[str]) -> None:
        try:
            verify_or_raise(manifest_bytes, signatures, trusted)
        except SignatureError as exc:
            if exc.code == "signature.untrusted" and any(s.keyid in revoked for s in signatures):
                raise SignatureError(
                    "the pack is signed only by a revoked key: refused",
                    code="signature.revoked_key",
                    keyids=sorted(s.keyid for s in signatures if s.keyid in revoked),
                ) from exc
            raise

    def _install_resolved(
        self,
        client: RegistryClient,
        res: Resolution,
        trusted: Sequence[PublicKey],
        *,
        registry: str,
        progress: ProgressFn | None,
        actor: str | None,
        source: str = "registry",
    ) -> InstallResult:
        warnings = []
        if res.yanked:
            warnings.append(f"{res.name}@{res.version} is yanked: {res.yanked_reason or 'no reason given'}")
        if res.deprecated:
            warnings.append(f"{res.name} is deprecated: {res.deprecation_message}")
        current = self.installed_pack(res.name)
        if current is not None and current.sha256 == res.pack.sha256:
            if progress:
                progress(res.pack.size, res.pack.size)
            return InstallResult(res.name, res.version, res.pack.sha256, res.pack.size, current.memories,
                                 current.signed_by, source, changed=False, previous_version=current.version,
                                 warnings=tuple(warnings))
        blob = download_blob(client, res.pack.url, sha256=res.pack.sha256, size=res.pack.size,
                             cache=self.cache, progress=progress)
        result = self._install_blob(blob, trusted, expected_manifest=res.manifest_bytes, registry=registry,
                                    actor=actor, source=source)
        return replace(result, warnings=tuple(warnings))

    # ------------------------------------------------------------------ install a file

    def install_file(
        self,
        path: Path,
        *,
        trusted_keys: Sequence[PublicKey] = (),
        lockfile: Path | None = None,
        actor: str | None = None,
    ) -> InstallResult:
        trusted = list(trusted_keys) or self.pinned_keys()
        if not trusted:
            raise InstallError(
                "no trusted key to verify a local pack with", code="install.no_trusted_keys"
            )
        sha, blob = self.cache.add_file(Path(path), copy=True)
        try:
            result = self._install_blob(blob, trusted, expected_manifest=None, registry=None, actor=actor, source="file")
        except Exception:
            if not self._referenced(sha):
                self.cache.remove(sha)
            raise
        if lockfile is not None:
            pack_keys = [k.to_text() for k in trusted if k.keyid in result.signed_by]
            entry = LockEntry(result.name, result.version, result.sha256, result.size,
                              self._manifest_sha(result.name), result.signed_by, tuple(pack_keys), None)
            update_lockfile(lockfile, add={result.name: entry})
        return result

    # ------------------------------------------------------------------ common path

    def _install_blob(
        self,
        blob: Path,
        trusted: Sequence[PublicKey],
        *,
        expected_manifest: bytes | None,
        registry: str | None,
        actor: str | None,
        source: str,
    ) -> InstallResult:
        staging = self.cache.temp_dir("stage-")
        shutil.rmtree(staging)  # read_pack creates it (and removes it on failure)
        try:
            self._stage("verifying the pack (limits, digests, signatures)")
            pack = read_pack(blob, target=staging)
            if expected_manifest is not None and pack.manifest_bytes != expected_manifest:
                raise InstallError(
                    "the downloaded pack's manifest is not the one the registry signed: refused",
                    code="install.manifest_mismatch",
                )
            verification = verify_or_raise(pack.manifest_bytes, pack.signatures, trusted)
            items, payload_shas = self._memories(pack)
            return self._commit(pack, items, payload_shas, verification.valid, registry=registry,
                                actor=actor, source=source)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _memories(self, pack: Pack) -> tuple[list[NewMemory], dict[str, str]]:
        m = pack.manifest
        now = self.engine.clock()
        items: list[NewMemory] = []
        payload_shas: dict[str, str] = {}
        for cube in m.cubes:
            shas: dict[str, str] = {}
            for ref in cube.payloads:
                path = pack.payload_path(ref)
                if cube.memory_type is MemoryType.PLAINTEXT and ref.media_type == MediaType.MEMORIES_JSONL:
                    with open(path, "rb") as fh:
                        dim = cube.embedding.dimension if cube.embedding else None
                        records = list(iter_memory_records(fh, expected_dimension=dim))
                    for rec in records:
                        items.append(self._record_item(m.name, m.version, cube, rec, now))
                # read_pack has checked this file's size and sha256 against the signed manifest.
                with self.cache.lock(ref.sha256):
                    self.cache.commit_file(path, ref.sha256, verify=False)
                shas[ref.media_type] = ref.sha256
                payload_shas[ref.path] = ref.sha256
            if cube.memory_type is not MemoryType.PLAINTEXT:
                items.append(self._cube_item(m.name, m.version, cube, shas, pack, now))
        return items, payload_shas

    @staticmethod
    def _common(pack_name: str, version: str, cube: MemCube, now: datetime) -> dict[str, Any]:
        gov = cube.governance
        expires: datetime | None = None
        if gov is not None and gov.expires_at:
            expires = parse_timestamp(gov.expires_at)
        if gov is not None and gov.ttl_seconds is not None:
            ttl_end = now + timedelta(seconds=gov.ttl_seconds)
            expires = min(expires, ttl_end) if expires else ttl_end
        state = State(cube.lifecycle.value)
        return {
            "pack": pack_name,
            "pack_version": version,
            "cube_id": cube.id,
            "priority": cube.behaviour.priority if cube.behaviour else 0.5,
            "state": state,
            "expires_at": expires,
            "access": gov.access if gov else NewMemory(text="").access,
            "usage_terms": gov.usage_terms if gov else None,
            "source": cube.provenance.source if cube.provenance else None,
        }

    def _record_item(self, pack_name: str, version: str, cube: MemCube, rec: Any, now: datetime) -> NewMemory:
        created = parse_timestamp(rec.created_at) if rec.created_at else parse_timestamp(cube.created_at)
        return NewMemory(
            text=rec.text,
            id=f"{pack_name}/{cube.id}/{rec.id}",
            tags=tuple(rec.tags),
            metadata=dict(rec.metadata),
            created_at=created,
            embedding=rec.embedding,
            embedding_model=rec.embedding_model,
            **self._common(pack_name, version, cube, now),
        )

    def _cube_item(self, pack_name: str, version: str, cube: MemCube, shas: dict[str, str], pack: Pack, now: datetime) -> NewMemory:
        tokens = None
        kv = cube.payload(MediaType.KV_CACHE)
        if kv is not None:
            with open(self.cache.get(shas[kv.media_type]), "rb") as fh:  # already moved into the cache
                header = read_safetensors_header(fh, kv.size)
            ids = header.tensors.get("input_ids")
            tokens = int(ids.shape[-1]) if ids is not None and ids.shape else None
        text = " — ".join(x for x in (cube.title, str(cube.extra.get("description", "")) or None) if x) or cube.id
        return NewMemory(
            text=text,
            id=f"{pack_name}/{cube.id}",
            memory_type=cube.memory_type.value,
            fingerprint=cube.model,
            payloads=shas,
            token_count=tokens,
            created_at=parse_timestamp(cube.created_at),
            **self._common(pack_name, version, cube, now),
        )

    def _commit(
        self,
        pack: Pack,
        items: list[NewMemory],
        payload_shas: dict[str, str],
        signed_by: Sequence[str],
        *,
        registry: str | None,
        actor: str | None,
        source: str,
    ) -> InstallResult:
        engine = self.engine
        m = pack.manifest
        plain = [i for i, it in enumerate(items) if it.memory_type == "plaintext"]
        if plain:
            self._stage(f"indexing {len(plain)} memories for semantic search")
        vectors = engine.embed_items([items[i] for i in plain]) if plain else None
        with engine.write_lock:
            existing = {mem.id: (rowid, mem, vec) for rowid, mem, vec in self._pack_rows(m.name)}
            prev = self.installed_pack(m.name)
            if prev is not None and prev.sha256 == pack.file_sha256:
                return InstallResult(m.name, m.version, pack.file_sha256, pack.file_size, prev.memories,
                                     prev.signed_by, source, changed=False, previous_version=prev.version)
            vec_rows: dict[int, int] = {}
            if vectors is not None and len(plain):
                first = engine.vectors.append(np.asarray(vectors, dtype=np.float32))
                vec_rows = {i: first + n for n, i in enumerate(plain)}
            self._stage(f"committing {m.ref}")
            now = engine.clock()
            at = to_epoch(now)
            seen: set[str] = set()
            with engine.store.write():
                for i, item in enumerate(items):
                    assert item.id is not None
                    seen.add(item.id)
                    new = engine.build_memory(item.id, item, now)
                    if item.id not in existing:
                        engine.store.insert(new, vec_rows.get(i), event="install", actor=actor, at=at)
                        continue
                    rowid, old, old_vec = existing[item.id]
                    same = (old.text, old.tags, dict(old.metadata), dict(old.payloads)) == (
                        new.text, new.tags, dict(new.metadata), dict(new.payloads))
                    if same and old.state is not State.REMOVED:
                        engine.store.db.execute(
                            "UPDATE memories SET pack_version = ? WHERE rowid = ?", (m.version, rowid)
                        )
                        continue
                    state = new.state if old.state is State.REMOVED else old.state
                    updated = replace(
                        new, state=state, version=old.version + 1, created_at=old.created_at,
                        access_count=old.access_count, last_accessed_at=old.last_accessed_at,
                    )
                    engine.store.update(rowid, updated, vec_rows.get(i, old_vec), event=f"install:{m.version}",
                                        actor=actor, at=at)
                for memory_id, (rowid, old, vec) in existing.items():
                    if memory_id not in seen and old.state is not State.REMOVED:
                        gone = replace(old, state=State.REMOVED, version=old.version + 1, updated_at=now)
                        engine.store.update(rowid, gone, vec, event=f"install:{m.version}", actor=actor, at=at)
                engine.store.db.execute(
                    "INSERT OR REPLACE INTO packs(name, version, sha256, size, manifest_sha256, manifest, "
                    "signed_by, registry, installed_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (m.name, m.version, pack.file_sha256, pack.file_size,
                     canonical_sha256_bytes(pack.manifest_bytes), pack.manifest_bytes.decode("utf-8"),
                     json.dumps(sorted(signed_by)), registry, at),
                )
                engine.bump_generation()
        engine.audit(
            "install", actor=actor, target=m.name, version=m.version, sha256=pack.file_sha256,
            previous_version=prev.version if prev else None, memories=len(items),
            signed_by=sorted(signed_by), source=source, registry=registry,
        )
        return InstallResult(m.name, m.version, pack.file_sha256, pack.file_size, len(items),
                             tuple(sorted(signed_by)), source, previous_version=prev.version if prev else None)

    def _pack_rows(self, name: str) -> list[tuple[int, Any, int | None]]:
        rows = self.engine.store.db.execute("SELECT rowid, vec_row FROM memories WHERE pack = ?", (name,)).fetchall()
        memories = self.engine.store.by_rowids([int(r[0]) for r in rows])
        return [(int(r[0]), memories[int(r[0])], r[1]) for r in rows]

    def _manifest_sha(self, name: str) -> str:
        row = self.engine.store.db.execute("SELECT manifest_sha256 FROM packs WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else ""

    def _lock_entry(self, res: Resolution, result: InstallResult, registry: str) -> LockEntry:
        signer_keys = {k.keyid: k.public_key for k in res.keys if not k.revoked}
        return LockEntry(
            name=res.name,
            version=res.version,
            sha256=res.pack.sha256,
            size=res.pack.size,
            manifest_sha256=canonical_sha256_bytes(res.manifest_bytes),
            signed_by=result.signed_by,
            keys=tuple(signer_keys[k].to_text() for k in result.signed_by if k in signer_keys),
            registry=registry,
        )

    # ------------------------------------------------------------------ remove / upgrade / gc

    def remove(self, name: str, *, actor: str | None = None) -> int:
        """Uninstall a pack: its memories become tombstones (history kept); blobs are freed."""
        engine = self.engine
        with engine.write_lock:
            if self.installed_pack(name) is None:
                raise InstallError(f"{name} is not installed", code="install.not_installed")
            now = engine.clock()
            count = 0
            with engine.store.write():
                for rowid, old, vec in self._pack_rows(name):
                    if old.state is State.REMOVED:
                        continue
                    gone = replace(old, state=State.REMOVED, version=old.version + 1, updated_at=now)
                    engine.store.update(rowid, gone, vec, event="uninstall", actor=actor, at=to_epoch(now))
                    count += 1
                engine.store.db.execute("DELETE FROM packs WHERE name = ?", (name,))
                engine.store.db.execute(  # their activation forms go too (files freed by gc below)
                    "DELETE FROM kv_caches WHERE memory_id IN (SELECT id FROM memories WHERE pack = ?)", (name,)
                )
                engine.bump_generation()
        engine.audit("remove", actor=actor, target=name, memories=count)
        self.gc()
        return count

    def gc(self, *, partial_max_age_s: float = 7 * 86400) -> list[str]:
        """Free cached blobs that no installed pack, memory or KV cache refers to, and
        interrupted downloads older than ``partial_max_age_s`` (default a week)."""
        self.cache.remove_stale_partials(partial_max_age_s)
        self.engine.compact_vectors()
        return self.cache.gc(self._referenced_digests())

    def _referenced_digests(self) -> set[str]:
        db = self.engine.store.db
        keep = {str(r[0]) for r in db.execute("SELECT sha256 FROM packs")}
        keep |= {str(r[0]) for r in db.execute("SELECT sha256 FROM kv_caches")}
        for (payloads,) in db.execute("SELECT payloads FROM memories WHERE state != 'removed' AND payloads != '{}'"):
            keep |= set(json.loads(payloads).values())
        for (manifest,) in db.execute("SELECT manifest FROM packs"):
            for cube in json.loads(manifest).get("cubes", []):
                keep |= {p["sha256"] for p in cube.get("payloads", [])}
        return keep

    def _referenced(self, sha: str) -> bool:
        return sha in self._referenced_digests()

    def upgrade(
        self,
        names: Sequence[str] = (),
        *,
        registry: str,
        token: str | None = None,
        progress: Callable[[str], ProgressFn | None] | None = None,
        lockfile: Path | None = None,
        actor: str | None = None,
    ) -> list[InstallResult]:
        """Install the highest version of each named (default: every installed registry) pack."""
        targets = list(names) or [p.name for p in self.installed() if p.registry]
        results = []
        for text in targets:
            ref = parse_ref(text)
            current = self.installed_pack(ref.name)
            reg = registry if current is None or not current.registry else current.registry
            results.append(self.install(str(ref), registry=reg, token=token,
                                        progress=progress(ref.name) if progress else None,
                                        lockfile=lockfile, actor=actor))
        return results


def canonical_sha256_bytes(data: bytes) -> str:
    """sha256 of canonical manifest bytes (as the registry's ``manifest_sha256``)."""
    return hashlib.sha256(data).hexdigest()

