"""runtime.models: transformers/torch models, fingerprints, KV-cache and LoRA memory.

Importing this package does not import torch or transformers: the errors and
fingerprint checks are torch-free, and the model-bound names below are
imported on first use. Submodules:

* :mod:`.causal_lm`       load a causal LM (local folder, GGUF, SmolLM2), greedy generation
* :mod:`.kv`              activation memory: KV-cache payloads (build, check, load, inject)
* :mod:`.kv_templates`    prompt templates: memories and a query as token ids
* :mod:`.kv_codec`        KV encodings: raw, fp16, int8 with per-token scales
* :mod:`.kv_compose`      several caches in one prompt: placement and selective recompute
* :mod:`.kv_quality`      the quality a compressed encoding costs, measured at build
* :mod:`.lora`            parameter memory: LoRA adapters (attach, detach, consolidate)
* :mod:`.packs`           pack sources holding plaintext, activation and parameter cubes
* :mod:`.engine_adapter`  the engine's ActivationBackend over a loaded model
                          (``TransformersBackend``)
* :mod:`.generation`      generation with memory injected: from a pack, texts or a plan

(:mod:`runtime.sdk` is the agent-facing ``MemOS``; this package is what it can run with.)
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    AdapterError,
    FingerprintMismatchError,
    KVCacheError,
    KVCombineRefusedError,
    ModelError,
    ModelLoadError,
)
from .fingerprint import check_fingerprint, make_fingerprint

__all__ = [
    "AdapterError",
    "FingerprintMismatchError",
    "GenerationResult",
    "KVCacheError",
    "KVCombineRefusedError",
    "LoadedKV",
    "LoadedModel",
    "MemoryGeneration",
    "MemorySource",
    "ModelError",
    "ModelLoadError",
    "TransformersBackend",
    "attach_adapter",
    "build_kv",
    "check_fingerprint",
    "combine_kv",
    "consolidate",
    "detach_adapter",
    "generate_with_kv",
    "generate_with_memory",
    "generate_with_plan",
    "generate_with_prefix",
    "greedy_generate",
    "load_kv",
    "load_model",
    "load_smollm2",
    "make_fingerprint",
]

_LAZY = {
    "GenerationResult": "causal_lm",
    "LoadedModel": "causal_lm",
    "greedy_generate": "causal_lm",
    "load_model": "causal_lm",
    "load_smollm2": "causal_lm",
    "LoadedKV": "kv",
    "build_kv": "kv",
    "combine_kv": "kv",
    "generate_with_kv": "kv",
    "generate_with_prefix": "kv",
    "load_kv": "kv",
    "attach_adapter": "lora",
    "consolidate": "lora",
    "detach_adapter": "lora",
    "MemoryGeneration": "generation",
    "MemorySource": "generation",
    "generate_with_memory": "generation",
    "generate_with_plan": "generation",
    "TransformersBackend": "engine_adapter",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
