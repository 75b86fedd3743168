"""Dynamic transformation: hot plaintext memories get a KV cache; cold caches are freed.

* **Promotion**: a retrievable plaintext memory used at least
  ``promote_after_uses`` times (its access count) and without a cache for the
  running model gets one, built by the :class:`ActivationBackend` into the
  content-addressed blob cache (safetensors only; the header is checked so a
  pickle can never get in). One row in ``kv_caches`` per (memory, model
  fingerprint digest).
* **Demotion**: a cache not used for ``demote_after`` is deleted (row and blob
  file); the plaintext memory stays, so nothing is lost but latency.

The scheduler reads :func:`kv_cache_for` to decide between the two forms.
Run by ``memos maintain --model`` / the SDK's ``MemOS.transform()`` with a
backend; the engine never imports torch.

Not here: SQL (the store's ``kv_cache*`` methods) or building caches (the backend).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from protocol import MIPError, ModelFingerprint, fingerprint_digest, read_safetensors_header

from ..cache import BlobCache
from ..errors import EngineError
from .host import PolicyHost
from .interfaces import ActivationBackend
from .lifecycle import RETRIEVABLE
from .types import KVCacheRecord, from_epoch

__all__ = [
    "KVCacheRef",
    "TransformPolicy",
    "TransformReport",
    "demote_cold",
    "kv_cache_for",
    "mark_kv_used",
    "promote_hot",
]


@dataclass(frozen=True)
class TransformPolicy:
    promote_after_uses: int = 5
    demote_after: timedelta = timedelta(days=7)
    max_promotions: int = 32


@dataclass(frozen=True)
class KVCacheRef:
    memory_id: str
    sha256: str
    size: int
    token_count: int
    path: Path


@dataclass
class TransformReport:
    promoted: list[str] = field(default_factory=list)
    demoted: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"promoted": self.promoted, "demoted": self.demoted, "skipped": self.skipped}


def kv_cache_for(
    engine: PolicyHost, memory_id: str, fingerprint: ModelFingerprint
) -> KVCacheRef | None:
    found = engine.store.kv_cache(memory_id, fingerprint_digest(fingerprint))
    if found is None:
        return None
    cache = BlobCache(engine.home)
    if not cache.has(found.sha256):
        return None
    path = cache.blob_path(found.sha256)
    return KVCacheRef(memory_id, found.sha256, found.size, found.token_count, path)


def mark_kv_used(engine: PolicyHost, refs: list[KVCacheRef], fingerprint: ModelFingerprint) -> None:
    at = engine.clock().timestamp()
    engine.store.mark_kv_used([r.memory_id for r in refs], fingerprint_digest(fingerprint), at)


def _build(
    backend: ActivationBackend, fp: ModelFingerprint, text: str, cache: BlobCache
) -> tuple[str, int, int]:
    """Build, check and cache one KV cache; (sha256, size, token count)."""
    work = cache.temp_dir("kv-")
    try:
        built = backend.build_kv([text], work)
        if not built.fingerprint.is_compatible(fp):
            raise EngineError(
                "the backend built a cache for another model", code="engine.kv_fingerprint"
            )
        path = Path(built.path).resolve()
        if not path.is_relative_to(work.resolve()) or not path.is_file():
            raise EngineError(
                "the backend wrote its cache outside its folder", code="engine.kv_outside"
            )
        size = path.stat().st_size
        with open(path, "rb") as fh:
            read_safetensors_header(fh, size)  # refuses pickles and anything not safetensors
        sha, _ = cache.add_file(path, copy=False)
        return sha, size, built.token_count
    finally:
        shutil.rmtree(work, ignore_errors=True)


def promote_hot(
    engine: PolicyHost,
    backend: ActivationBackend,
    policy: TransformPolicy,
    *,
    actor: str | None = None,
) -> TransformReport:
    report = TransformReport()
    fp = backend.fingerprint()
    digest = fingerprint_digest(fp)
    engine.flush_usage()  # the counters of reads still queued count too
    hot = engine.store.hot_plaintext(
        tuple(RETRIEVABLE), min_uses=policy.promote_after_uses, fingerprint_digest=digest,
        limit=policy.max_promotions,
    )
    cache = BlobCache(engine.home)
    for memory_id, text, uses in hot:
        try:
            sha, size, tokens = _build(backend, fp, text, cache)
        except (EngineError, MIPError) as exc:
            report.skipped.append({"memory": memory_id, "reason": f"[{exc.code}] {exc.message}"})
            continue
        engine.store.upsert_kv_cache(
            memory_id=memory_id, fingerprint_digest=digest, sha256=sha, size=size,
            token_count=tokens, at=engine.clock().timestamp(),
        )
        report.promoted.append(memory_id)
        engine.audit(
            "promote", actor=actor, target=memory_id, model=fp.model_id, tokens=tokens,
            bytes=size, reason=f"used {uses} times (threshold {policy.promote_after_uses})",
        )
    return report


def demote_cold(
    engine: PolicyHost, policy: TransformPolicy, *, actor: str | None = None
) -> TransformReport:
    report = TransformReport()
    now = engine.clock()
    cutoff = (now - policy.demote_after).timestamp()
    cache = BlobCache(engine.home)
    for record in engine.store.kv_caches_unused_since(cutoff):
        if not engine.store.drop_kv_cache(record):
            cache.remove(record.sha256)
        report.demoted.append(record.memory_id)
        engine.audit(
            "demote", actor=actor, target=record.memory_id, bytes_freed=record.size,
            reason=_demote_reason(record, policy),
        )
    return report


def _demote_reason(record: KVCacheRecord, policy: TransformPolicy) -> str:
    last = from_epoch(record.last_used_at)
    since = last.isoformat() if last else "?"
    return f"cache unused since {since} ({policy.demote_after.days} days)"
