"""The installer: resolve, trust, download, read, commit, lock -- in that order.

:class:`Installer` orchestrates the steps for one ``MEMOS_HOME`` and owns
the I/O around them (the registry client, the blob cache, the staging folder,
``$MEMOS_HOME/trusted-keys``, ``memos.lock``). The decisions are the steps'
own: :mod:`.trust` (pure: which keys, and do they accept the pack),
:mod:`.items` (the pack's memories), :mod:`.commit` (the engine transaction).
The package docstring (:mod:`runtime.install`) gives the order of operations.

Not here: the trust rule (:mod:`protocol.trust`), HTTP (:mod:`runtime.client`),
resumable downloads (:mod:`runtime.download`), SQL (:mod:`runtime.engine.store`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx

from protocol import Manifest, PublicKey, TrustedKeys, parse_ref, read_pack

from .._wire import Resolution
from ..cache import BlobCache
from ..client import RegistryClient
from ..download import ProgressFn, download_blob
from ..engine.engine import Engine
from ..errors import InstallError
from ..lockfile import LockEntry, read_lockfile, update_lockfile
from .commit import commit_pack, remove_pack, store_payloads
from .items import pack_items
from .results import InstalledPack, InstallResult
from .trust import (
    check_pack,
    local_keys,
    manifest_sha256,
    trust_locked,
    trust_resolution,
)

__all__ = ["Installer"]

ClientFactory = Callable[[str, str | None], RegistryClient]


def _keys_from_pins(folder: Path) -> list[PublicKey]:
    if not folder.is_dir():
        return []
    return [PublicKey.load(p.read_bytes()) for p in sorted(folder.glob("*.pub"))]


def _unchanged(
    name: str,
    version: str,
    location: tuple[str, int],
    current: InstalledPack,
    source: str,
    warnings: Sequence[str] = (),
) -> InstallResult:
    """The answer when the pack file (``location``: sha256, size) is already installed."""
    sha256, size = location
    return InstallResult(
        name, version, sha256, size, current.memories, current.signed_by, source,
        changed=False, previous_version=current.version, warnings=tuple(warnings),
    )


class Installer:
    """Installs packs into one MEMOS_HOME (cache + engine)."""

    def __init__(
        self,
        home: Path,
        engine: Engine,
        *,
        cache: BlobCache | None = None,
        transport: httpx.BaseTransport | None = None,
        client_factory: ClientFactory | None = None,
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
        return [
            InstalledPack(
                r.name, r.version, r.sha256, r.size, r.registry,
                datetime.fromtimestamp(r.installed_at).astimezone(), r.signed_by, r.memories,
            )
            for r in self.engine.store.installed_packs()
        ]

    def manifest(self, name: str) -> Manifest:
        """The signed manifest of an installed pack (every cube's metadata: provenance, ...)."""
        text = self.engine.store.pack_manifest(name)
        if text is None:
            raise InstallError(f"{name} is not installed", code="install.not_installed")
        return Manifest.from_bytes(text.encode("utf-8"))

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
            keys = trust_resolution(res, self.pinned_keys())
            result = self._install_resolved(
                client, res, keys, registry=registry, progress=progress, actor=actor
            )
        if lockfile is not None:
            entry = self._lock_entry(res, keys, result, registry)
            update_lockfile(lockfile, add={res.name: entry})
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
                self._install_entry(
                    entry, registry=entry.registry or registry, token=token,
                    progress=progress(name) if progress else None, actor=actor,
                )
            )
        return results

    def _install_entry(
        self,
        entry: LockEntry,
        *,
        registry: str,
        token: str | None,
        progress: ProgressFn | None,
        actor: str | None,
    ) -> InstallResult:
        pinned = [PublicKey.from_text(k) for k in entry.keys]
        current = self.installed_pack(entry.name)
        if current is not None and current.sha256 == entry.sha256:
            location = (entry.sha256, entry.size)
            return _unchanged(entry.name, entry.version, location, current, "lockfile")
        if entry.registry is None:  # installed from a file: only the cached bytes can reproduce it
            if not self.cache.has(entry.sha256):
                raise InstallError(
                    f"{entry.name}@{entry.version} was installed from a file that is not in "
                    "the cache",
                    code="install.lock_source_missing",
                )
            result = self._install_blob(
                self.cache.blob_path(entry.sha256), local_keys(pinned), expected_manifest=None,
                registry=None, actor=actor, source="lockfile",
            )
            if result.sha256 != entry.sha256 or result.version != entry.version:
                raise InstallError(
                    f"{entry.name} in the cache differs from memos.lock",
                    code="install.lock_mismatch",
                )
            return result
        with self.client(registry, token) as client:
            res = client.resolve(parse_ref(f"{entry.name}@{entry.version}"))
            keys = trust_locked(res, entry, pinned)
            return self._install_resolved(
                client, res, keys, registry=registry, progress=progress, actor=actor,
                source="lockfile",
            )

    def _install_resolved(
        self,
        client: RegistryClient,
        res: Resolution,
        keys: TrustedKeys,
        *,
        registry: str,
        progress: ProgressFn | None,
        actor: str | None,
        source: str = "registry",
    ) -> InstallResult:
        warnings = []
        if res.yanked:
            reason = res.yanked_reason or "no reason given"
            warnings.append(f"{res.name}@{res.version} is yanked: {reason}")
        if res.deprecated:
            warnings.append(f"{res.name} is deprecated: {res.deprecation_message}")
        current = self.installed_pack(res.name)
        if current is not None and current.sha256 == res.pack.sha256:
            if progress:
                progress(res.pack.size, res.pack.size)
            location = (res.pack.sha256, res.pack.size)
            return _unchanged(res.name, res.version, location, current, source, warnings)
        blob = download_blob(
            client, res.pack.url, sha256=res.pack.sha256, size=res.pack.size, cache=self.cache,
            progress=progress,
        )
        result = self._install_blob(
            blob, keys, expected_manifest=res.manifest_bytes, registry=registry, actor=actor,
            source=source,
        )
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
            result = self._install_blob(
                blob, local_keys(trusted), expected_manifest=None, registry=None, actor=actor,
                source="file",
            )
        except Exception:
            if sha not in self.engine.store.referenced_digests():
                self.cache.remove(sha)
            raise
        if lockfile is not None:
            pack_keys = [k.to_text() for k in trusted if k.keyid in result.signed_by]
            entry = LockEntry(
                result.name, result.version, result.sha256, result.size,
                self.engine.store.pack_manifest_sha256(result.name) or "", result.signed_by,
                tuple(pack_keys), None,
            )
            update_lockfile(lockfile, add={result.name: entry})
        return result

    # ------------------------------------------------------------------ common path

    def _install_blob(
        self,
        blob: Path,
        keys: TrustedKeys,
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
            verification = check_pack(pack, keys, expected_manifest=expected_manifest)
            items = pack_items(pack, self.engine.clock())
            store_payloads(pack, self.cache)
            return commit_pack(
                self.engine, pack, items, verification.valid, registry=registry, actor=actor,
                source=source, stage=self._stage,
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _lock_entry(
        res: Resolution, keys: TrustedKeys, result: InstallResult, registry: str
    ) -> LockEntry:
        signer_keys = {k.keyid: k for k in keys.in_force()}
        return LockEntry(
            name=res.name,
            version=res.version,
            sha256=res.pack.sha256,
            size=res.pack.size,
            manifest_sha256=manifest_sha256(res.manifest_bytes),
            signed_by=result.signed_by,
            keys=tuple(signer_keys[k].to_text() for k in result.signed_by if k in signer_keys),
            registry=registry,
        )

    # ------------------------------------------------------------------ remove / upgrade / gc

    def remove(self, name: str, *, actor: str | None = None) -> int:
        """Uninstall a pack: its memories become tombstones (history kept); blobs are freed."""
        count = remove_pack(self.engine, name, actor=actor)
        self.gc()
        return count

    def gc(self, *, partial_max_age_s: float = 7 * 86400) -> list[str]:
        """Free cached blobs that no installed pack, memory or KV cache refers to, and
        interrupted downloads older than ``partial_max_age_s`` (default a week)."""
        self.cache.remove_stale_partials(partial_max_age_s)
        self.engine.compact_vectors()
        return self.cache.gc(self.engine.store.referenced_digests())

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
            results.append(
                self.install(
                    str(ref), registry=reg, token=token,
                    progress=progress(ref.name) if progress else None, lockfile=lockfile,
                    actor=actor,
                )
            )
        return results
