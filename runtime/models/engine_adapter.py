"""The engine's :class:`runtime.engine.interfaces.ActivationBackend`, backed by transformers.

:class:`TransformersBackend` wraps a :class:`LoadedModel` so the engine can
promote hot plaintext memories to KV caches for the running model and plan
under a latency budget, without importing torch itself. ``build_kv`` renders
the texts with the same prompt template (and order) as the plaintext prefix
would use, so a promoted cache equals the plaintext prompt's prefix.

``latency_profile`` is measured once on this machine (a short prefill, and
loading a KV cache of the same text), unless a profile is given.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from protocol import ModelFingerprint
from runtime.engine.interfaces import KVBuild, LatencyProfile

from .causal_lm import LoadedModel, greedy_generate
from .kv import PromptTemplate, build_kv, load_kv

__all__ = ["KV_FILE_NAME", "TransformersBackend"]

KV_FILE_NAME = "kv.safetensors"

_PROBE = (
    "The weekly team meeting moves to Thursday at ten; notes go to the shared folder, "
    "and the release checklist is reviewed by whoever is on call that week."
)


class TransformersBackend:
    """ActivationBackend for a transformers causal LM (see the module docstring)."""

    def __init__(
        self,
        lm: LoadedModel,
        *,
        template: PromptTemplate | str | None = None,
        profile: LatencyProfile | None = None,
    ) -> None:
        self.lm = lm
        self.template = template
        self._profile = profile

    def fingerprint(self) -> ModelFingerprint:
        return self.lm.fingerprint

    def count_tokens(self, text: str) -> int:
        return self.lm.count_tokens(text)

    def build_kv(self, texts: Sequence[str], out_dir: Path) -> KVBuild:
        out = Path(out_dir) / KV_FILE_NAME
        info = build_kv(self.lm, list(texts), out, template=self.template)
        return KVBuild(path=info.path, token_count=info.num_tokens, fingerprint=info.fingerprint)

    def latency_profile(self) -> LatencyProfile:
        if self._profile is None:
            self._profile = self._measure()
        return self._profile

    def _measure(self, work: Path | None = None) -> LatencyProfile:
        import tempfile

        lm = self.lm
        text = " ".join([_PROBE] * 4)
        ids = lm.encode(text)
        greedy_generate(lm, ids[:8], max_new_tokens=1)  # warm-up
        start = time.perf_counter()
        greedy_generate(lm, ids, max_new_tokens=1)
        prefill_s = time.perf_counter() - start
        with tempfile.TemporaryDirectory(prefix="memos-profile-", dir=work) as tmp:
            tiny = build_kv(lm, [_PROBE[:40]], Path(tmp) / "tiny.safetensors", template="plain")
            big = build_kv(lm, [text], Path(tmp) / "big.safetensors", template="plain")
            fixed = _load_seconds(lm, tiny.path)
            total = _load_seconds(lm, big.path)
        per_byte = max(total - fixed, 1e-6) / max(big.size - tiny.size, 1)
        return LatencyProfile(
            prefill_tokens_per_s=len(ids) / max(prefill_s, 1e-6),
            kv_load_bytes_per_s=1.0 / per_byte,
            kv_fixed_overhead_s=fixed,
        )


def _load_seconds(lm: LoadedModel, path: Path) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        load_kv(path, lm).to_cache(lm)
        best = min(best, time.perf_counter() - start)
    return best
