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
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocol import MIPError, ModelFingerprint, fingerprint_digest, read_safetensors_header

from ..cache import BlobCache
from ..errors import EngineError
from .interfaces import ActivationBackend
from .lifecycle import RETRIEVABLE
from .types import from_epoch

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["KVCacheRef", "TransformPolicy", "TransformReport", "demote_cold", "kv_cache_for", "promote_hot"]


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


def kv_cache_for(engine: Engine, memory_id: str, fingerprint: ModelFingerprint) -> KVCacheRef | None:
    row = engine.store.db.execute(
        "SELECT * FROM kv_caches WHERE memory_id = ? AND fingerprint_digest = ?",
        (memory_id, fingerprint_digest(fingerprint)),
    ).fetchone()
    if row is None:
        return None
    cache = BlobCache(engine.home)
    if not cache.has(row["sha256"]):
        return None
    return KVCacheRef(memory_id, row["sha256"], row["size"], row["token_count"], cache.blob_path(row["sha256"]))


def mark_kv_used(engine: Engine, refs: list[KVCacheRef], fingerprint: ModelFingerprint) -> None:
    at = engine.clock().timestamp()
    digest = fingerprint_digest(fingerprint)
    with engine.store.write():
        engine.store.db.executemany(
            "UPDATE kv_caches SET use_count = use_count + 1, last_used_at = ? "
            "WHERE memory_id = ? AND fingerprint_digest = ?",
            [(at, r.memory_id, digest) for r in refs],
        )


def promote_hot(
    engine: Engine, backend: ActivationBackend, policy: TransformPolicy, *, actor: str | None = None
) -> TransformReport:
    report = TransformReport()
    fp = backend.fingerprint()
    digest = fingerprint_digest(fp)
    states = [s.value for s in RETRIEVABLE]
    rows = engine.store.db.execute(
        f"SELECT id, text, access_count FROM memories m WHERE memory_type = 'plaintext' "  # noqa: S608
        f"AND state IN ({','.join('?' * len(states))}) AND access_count >= ? "
        "AND NOT EXISTS (SELECT 1 FROM kv_caches k WHERE k.memory_id = m.id AND k.fingerprint_digest = ?) "
        "ORDER BY access_count DESC LIMIT ?",
        [*states, policy.promote_after_uses, digest, policy.max_promotions],
    ).fetchall()
    cache = BlobCache(engine.home)
    for row in rows:
        work = cache.temp_dir("kv-")
        try:
            built = backend.build_kv([row["text"]], work)
            if not built.fingerprint.is_compatible(fp):
                raise EngineError("the backend built a cache for another model", code="engine.kv_fingerprint")
            path = Path(built.path).resolve()
            if not path.is_relative_to(work.resolve()) or not path.is_file():
                raise EngineError("the backend wrote its cache outside its folder", code="engine.kv_outside")
            size = path.stat().st_size
            with open(path, "rb") as fh:
                read_safetensors_header(fh, size)  # refuses pickles and anything not safetensors
            sha, _ = cache.add_file(path, copy=False)
        except (EngineError, MIPError) as exc:
            report.skipped.append({"memory": row["id"], "reason": f"[{exc.code}] {exc.message}"})
            continue
        finally:
            shutil.rmtree(work, ignore_errors=True)
        at = engine.clock().timestamp()
        with engine.store.write():
            engine.store.db.execute(
                "INSERT OR REPLACE INTO kv_caches(memory_id, fingerprint_digest, sha256, size, token_count, "
                "created_at, last_used_at, use_count) VALUES (?,?,?,?,?,?,?,0)",
                (row["id"], digest, sha, size, built.token_count, at, at),
            )
        report.promoted.append(row["id"])
        engine.audit(
            "promote", actor=actor, target=row["id"], model=fp.model_id, tokens=built.token_count,
            bytes=size, reason=f"used {row['access_count']} times (threshold {policy.promote_after_uses})",
        )
    return report


def demote_cold(engine: Engine, policy: TransformPolicy, *, actor: str | None = None) -> TransformReport:
    report = TransformReport()
    now = engine.clock()
    cutoff = (now - policy.demote_after).timestamp()
    cache = BlobCache(engine.home)
    rows = engine.store.db.execute("SELECT * FROM kv_caches WHERE last_used_at < ?", (cutoff,)).fetchall()
    for row in rows:
        with engine.store.write():
            engine.store.db.execute(
                "DELETE FROM kv_caches WHERE memory_id = ? AND fingerprint_digest = ?",
                (row["memory_id"], row["fingerprint_digest"]),
            )
            still = engine.store.db.execute("SELECT 1 FROM kv_caches WHERE sha256 = ?", (row["sha256"],)).fetchone()
        if still is None:
            cache.remove(row["sha256"])
        last = from_epoch(row["last_used_at"])
        report.demoted.append(row["memory_id"])
        engine.audit(
            "demote", actor=actor, target=row["memory_id"], bytes_freed=row["size"],
            reason=f"cache unused since {last.isoformat() if last else '?'} ({policy.demote_after.days} days)",
        )
    return report
