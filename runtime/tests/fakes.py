"""Fakes behind the engine's interfaces (no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from protocol import KV_INPUT_IDS, ModelFingerprint, fingerprint_digest
from runtime.engine.interfaces import KVBuild, LatencyProfile


def fingerprint(config: str = "a" * 64, model_id: str = "tiny/model") -> ModelFingerprint:
    return ModelFingerprint(
        architecture="LlamaForCausalLM", model_id=model_id, config_sha256=config,
        tokenizer_sha256="b" * 64, dtype="float32", num_layers=2, num_kv_heads=1, head_dim=4,
    )


@dataclass
class FakeBackend:
    fp: ModelFingerprint = field(default_factory=fingerprint)
    profile: LatencyProfile = field(default_factory=lambda: LatencyProfile(1000.0, 1e9, 0.0))
    built: list[list[str]] = field(default_factory=list)
    pickle_instead: bool = False

    def fingerprint(self) -> ModelFingerprint:
        return self.fp

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def build_kv(self, texts: Sequence[str], out_dir: Path) -> KVBuild:
        self.built.append(list(texts))
        n = sum(self.count_tokens(t) for t in texts)
        path = out_dir / "kv.safetensors"
        if self.pickle_instead:
            path.write_bytes(b"\x80\x04K\x01.")
        else:
            tensors = {KV_INPUT_IDS: np.arange(n, dtype=np.int64)}
            for layer in range(2):
                for part in ("key", "value"):
                    tensors[f"layers.{layer}.{part}"] = np.zeros((1, 1, n, 4), dtype=np.float32)
            meta = {"mip.kind": "kv-cache", "mip.fingerprint": fingerprint_digest(self.fp)}
            save_file(tensors, str(path), metadata=meta)
        return KVBuild(path, n, self.fp)

    def latency_profile(self) -> LatencyProfile:
        return self.profile
