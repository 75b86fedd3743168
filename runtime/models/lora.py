"""Parameter memory: PEFT LoRA adapters as MIP payloads.

Payload
    A parameter cube carries ``adapter_config.json`` (the lora-config schema:
    PEFT's own config, ``peft_type = LORA``) and ``adapter_model.safetensors``
    (only ``lora_`` tensors, PEFT's key names). Adapters written here also put
    the base model's fingerprint in the safetensors ``__metadata__``
    (``mip.kind = lora``, ``mip.fingerprint`` digest, full ``memos.fingerprint``),
    so a loose adapter folder still knows its base model; in a pack the cube's
    ``model`` field is authoritative and must match that digest.

Attach / detach
    :func:`attach_adapter` reads the config and the safetensors header first,
    checks the fingerprint against the running model and refuses a mismatch
    (``model.fingerprint_mismatch``) before anything touches the model. The
    weights are read with ``safe_open`` and given to peft with
    ``set_peft_model_state_dict``: peft never opens a file itself, so no
    ``adapter_model.bin`` (pickle) can ever be loaded. :func:`detach_adapter`
    unloads the LoRA layers and restores the original modules, so outputs are
    exactly those of the base model again. One adapter at a time.

Consolidate ("Mem-training")
    :func:`consolidate` trains a small LoRA (default r=8 on q_proj/v_proj) on
    plaintext memories with the causal-LM loss, for a few steps on the CPU,
    then writes the two payload files. The base model is left as it was.

Not here: KV caches (:mod:`.kv`), packs (:mod:`.packs`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from protocol import (
    MIPError,
    ModelFingerprint,
    canonical_bytes,
    fingerprint_digest,
    parse_json,
    read_safetensors_header,
)

from .causal_lm import LoadedModel
from .errors import AdapterError
from .fingerprint import check_fingerprint

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "AdapterFiles",
    "ConsolidateResult",
    "attach_adapter",
    "consolidate",
    "detach_adapter",
    "read_adapter",
]

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_MAX_CONFIG_BYTES = 1024 * 1024
# Names that announce a pickle; content is checked too (the safetensors header parser refuses them).
_PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})


@dataclass(frozen=True)
class AdapterFiles:
    """A checked adapter on disk: its config, weights file and base-model fingerprint."""

    config: dict[str, Any]
    weights: Path
    fingerprint: ModelFingerprint
    tensor_names: tuple[str, ...]


def _bad(message: str) -> AdapterError:
    return AdapterError(message, code="model.adapter_invalid")


def read_adapter(
    config_path: Path, weights_path: Path, *, expected: ModelFingerprint | None = None
) -> AdapterFiles:
    """Check an adapter's two files without loading tensors (no torch work, no pickle).

    ``expected`` is the cube's fingerprint from a manifest; without it the
    fingerprint recorded in the weights' metadata is used.
    """
    config_path, weights_path = Path(config_path), Path(weights_path)
    if weights_path.suffix.lower() in _PICKLE_SUFFIXES:
        raise _bad(f"adapter weights must be safetensors, not {weights_path.name} (pickle)")
    if config_path.stat().st_size > _MAX_CONFIG_BYTES:
        raise _bad(f"{config_path.name} is too large")
    try:
        config = parse_json(config_path.read_bytes(), what=config_path.name)
        with open(weights_path, "rb") as fh:
            header = read_safetensors_header(fh, weights_path.stat().st_size)
    except MIPError as exc:
        raise _bad(f"invalid adapter: {exc}") from exc
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise _bad(f"{config_path.name} is not a LoRA adapter config (peft_type must be LORA)")
    names = tuple(sorted(header.tensors))
    if not names or any("lora_" not in n for n in names):
        raise _bad("adapter weights must hold only LoRA tensors (names containing 'lora_')")
    digest = header.metadata.get("mip.fingerprint")
    if expected is None:
        try:
            expected = ModelFingerprint.from_dict(json.loads(header.metadata["memos.fingerprint"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise _bad("adapter weights name no base model; pass the cube's fingerprint") from exc
    if digest is not None and digest != fingerprint_digest(expected):
        raise AdapterError(
            "adapter weights name another base model than their cube",
            code="model.adapter_fingerprint_digest",
        )
    return AdapterFiles(config, weights_path, expected, names)


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    # peft asks transformers for a property that transformers 5.x deprecated; not ours to fix.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
        )
        yield


def _lora_config(config: dict[str, Any]) -> Any:
    from peft import LoraConfig

    known = {f.name for f in dataclasses.fields(LoraConfig)}
    kwargs = {k: v for k, v in config.items() if k in known and k != "peft_type"}
    try:
        return LoraConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _bad(f"adapter config is not a valid LoraConfig: {exc}") from exc


def attach_adapter(
    lm: LoadedModel,
    config_path: Path,
    weights_path: Path,
    *,
    expected: ModelFingerprint | None = None,
    name: str = "memory",
) -> AdapterFiles:
    """Attach a LoRA adapter to ``lm`` after checking it was made for this base model."""
    files = read_adapter(config_path, weights_path, expected=expected)
    check_fingerprint(files.fingerprint, lm.fingerprint, what=f"LoRA adapter {weights_path.name}")
    if lm.adapter is not None:
        raise AdapterError(
            f"adapter {lm.adapter!r} is already attached; detach it first",
            code="model.adapter_state",
        )
    from peft import PeftModel, set_peft_model_state_dict

    lora_config = _lora_config(files.config)
    lm._state["requires_grad"] = _grad_flags(lm.model)
    with safe_open(str(files.weights), framework="pt", device="cpu") as fh:
        state = {key: fh.get_tensor(key).to(lm.device) for key in files.tensor_names}
    with _quiet_peft():
        wrapped = PeftModel(lm.model, lora_config, adapter_name=name)
    result = set_peft_model_state_dict(wrapped, state, adapter_name=name)
    unexpected = list(getattr(result, "unexpected_keys", []))
    missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
    if unexpected or missing:
        lm.model = wrapped.unload()
        _restore_grad_flags(lm.model, lm._state.pop("requires_grad"))
        raise _bad(
            f"adapter tensors do not fit the model "
            f"(unexpected {unexpected[:3]}, missing {missing[:3]})"
        )
    wrapped.eval()
    lm.model = wrapped
    lm.adapter = name
    return files


def detach_adapter(lm: LoadedModel) -> None:
    """Remove the attached adapter; the base model's modules are restored unchanged."""
    if lm.adapter is None:
        raise AdapterError("no adapter is attached", code="model.adapter_state")
    lm.model = lm.model.unload()
    lm.model.eval()
    _restore_grad_flags(lm.model, lm._state.pop("requires_grad", {}))
    lm.adapter = None


