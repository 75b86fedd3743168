"""MemScheduler: what to inject for a query, in which form, within which budget — and why.

``plan(query, budget, principal, model_fingerprint)``:

1. **Retrieve** candidates by hybrid search (semantic + keyword + symbolic
   filters, fused with reciprocal rank fusion). Activation (KV cache) and
   parameter (LoRA) cubes are candidates when they match the query themselves
   or when their pack answered it.
2. **Govern**: a candidate the principal's access policy does not allow, or
   whose expiry has passed, is rejected with the reason.
3. **Score** every candidate: ``0.6·relevance + 0.2·priority + 0.1·recency +
   0.1·frequency`` where relevance is the fused RRF score over the best one,
   recency is ``exp(-days since last use (or creation) / 30)`` and frequency is
   ``log(1+uses) / log(1+most uses among candidates)``.
4. **Choose** greedily by score:
   * parameter adapters only for the running base model (fingerprints must
     match on every identity field); one adapter per plan; no tokens used;
   * activation caches only for the running model; their cached tokens count
     against the token budget; at most ``max_kv_caches`` per plan, composed
     in the plan's order behind one shared header (``runtime.models.kv_compose``):
     the first (highest-scored) is exact, each later one has a ``recompute``
     fraction of its tokens recomputed to restore attention to the caches
     before it. Each item says where it is placed and what the recompute
     costs (tokens, and seconds from the :class:`LatencyProfile`); with a
     latency budget, a cache whose load plus recompute would exceed it is
     rejected;
   * plaintext snippets within the remaining token budget. When the memory
     has a promoted KV cache for the running model and a latency budget is
     set, the cache is used if loading it is faster than prefilling the text
     (estimates from the backend's :class:`LatencyProfile`); otherwise the
     plaintext is used, and the reason says which and why.
   Anything that does not fit (tokens, latency, item count) is rejected with
   the numbers.
5. **Execute** (unless ``dry_run``): access counts and last-access times of
   the chosen memories are updated, generated ones are activated, KV caches
   marked used, and the read is audited with the principal.

Without a backend, tokens are estimated as ``ceil(characters / 4)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from protocol import MemoryType, ModelFingerprint

from ..cache import BlobCache
from ..errors import CacheError
from .cube_payloads import CubePayloads, kv_cost
from .engine import Engine
from .interfaces import ActivationBackend, LatencyProfile
from .lifecycle import RETRIEVABLE
from .retrieval import Candidate
from .transform import KVCacheRef, kv_cache_for, mark_kv_used
from .types import Filters, Memory

__all__ = ["Budget", "MemScheduler", "Plan", "PlanItem", "Rejection", "estimate_tokens"]


# The fraction of a later cache's tokens recomputed when caches are composed; the same
# value as runtime.models.kv_compose.DEFAULT_RECOMPUTE (a test keeps them equal; the
# engine imports no torch).
DEFAULT_KV_RECOMPUTE = 0.0


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


@dataclass(frozen=True)
class Budget:
    tokens: int
    latency_s: float | None = None
    max_items: int = 20
    max_kv_caches: int = 4
    recompute: float = DEFAULT_KV_RECOMPUTE  # of each later cache's tokens (see the docstring)


@dataclass(frozen=True)
class PlanItem:
    memory: Memory
    form: str  # plaintext | activation | parameter
    tokens: int
    score: float
    reason: str
    est_latency_s: float | None = None
    payload: str | None = None  # blob path of the KV cache or of the adapter's weights
    files: Mapping[str, str] = field(default_factory=dict)  # every payload: media type -> blob path
    offset: int | None = None  # activation: tokens of the caches placed before this one
    recompute_tokens: int = 0  # activation: tokens recomputed when composed

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory_id": self.memory.id,
            "form": self.form,
            "tokens": self.tokens,
            "score": round(self.score, 4),
            "reason": self.reason,
            "est_latency_s": None if self.est_latency_s is None else round(self.est_latency_s, 6),
            "payload": self.payload,
            "files": dict(self.files),
            "text": self.memory.text if self.form == "plaintext" else None,
            "pack": self.memory.pack,
            "offset": self.offset,
            "recompute_tokens": self.recompute_tokens,
        }


@dataclass(frozen=True)
class Rejection:
    memory_id: str
    code: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"memory_id": self.memory_id, "code": self.code, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    query: str
    principal: str | None
    budget: Budget
    items: tuple[PlanItem, ...]
    rejected: tuple[Rejection, ...]
    model: str | None
    tokens_used: int
    est_latency_s: float | None
    executed: bool = False

    @property
    def plaintext(self) -> list[str]:
        return [i.memory.text for i in self.items if i.form == "plaintext"]

    def prompt_prefix(self) -> str:
        """The plaintext snippets as one block to prepend to a prompt."""
        return "\n".join(f"- {t}" for t in self.plaintext)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "principal": self.principal,
            "budget": {"tokens": self.budget.tokens, "latency_s": self.budget.latency_s,
                       "max_items": self.budget.max_items,
                       "max_kv_caches": self.budget.max_kv_caches,
                       "recompute": self.budget.recompute},
            "model": self.model,
            "tokens_used": self.tokens_used,
            "est_latency_s": None if self.est_latency_s is None else round(self.est_latency_s, 6),
            "items": [i.to_dict() for i in self.items],
            "rejected": [r.to_dict() for r in self.rejected],
            "executed": self.executed,
        }


@dataclass
class _Scored:
    cand: Candidate
    score: float
    why: str


@dataclass
class MemScheduler:
    engine: Engine
    backend: ActivationBackend | None = None
    token_counter: Callable[[str], int] | None = None
    weights: tuple[float, float, float, float] = (0.6, 0.2, 0.1, 0.1)
    recency_days: float = 30.0
    _profile: LatencyProfile | None = field(default=None, repr=False)

    def count(self, text: str) -> int:
        if self.token_counter is not None:
            return self.token_counter(text)
        if self.backend is not None:
            return self.backend.count_tokens(text)
        return estimate_tokens(text)

    def profile(self) -> LatencyProfile | None:
        if self._profile is None and self.backend is not None:
            self._profile = self.backend.latency_profile()
        return self._profile

    # ------------------------------------------------------------------ plan

    def plan(
        self,
        query: str,
        budget: Budget | int,
        principal: str | None = None,
        model_fingerprint: ModelFingerprint | None = None,
        *,
        filters: Filters | None = None,
        dry_run: bool = False,
    ) -> Plan:
        if isinstance(budget, int):
            budget = Budget(tokens=budget)
        fp = model_fingerprint or (self.backend.fingerprint() if self.backend else None)
        engine = self.engine
        now = engine.clock()
        cands = engine.retrieve(query, filters=filters, candidates=max(50, budget.max_items * 5))
        cands = self._with_pack_cubes(cands, filters)
        rejected: list[Rejection] = []
        allowed: list[Candidate] = []
        for c in cands:
            m = c.memory
            if not m.access.allows(principal):
                who = principal or "anonymous"
                rejected.append(Rejection(m.id, "access.denied",
                    f"access policy '{m.access.visibility}' does not list {who}"))
            elif m.expires_at is not None and m.expires_at <= now:
                rejected.append(Rejection(m.id, "lifecycle.expired",
                    f"expired at {m.expires_at.isoformat()}"))
            else:
                allowed.append(c)
        scored = self._score(allowed, now.timestamp())
        items: list[PlanItem] = []
        kv_used: list[KVCacheRef] = []
        remaining = budget.tokens
        latency = 0.0
        adapters = 0
        kv_count = 0
        kv_tokens = 0
        profile = self.profile()
        cubes = CubePayloads(self.engine.store.pack_manifest)  # every chunk of a chunked cache
        for s in scored:
            m = s.cand.memory
            if len(items) >= budget.max_items:
                rejected.append(Rejection(m.id, "plan.max_items",
                    f"the plan already has {budget.max_items} items"))
                continue
            if m.memory_type is not MemoryType.PLAINTEXT:
                problem = self._model_problem(m, fp)
                if problem:
                    rejected.append(Rejection(m.id, "plan.model_mismatch", problem))
                    continue
                refused = self._blob_problem(m, cubes)
                if refused:
                    rejected.append(Rejection(m.id, *refused))
                    continue
            if m.memory_type is MemoryType.PARAMETER:
                if adapters >= 1:
                    rejected.append(Rejection(m.id, "plan.one_adapter",
                        "one adapter per plan; a higher-scored adapter was chosen"))
                    continue
                adapters += 1
                items.append(PlanItem(m, "parameter", 0, s.score,
                    f"LoRA adapter for the running base model {fp.model_id if fp else ''}; {s.why}",
                    payload=self._blob(m, "lora-weights"), files=self._files(m)))
                continue
            if m.memory_type is MemoryType.ACTIVATION:
                tokens = m.token_count or 0
                if kv_count >= budget.max_kv_caches:
                    rejected.append(Rejection(m.id, "plan.kv_combine",
                        f"at most {budget.max_kv_caches} KV cache(s) per plan; "
                        f"{kv_count} higher-scored ones were chosen"))
                    continue
                if tokens > remaining:
                    rejected.append(Rejection(m.id, "plan.token_budget",
                        f"KV cache holds {tokens} tokens; {remaining} of {budget.tokens} left"))
                    continue
                payload = self._blob(m, "kv-cache")
                redo = math.ceil(budget.recompute * tokens) if kv_count else 0
                sizes = [n for media, _, n in cubes.of(m) if "kv-cache" in media]
                kv_bytes = sum(n for n in sizes if n) if sizes and all(sizes) else None
                est, cost = kv_cost(payload, redo, profile, size=kv_bytes)
                limit = budget.latency_s
                if limit is not None and est is not None and latency + est > limit:
                    left_ms = max(0.0, limit - latency) * 1000
                    rejected.append(Rejection(m.id, "plan.latency_budget",
                        f"KV cache would take ~{est * 1000:.1f} ms ({cost}); {left_ms:.1f} ms "
                        f"of the {limit * 1000:.0f} ms latency budget left"))
                    continue
                offset = kv_tokens
                where = (f"KV cache #{kv_count + 1} for the running model ({tokens} tokens "
                         f"placed at offset {offset}, no prefill); ")
                where += ("first cache: exact, nothing to recompute" if not kv_count else
                          f"recomputes {redo} tokens ({budget.recompute:.0%}) to attend to the "
                          f"{kv_count} cache(s) before it")
                kv_count += 1
                kv_tokens += tokens
                remaining -= tokens
                latency += est or 0.0
                items.append(PlanItem(m, "activation", tokens, s.score,
                    f"{where}; {cost}; {s.why}" if est is not None else f"{where}; {s.why}",
                    est, payload=payload, files=self._files(m), offset=offset,
                    recompute_tokens=redo))
                continue
            tokens = self.count(m.text)
            if tokens > remaining:
                rejected.append(Rejection(m.id, "plan.token_budget",
                    f"needs {tokens} tokens; {remaining} of {budget.tokens} left"))
                continue
            form, est, why_form, kv = self._form(m, tokens, fp, profile, budget, kv_count)
            limit = budget.latency_s
            if limit is not None and est is not None and latency + est > limit:
                left_ms = max(0.0, limit - latency) * 1000
                rejected.append(Rejection(m.id, "plan.latency_budget",
                    f"{form} would take ~{est * 1000:.1f} ms; {left_ms:.1f} ms "
                    f"of the {limit * 1000:.0f} ms latency budget left"))
                continue
            if kv is not None:
                kv_used.append(kv)
                kv_count += 1
                kv_tokens += tokens
            remaining -= tokens
            latency += est or 0.0
            items.append(PlanItem(m, form, tokens, s.score, f"{why_form}; {s.why}", est,
                                  payload=str(kv.path) if kv else None))
        plan = Plan(
            query=query, principal=principal, budget=budget, items=tuple(items),
            rejected=tuple(rejected),
            model=fp.model_id if fp else None, tokens_used=budget.tokens - remaining,
            est_latency_s=latency if profile else None, executed=not dry_run,
        )
        if not dry_run:
            used = [(self._rowid(i.memory), i.memory) for i in items]
            engine.record_use(used, principal=principal,
                              action="plan", query=query,
                              forms={i.memory.id: i.form for i in items}, rejected=len(rejected))
            if kv_used and fp is not None:
                mark_kv_used(engine, kv_used, fp)
        return plan

    # ------------------------------------------------------------------ helpers

    def _rowid(self, memory: Memory) -> int:
        found = self.engine.store.get(memory.id)
        return found[1] if found else -1

    def _with_pack_cubes(self, cands: list[Candidate], filters: Filters | None) -> list[Candidate]:
        """Add KV and LoRA cubes of the packs that answered the query."""
        packs = {c.memory.pack for c in cands if c.memory.pack}
        have = {c.memory.id for c in cands}
        if not packs:
            return cands
        rows = self.engine.store.pack_cubes(sorted(p for p in packs if p), tuple(RETRIEVABLE))
        kinds = filters.memory_types if filters is not None else ()
        extra = [Candidate(rowid, m, 0.0, None, None, None) for rowid, m in rows
                 if m.id not in have and (not kinds or m.memory_type in kinds)]
        return cands + extra

    def _score(self, cands: list[Candidate], now: float) -> list[_Scored]:
        if not cands:
            return []
        best = max(c.rrf for c in cands) or 1.0
        most = max(c.memory.access_count for c in cands)
        w_rel, w_pri, w_rec, w_freq = self.weights
        out = []
        for c in cands:
            m = c.memory
            rel = c.rrf / best
            last = (m.last_accessed_at or m.created_at).timestamp()
            age_days = max(0.0, (now - last) / 86400)
            recency = math.exp(-age_days / self.recency_days)
            freq = math.log1p(m.access_count) / math.log1p(most) if most > 0 else 0.0
            score = w_rel * rel + w_pri * m.priority + w_rec * recency + w_freq * freq
            ranks = []
            if c.semantic_rank:
                ranks.append(f"semantic #{c.semantic_rank}")
            if c.keyword_rank:
                ranks.append(f"keyword #{c.keyword_rank}")
            if not ranks:
                ranks.append(
                    "symbolic match" if m.memory_type is MemoryType.PLAINTEXT
                    else "from a pack that answered"
                )
            why = (f"score {score:.3f} ({', '.join(ranks)}; priority {m.priority:.2f}; "
                   f"used {m.access_count}x, last {age_days:.1f} days ago)")
            out.append(_Scored(c, score, why))
        out.sort(key=lambda s: (-s.score, s.cand.memory.id))
        return out

    @staticmethod
    def _model_problem(m: Memory, fp: ModelFingerprint | None) -> str | None:
        kind = "adapter" if m.memory_type is MemoryType.PARAMETER else "KV cache"
        if fp is None:
            return f"{kind} needs a running model; none was given"
        if m.fingerprint is None:
            return f"{kind} carries no model fingerprint"
        bad = m.fingerprint.mismatches(fp)
        if bad:
            return (f"{kind} is for {m.fingerprint.model_id}, the running model is {fp.model_id} "
                    f"(different {', '.join(bad)})")
        return None

    def _blob_problem(self, m: Memory, cubes: CubePayloads) -> tuple[str, str] | None:
        """(code, reason) when a cube's cached payloads (each chunk of a chunked cache) cannot
        be used: not fetched, or altered in the cache since install (re-hashed once per
        process; refused)."""
        cache = BlobCache(self.engine.home)
        for media, sha, _ in cubes.of(m):
            if not cache.has(sha):
                return ("plan.blob_missing",
                        f"{media} {sha[:12]}… was not fetched (memos install PACK --all)")
            try:
                cache.checked_path(sha)
            except CacheError as exc:
                return exc.code, exc.message
        return None

    def _files(self, m: Memory) -> dict[str, str]:
        cache = BlobCache(self.engine.home)
        return {
            media: str(cache.blob_path(sha)) for media, sha in m.payloads.items() if cache.has(sha)
        }

    def _blob(self, m: Memory, kind: str) -> str | None:
        cache = BlobCache(self.engine.home)
        for media, sha in m.payloads.items():
            if kind in media and cache.has(sha):
                return str(cache.blob_path(sha))
        return None

    def _form(
        self, m: Memory, tokens: int, fp: ModelFingerprint | None, profile: LatencyProfile | None,
        budget: Budget, kv_count: int,
    ) -> tuple[str, float | None, str, KVCacheRef | None]:
        est_plain = tokens / profile.prefill_tokens_per_s if profile else None
        kv = kv_cache_for(self.engine, m.id, fp) if fp is not None else None
        if kv is None:
            return "plaintext", est_plain, f"plaintext snippet ({tokens} tokens)", None
        est_kv = None
        if profile:
            est_kv = kv.size / profile.kv_load_bytes_per_s + profile.kv_fixed_overhead_s
        if budget.latency_s is None:
            return "plaintext", est_plain, (
                f"plaintext ({tokens} tokens): no latency budget, so the "
                "composable form is used although a KV cache exists"), None
        if kv_count >= budget.max_kv_caches:
            return "plaintext", est_plain, (f"plaintext ({tokens} tokens): the plan already uses "
                                            f"{budget.max_kv_caches} KV cache(s)"), None
        if est_kv is not None and est_plain is not None and est_kv < est_plain:
            return "activation", est_kv, (
                f"KV cache: loads in ~{est_kv * 1000:.1f} ms vs ~{est_plain * 1000:.1f} ms "
                f"prefill of {tokens} tokens, within the latency budget"), kv
        return "plaintext", est_plain, (
            f"plaintext: prefill (~{(est_plain or 0) * 1000:.1f} ms) is not slower "
            f"than loading the KV cache (~{(est_kv or 0) * 1000:.1f} ms)"), None
