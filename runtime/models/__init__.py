"""runtime.models: transformers/torch models, fingerprints, KV-cache and LoRA memory.

Importing this package does not import torch or transformers: the errors and
fingerprint checks are torch-free, and the model-bound names below are
imported on first use. Submodules:

* :mod:`.backend`  load a causal LM (local folder, GGUF, SmolLM2), greedy generation
* :mod:`.kv`       activation memory: KV-cache payloads (build, check, load, inject)
* :mod:`.lora`     parameter memory: LoRA adapters (attach, detach, consolidate)
* :mod:`.packs`    pack sources holding plaintext, activation and parameter cubes
* :mod:`.engine_backend`  the engine's ActivationBackend (``TransformersBackend``)
* :mod:`.sdk`      generation with memory injected: from a pack, texts or a scheduler plan
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
    "GenerationResult": "backend",
    "LoadedModel": "backend",
    "greedy_generate": "backend",
    "load_model": "backend",
    "load_smollm2": "backend",
    "LoadedKV": "kv",
    "build_kv": "kv",
    "combine_kv": "kv",
    "generate_with_kv": "kv",
    "generate_with_prefix": "kv",
    "load_kv": "kv",
    "attach_adapter": "lora",
    "consolidate": "lora",
    "detach_adapter": "lora",
    "MemoryGeneration": "sdk",
    "MemorySource": "sdk",
    "generate_with_memory": "sdk",
    "generate_with_plan": "sdk",
    "TransformersBackend": "engine_backend",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