def _grad_flags(model: Any) -> dict[str, bool]:
    return {name: p.requires_grad for name, p in model.named_parameters()}


def _restore_grad_flags(model: Any, flags: dict[str, bool]) -> None:
    # peft freezes the base weights; put back what the model had.
    for name, param in model.named_parameters():
        if name in flags:
            param.requires_grad_(flags[name])


# --------------------------------------------------------------------------- consolidate


@dataclass(frozen=True)
class ConsolidateResult:
    config_path: Path
    weights_path: Path
    losses: tuple[float, ...]
    fingerprint: ModelFingerprint
    steps: int


def consolidate(
    lm: LoadedModel,
    texts: Sequence[str],
    out_dir: Path,
    *,
    steps: int = 30,
    rank: int = 8,
    alpha: int = 16,
    learning_rate: float = 2e-3,
    max_tokens: int = 128,
    target_modules: Sequence[str] = ("q_proj", "v_proj"),
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> ConsolidateResult:
    """Train a small LoRA on ``texts`` (one memory per step, cycling) and write its payload files.

    The base model is unchanged afterwards. ``progress(step, steps, loss)`` is
    called after each step.
    """
    lm.require_base("consolidate memories")
    if not texts:
        raise AdapterError("no memories to consolidate", code="model.adapter_empty")
    if steps < 1:
        raise AdapterError("steps must be at least 1", code="model.adapter_invalid")
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict

    eos = lm.tokenizer.eos_token or ""
    samples = [lm.encode(t + eos, add_special_tokens=True)[:max_tokens] for t in texts]
    samples = [s for s in samples if len(s) >= 2]
    if not samples:
        raise AdapterError("memories are too short to train on", code="model.adapter_empty")
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=list(target_modules),
        task_type="CAUSAL_LM",
    )
    losses: list[float] = []
    base = lm.model
    flags = _grad_flags(base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with _quiet_peft():
            wrapped = get_peft_model(base, config, adapter_name="consolidate")
    try:
        params = [p for p in wrapped.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=learning_rate)
        wrapped.train()
        with torch.enable_grad():
            for step in range(steps):
                ids = torch.tensor([samples[step % len(samples)]], device=lm.device)
                loss = wrapped(input_ids=ids, labels=ids).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
                if progress is not None:
                    progress(step + 1, steps, losses[-1])
        state = {
            k: v.detach().to("cpu").contiguous()
            for k, v in get_peft_model_state_dict(
                wrapped, adapter_name="consolidate", save_embedding_layers=False
            ).items()
        }
    finally:
        lm.model = wrapped.unload()
        lm.model.eval()
        _restore_grad_flags(lm.model, flags)
    return _write_adapter(lm, config, state, Path(out_dir), losses, steps)


def _write_adapter(
    lm: LoadedModel,
    config: Any,
    state: dict[str, torch.Tensor],
    out_dir: Path,
    losses: list[float],
    steps: int,
) -> ConsolidateResult:
    fingerprint = lm.fingerprint
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".adapter-") as tmp:
        config.save_pretrained(tmp)
        data = cast(dict[str, Any], json.loads(Path(tmp, ADAPTER_CONFIG).read_text("utf-8")))
        if isinstance(data.get("target_modules"), list):
            data["target_modules"] = sorted(data["target_modules"])  # sets have no stable order
        data["base_model_name_or_path"] = lm.model_id
        data["inference_mode"] = True
        config_tmp = Path(tmp, "config.json.tmp")
        config_tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", "utf-8")
        weights_tmp = Path(tmp, "weights.safetensors.tmp")
        metadata = {
            "format": "pt",
            "mip.kind": "lora",
            "mip.fingerprint": fingerprint_digest(fingerprint),
            "memos.fingerprint": canonical_bytes(fingerprint.to_dict()).decode("utf-8"),
        }
        save_file(state, str(weights_tmp), metadata=metadata)
        os.replace(config_tmp, out_dir / ADAPTER_CONFIG)
        os.replace(weights_tmp, out_dir / ADAPTER_WEIGHTS)
    return ConsolidateResult(
        out_dir / ADAPTER_CONFIG, out_dir / ADAPTER_WEIGHTS, tuple(losses), fingerprint, steps
    )
