"""The agent-facing SDK: ``from runtime import MemOS``.

    >>> from runtime import MemOS
    >>> with MemOS(principal="agent-7") as mem:                     # doctest: +SKIP
    ...     mem.install("acme/rust-tips@^1")
    ...     hits = mem.search("borrow checker")
    ...     plan = mem.plan("how do I avoid clones?", budget=512)
    ...     mem.history(hits[0].memory.id)

One object over the local engine (store, search, scheduler, lifecycle,
governance) and the installer. ``principal`` is who acts: every read and
every change (update, transition, rollback, history) is checked against each
memory's access policy for it and audited, denied attempts included. The registry
is reached through one :class:`runtime.client.RegistryClient` per operation;
``transport=`` (an ``httpx`` transport, e.g. ``httpx.MockTransport``) is
passed on to it, so tests and embedders can use an in-memory registry.

The CLI's runtime commands are thin wrappers over the methods here.
Not here: model loading and generation (:mod:`runtime.models`), publishing
(:mod:`runtime.client`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from protocol import Manifest, ModelFingerprint, PublicKey, fingerprint_digest

from .cache import BlobProblem
from .config import load_settings
from .download import ProgressFn
from .engine.engine import Engine
from .engine.interfaces import ActivationBackend, Clock, Embedder
from .engine.lifecycle import Event
from .engine.maintenance import MaintenancePolicy, MaintenanceReport
from .engine.scheduler import Budget, MemScheduler, Plan
from .engine.transform import TransformPolicy, TransformReport, demote_cold, promote_hot
from .engine.types import AuditEntry, Filters, Memory, SearchHit, VersionEntry
from .install import InstalledPack, Installer, InstallResult
from .lockfile import update_lockfile
from .models.embedding import default_embedder

__all__ = ["MemOS", "is_pack_file"]

#: Given a pack's name, the progress callback for its download (or None).
ProgressFactory = Callable[[str], ProgressFn | None]


def is_pack_file(ref_or_path: str | Path) -> bool:
    """Whether ``memos install`` takes this as a local ``.memcube`` file, not a registry name."""
    text = str(ref_or_path)
    return text.endswith(".memcube") or Path(text).is_file()


class MemOS:
    """The local memory OS for one ``MEMOS_HOME``."""

    def __init__(
        self,
        home: Path | str | None = None,
        *,
        principal: str | None = None,
        embedder: Embedder | None = None,
        backend: ActivationBackend | None = None,
        clock: Clock | None = None,
        registry: str | None = None,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        on_stage: Callable[[str], None] | None = None,
        maintain_every: timedelta | None = None,
        maintenance_policy: MaintenancePolicy | None = None,
        model_fingerprint: str | None = None,
    ) -> None:
        """``on_stage`` is told each step of an install ("verifying the pack", ...).

        ``model_fingerprint`` (a fingerprint digest) names the model whose KV
        caches and adapters installs fetch; default: the ``backend``'s model,
        else ``MEMOS_MODEL_FINGERPRINT``; none: every blob is fetched."""
        settings = load_settings()
        self.home = Path(home) if home is not None else settings.home
        self.principal = principal if principal is not None else settings.principal
        self.registry = (registry or settings.registry).rstrip("/")
        self.token = token if token is not None else settings.token_for(self.registry)
        if maintain_every is None and settings.maintain_hours > 0:
            maintain_every = timedelta(hours=settings.maintain_hours)
        kwargs: dict[str, Any] = {
            "maintain_every": maintain_every,
            "maintenance_policy": maintenance_policy,
        }
        if clock is not None:
            kwargs["clock"] = clock
        self.engine = Engine(
            self.home, embedder=embedder or default_embedder(settings.embedder), **kwargs
        )
        self.backend = backend
        self.scheduler = MemScheduler(self.engine, backend)
        if model_fingerprint is None and backend is not None:
            model_fingerprint = fingerprint_digest(backend.fingerprint())
        self.installer = Installer(
            self.home, self.engine, transport=transport, on_stage=on_stage,
            model_fingerprint=model_fingerprint or settings.model_fingerprint,
        )  # fmt: skip

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> MemOS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- memories

    def add(self, text: str, **fields: Any) -> Memory:
        """Add a plaintext memory (tags, metadata, priority, expires_at, access=AccessPolicy...)."""
        return self.engine.add(text, actor=self.principal, **fields)

    def get(self, memory_id: str) -> Memory:
        return self.engine.get(memory_id, principal=self.principal)

    def update(self, memory_id: str, **changes: Any) -> Memory:
        return self.engine.update(memory_id, actor=self.principal, **changes)

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Filters | None = None,
        include_archived: bool = False,
        min_similarity: float | None = None,
    ) -> list[SearchHit]:
        """Hybrid search; semantic-only matches below ``min_similarity`` (default: the
        embedder's relevance floor, 0.25 for MiniLM) are not hits."""
        return self.engine.search(
            query,
            principal=self.principal,
            k=k,
            filters=filters,
            include_archived=include_archived,
            min_similarity=min_similarity,
        )

    def plan(
        self,
        query: str,
        budget: Budget | int = 512,
        *,
        model_fingerprint: ModelFingerprint | None = None,
        filters: Filters | None = None,
        dry_run: bool = False,
    ) -> Plan:
        return self.scheduler.plan(
            query, budget, self.principal, model_fingerprint, filters=filters, dry_run=dry_run
        )

    def generate(
        self,
        query: str,
        budget: Budget | int = 512,
        *,
        max_new_tokens: int = 64,
        filters: Filters | None = None,
    ) -> tuple[Any, Plan]:
        """Plan for ``query`` and generate with the plan injected: (generation, plan).

        Needs a :class:`runtime.models.TransformersBackend` as ``backend``: its
        model runs the plan, the KV caches of several packs composed behind one
        header in the plan's order (``budget.recompute`` of each later cache's
        tokens recomputed). The generation is a
        :class:`runtime.models.MemoryGeneration` (``form``, ``reason``, ``notes``).
        """
        lm = getattr(self.backend, "lm", None)
        if lm is None:
            raise TypeError("MemOS.generate needs backend=TransformersBackend(model)")
        from .cache import BlobCache
        from .models.generation import generate_with_plan
        from .models.kv_installed import installed_kv_files

        plan = self.plan(query, budget, filters=filters)
        cache = BlobCache(self.home)
        # A cube stored as KV chunks: each chunk from the cache, re-hashed once per process.
        chunks = installed_kv_files(self.engine.store.pack_manifest, cache.checked_path)
        result = generate_with_plan(
            lm, plan, blob_path=cache.blob_path, kv_files=chunks, max_new_tokens=max_new_tokens
        )
        return result, plan

    def transition(self, memory_id: str, event: Event | str, **kwargs: Any) -> Memory:
        return self.engine.transition(memory_id, event, actor=self.principal, **kwargs)

    def history(self, memory_id: str) -> list[VersionEntry]:
        return self.engine.history(memory_id, principal=self.principal)

    def rollback(self, memory_id: str, version: int) -> Memory:
        return self.engine.rollback(memory_id, version, actor=self.principal)

    def as_of(self, memory_id: str, when: datetime) -> Memory:
        return self.engine.as_of(memory_id, when, principal=self.principal)

    def audit(self, **filters: Any) -> list[AuditEntry]:
        return self.engine.audit_log(**filters)

    def verify_audit(self) -> int | None:
        """Check the audit log's hash chain: the first entry where it breaks, or None."""
        self.engine.flush_usage()
        return self.engine.store.verify_audit_chain()

    def maintain(self, *, dry_run: bool = False) -> MaintenanceReport:
        return self.engine.maintain(actor=self.principal, dry_run=dry_run)

    def transform(self, policy: TransformPolicy | None = None) -> TransformReport:
        """Dynamic transformation with the running model: promote hot memories, demote
        cold caches."""
        policy = policy or TransformPolicy()
        report = demote_cold(self.engine, policy, actor=self.principal)
        if self.backend is not None:
            promoted = promote_hot(self.engine, self.backend, policy, actor=self.principal)
            report.promoted, report.skipped = promoted.promoted, promoted.skipped
        return report

    # ---- packs

    def install(
        self,
        ref_or_path: str | Path,
        *,
        trusted_keys: Sequence[PublicKey] = (),
        lockfile: Path | None = None,
        progress: ProgressFn | None = None,
        everything: bool = False,
    ) -> InstallResult:
        """Install ``NS/NAME[@SPEC]`` from the registry, or a local ``.memcube`` file
        (verified with ``trusted_keys``, else the keys pinned in ``MEMOS_HOME``).
        ``everything`` fetches every model's KV caches and adapters (``--all``)."""
        if is_pack_file(ref_or_path):
            return self.installer.install_file(
                Path(ref_or_path), trusted_keys=trusted_keys, lockfile=lockfile,
                actor=self.principal, everything=everything,
            )  # fmt: skip
        return self.installer.install(
            str(ref_or_path), registry=self.registry, token=self.token, progress=progress,
            lockfile=lockfile, actor=self.principal, everything=everything,
        )  # fmt: skip

    def install_locked(
        self,
        lockfile: Path,
        *,
        progress: ProgressFactory | None = None,
        everything: bool = False,
    ) -> list[InstallResult]:
        """Install exactly what ``lockfile`` (``memos.lock``) says, refusing any difference."""
        return self.installer.install_locked(
            lockfile, registry=self.registry, token=self.token, progress=progress,
            actor=self.principal, everything=everything,
        )  # fmt: skip

    def verify_installed(self, packs: Sequence[str] = ()) -> list[tuple[str, BlobProblem]]:
        """Re-hash the cached blobs of installed ``packs`` (default: all): (pack, problem)
        for each one that does not match its digest. Installing again repairs them."""
        return self.installer.verify_installed(packs)

    def upgrade(
        self,
        names: Sequence[str] = (),
        *,
        progress: ProgressFactory | None = None,
        lockfile: Path | None = None,
        everything: bool = False,
    ) -> list[InstallResult]:
        """Install the highest version of each named pack (default: every registry pack),
        within a range when a name has one (``acme/tips@^1``). Only blobs not yet in the
        cache are fetched."""
        return self.installer.upgrade(
            names, registry=self.registry, token=self.token, progress=progress,
            lockfile=lockfile, actor=self.principal, everything=everything,
        )  # fmt: skip

    def remove(self, name: str, *, lockfile: Path | None = None) -> int:
        """Uninstall a pack (its memories' history is kept); drop it from ``lockfile``
        when that file exists. Returns how many memories were removed."""
        count = self.installer.remove(name, actor=self.principal)
        if lockfile is not None and lockfile.exists():
            update_lockfile(lockfile, remove=(name,))
        return count

    def installed(self) -> list[InstalledPack]:
        return self.installer.installed()

    def manifest(self, pack: str) -> Manifest:
        """An installed pack's signed manifest: every MemCube with all its MIP metadata."""
        return self.installer.manifest(pack)

    def gc(self) -> list[str]:
        """Delete cached blobs nothing refers to any more; returns their digests."""
        return self.installer.gc()
