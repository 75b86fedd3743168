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

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path

import httpx

from protocol import Manifest, Pack, PackRef, PublicKey, TrustedKeys, parse_ref

from .._wire import Resolution
from ..cache import BlobCache, BlobProblem
from ..client import RegistryClient
from ..download import ProgressFn, download_blob
from ..engine.engine import Engine
from ..errors import InstallError
from ..lockfile import LockEntry, read_lockfile, update_lockfile
from ..transparency import check_install_logged
from ..trust_index import TrustIndex
from .blobs import BlobEntry, select_blobs
from .commit import PackState, commit_pack, remove_pack, with_carried
from .early_embed import EarlyEmbedding
from .fetch import FetchReport, check_blobs, fetch_blobs
from .indexed import vouch, vouch_locked
from .items import pack_items
from .results import InstalledPack, InstallResult
from .sources import CacheSource, FileSource, PackSource, RegistrySource
from .trust import (
    check_answer,
    check_source,
    local_keys,
    manifest_sha256,
    trust_locked,
)
from .view import installed_view, registry_lock_entry, verify_cached

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
        model_fingerprint: str | None = None,
    ) -> None:
        """``model_fingerprint`` (a fingerprint digest, ``protocol.fingerprint_digest``) is
        the configured model's: only its KV caches and adapters are fetched (all with
        ``everything=True``). With no model configured every blob is fetched, as
        MIP 1 installs did (the engine cannot yet tell which it will use)."""
        self.on_stage = on_stage
        self.model_fingerprint = model_fingerprint
        self.home = Path(home)
        self.engine = engine
        self.cache = cache or BlobCache(self.home)
        self._transport = transport
        self._client_factory = client_factory
        #: the longest one TUF metadata file may take to arrive (slow retrieval)
        self.trust_deadline_s = 30.0

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

    def installed_view(self, name: str, target: Path) -> Pack:
        """Installed pack ``name`` as a Pack whose payload paths link to the cached blobs."""
        installed = self.installed_pack(name)
        text = self.engine.store.pack_manifest(name)
        if installed is None or text is None:
            raise InstallError(f"{name} is not installed", code="install.not_installed")
        identity = (installed.sha256, installed.size)
        return installed_view(text.encode("utf-8"), identity, self.cache, target)

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
        everything: bool = False,
    ) -> InstallResult:
        ref = parse_ref(ref_text)
        current = self.installed_pack(ref.name)
        with self.client(registry, token) as client:
            res = client.resolve(ref)
            installed = current.version if current else None
            check_answer(ref, res, installed)
            index = self.trust_index(registry, client)
            res, keys, notes = self._trust(index, ref, res, installed)
            notes += check_install_logged(
                self.home, registry, client, name=res.name, version=res.version,
                manifest_bytes=res.manifest_bytes, root_keys=index.log_keys(),
            )  # fmt: skip
            result = self._install_resolved(
                client, res, keys, registry=registry, progress=progress, actor=actor,
                everything=everything, notes=notes,
            )  # fmt: skip
        if lockfile is not None:
            entry = registry_lock_entry(res, keys, result, registry)
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
        everything: bool = False,
    ) -> list[InstallResult]:
        """Install exactly what ``memos.lock`` says, refusing any difference."""
        results = []
        for name, entry in sorted(read_lockfile(lockfile).items()):
            results.append(
                self._install_entry(
                    entry, registry=entry.registry or registry, token=token,
                    progress=progress(name) if progress else None, actor=actor,
                    everything=everything,
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
        everything: bool,
    ) -> InstallResult:
        pinned = [PublicKey.from_text(k) for k in entry.keys]
        if entry.registry is None:  # installed from a file: only the cache can reproduce it
            result = self._install_cached(entry, local_keys(pinned), actor, everything)
            if result.sha256 != entry.sha256 or result.version != entry.version:
                raise InstallError(
                    f"{entry.name} in the cache differs from memos.lock",
                    code="install.lock_mismatch",
                )
            return result
        with self.client(registry, token) as client:
            ref = parse_ref(f"{entry.name}@{entry.version}")
            res = client.resolve(ref)
            check_answer(ref, res, None)
            keys = trust_locked(res, entry, pinned)
            res, notes = vouch_locked(self.trust_index(registry, client), ref, res,
                                      stage=self._stage)  # fmt: skip
            return self._install_resolved(
                client, res, keys, registry=registry, progress=progress, actor=actor,
                source="lockfile", everything=everything, notes=notes,
            )  # fmt: skip

    def trust_index(self, registry: str, client: RegistryClient) -> TrustIndex:
        return TrustIndex(self.home, registry, client, deadline_s=self.trust_deadline_s)

    def _trust(
        self, index: TrustIndex, ref: PackRef, res: Resolution, installed: str | None
    ) -> tuple[Resolution, TrustedKeys, tuple[str, ...]]:
        """The answer as the registry's TUF index vouches for it, the keys, and notes."""
        return vouch(index, ref, res, installed, self.pinned_keys(), stage=self._stage)

    def _install_cached(
        self, entry: LockEntry, keys: TrustedKeys, actor: str | None, everything: bool
    ) -> InstallResult:
        """A pack first installed from a file, again from the cache (its manifest and blobs)."""
        identity = (entry.sha256, entry.size)
        if entry.signatures:
            source = CacheSource(self.cache, entry.manifest_sha256, entry.signatures)
            return self.install_from_source(
                source, keys, identity=identity, actor=actor, everything=everything
            )
        if not self.cache.has(entry.sha256):  # a lockfile from before MIP 2: the pack file
            raise InstallError(
                f"{entry.name}@{entry.version} was installed from a file that is not in the cache",
                code="install.lock_source_missing",
            )
        with FileSource.read(self.cache.blob_path(entry.sha256), self.cache) as file:
            return self.install_from_source(
                file, keys, identity=identity, actor=actor, label="lockfile",
                everything=everything,
            )  # fmt: skip

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
        everything: bool = False,
        notes: tuple[str, ...] = (),
    ) -> InstallResult:
        warnings = list(notes)
        if res.yanked:
            reason = res.yanked_reason or "no reason given"
            warnings.append(f"{res.name}@{res.version} is yanked: {reason}")
        if res.deprecated:
            warnings.append(f"{res.name} is deprecated: {res.deprecation_message}")
        identity = (res.pack.sha256, res.pack.size)
        install = partial(
            self.install_from_source, keys=keys, identity=identity, registry=registry,
            actor=actor, label=source, everything=everything, warnings=tuple(warnings),
        )  # fmt: skip
        blobs = RegistrySource(client, res)
        if blobs.has_blob_urls(self.select(res.manifest, everything=everything)):
            return install(blobs, progress=progress)
        # A registry without per-blob URLs: the whole pack file, as MIP 1 clients fetch it.
        current = self.installed_pack(res.name)
        if current is not None and current.sha256 == res.pack.sha256 and self._intact(
            res.manifest, everything
        ):
            if progress:
                progress(res.pack.size, res.pack.size)
            return _unchanged(res.name, res.version, identity, current, source, warnings)
        blob = download_blob(
            client, res.pack.url, sha256=res.pack.sha256, size=res.pack.size, cache=self.cache,
            progress=progress,
        )  # fmt: skip
        with FileSource.read(blob, self.cache, wanted=self._wants(everything)) as file:
            return install(file, expected_manifest=res.manifest_bytes, prefetched=file.added)

    # ------------------------------------------------------------------ install a file

    def install_file(
        self,
        path: Path,
        *,
        trusted_keys: Sequence[PublicKey] = (),
        lockfile: Path | None = None,
        actor: str | None = None,
        everything: bool = False,
    ) -> InstallResult:
        trusted = list(trusted_keys) or self.pinned_keys()
        if not trusted:
            raise InstallError(
                "no trusted key to verify a local pack with", code="install.no_trusted_keys"
            )
        with FileSource.read(Path(path), self.cache, wanted=self._wants(everything)) as file:
            try:
                result = self.install_from_source(
                    file, local_keys(trusted), identity=(file.file_sha256, file.file_size),
                    actor=actor, everything=everything, prefetched=file.added,
                )  # fmt: skip
            except BaseException:
                keep = self.engine.store.referenced_digests()
                for digest in file.added:
                    if digest not in keep:
                        self.cache.remove(digest)
                raise
            signatures = tuple(s for s in file.signatures if s.keyid in result.signed_by)
        if lockfile is not None:
            pack_keys = [k.to_text() for k in trusted if k.keyid in result.signed_by]
            entry = LockEntry(
                result.name, result.version, result.sha256, result.size,
                self.engine.store.pack_manifest_sha256(result.name) or "", result.signed_by,
                tuple(pack_keys), None, blobs=result.blobs, signatures=signatures,
            )  # fmt: skip
            update_lockfile(lockfile, add={result.name: entry})
        return result

    # ------------------------------------------------------------------ any source

    def select(self, manifest: Manifest, *, everything: bool = False) -> tuple[BlobEntry, ...]:
        """The blobs of ``manifest`` this engine uses: plaintext, and its model's (or all)."""
        everything = everything or self.model_fingerprint is None
        return select_blobs(manifest, fingerprint=self.model_fingerprint, everything=everything)

    def _wants(self, everything: bool) -> Callable[[BlobEntry], bool]:
        """:meth:`select`'s rule for one blob (a MIP 2 file's blob sink asks it)."""
        fp, every = self.model_fingerprint, everything or self.model_fingerprint is None
        return lambda entry: every or entry.usable_by(fp)

    def _intact(self, manifest: Manifest, everything: bool) -> bool:
        chosen = self.select(manifest, everything=everything)
        return all(self.cache.is_intact(e.sha256, e.size) for e in chosen)

    def install_from_source(
        self,
        source: PackSource,
        keys: TrustedKeys,
        *,
        identity: tuple[str, int] | None = None,
        expected_manifest: bytes | None = None,
        registry: str | None = None,
        actor: str | None = None,
        label: str | None = None,
        progress: ProgressFn | None = None,
        everything: bool = False,
        warnings: tuple[str, ...] = (),
        prefetched: Sequence[str] = (),
    ) -> InstallResult:
        """Install the pack ``source`` serves, trusted by ``keys``, in one pass.

        Trust is decided on the signed manifest before any blob is fetched;
        then only the blobs :meth:`select` picks are fetched (several at once,
        skipping those cached and intact) into the cache, their content is
        checked, and the memories are committed. ``identity`` is the
        (sha256, size) the version is installed as (its pack file's, when it
        has one; default: the manifest's digest and the blobs' total size).
        ``prefetched``: digests the source itself already wrote into the cache.
        """
        verification = check_source(
            source.manifest_bytes, source.signatures, keys, expected_manifest=expected_manifest
        )
        manifest = Manifest.from_bytes(source.manifest_bytes)
        chosen = self.select(manifest, everything=everything)
        sha256, size = identity or (
            manifest_sha256(source.manifest_bytes), sum(e.size for e in chosen)
        )
        state = PackState(manifest, source.manifest_bytes, sha256, size)
        label = label or source.label
        cached = sum(1 for e in chosen if self.cache.has(e.sha256))
        self._stage(f"fetching {len(chosen) - cached} of {len(chosen)} blob(s) of {manifest.ref}"
                    + (f" ({cached} already cached)" if cached else ""))  # fmt: skip
        report = FetchReport((), ())

        def fetched(report: FetchReport) -> tuple[str, ...]:
            return tuple(sorted({*report.fetched, *prefetched}))

        # A fresh install embeds its memories while the tensors download.
        early = (EarlyEmbedding(manifest, self.cache, self.engine.embedder)
                 if self.installed_pack(manifest.name) is None else None)  # fmt: skip
        try:
            report = fetch_blobs(source, chosen, self.cache, progress=progress,
                                 on_ready=early.on_ready if early else None)  # fmt: skip
            self._stage("verifying the pack (digests, payload contents)")
            check_blobs(manifest, chosen, self.cache)
            if registry is None:  # --locked reproduces a file's pack from the cache
                self.cache.add_bytes(source.manifest_bytes)
            blobs = tuple(e.sha256 for e in chosen)
            current = self.installed_pack(manifest.name)
            if current is not None and current.sha256 == sha256:
                done = _unchanged(manifest.name, manifest.version, (sha256, size), current,
                                  label, warnings)  # fmt: skip
                return replace(done, blobs=blobs, fetched=fetched(report))
            state = with_carried(self.engine.store, state)
            now = self.engine.clock()
            items = pack_items(manifest, self._cached, now, skip_cubes=state.carried)
            result = commit_pack(
                self.engine, state, items, verification.valid, registry=registry, actor=actor,
                source=label, stage=self._stage, early=early.vectors() if early else None,
            )  # fmt: skip
        except BaseException:
            keep = self.engine.store.referenced_digests()
            for digest in report.fetched:
                if digest not in keep:
                    self.cache.remove(digest)
            raise
        finally:
            if early is not None:
                early.close()
        return replace(result, warnings=warnings, blobs=blobs, fetched=fetched(report))

    def _cached(self, sha256: str) -> Path | None:
        return self.cache.blob_path(sha256) if self.cache.has(sha256) else None

    # ------------------------------------------------------------------ verify

    def verify_installed(self, names: Sequence[str] = ()) -> list[tuple[str, BlobProblem]]:
        """Re-hash the cached blobs of installed packs (default: all); (pack, problem) each."""
        return verify_cached(self.engine.store, self.cache, names)

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
        everything: bool = False,
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
                    actor=actor, everything=everything,
                )
            )
        return results
