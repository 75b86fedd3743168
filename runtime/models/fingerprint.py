"""Model fingerprints as MIP specifies them, and the compatibility check.

A :class:`protocol.ModelFingerprint` names the exact model a KV cache or a
LoRA adapter belongs to. The runtime computes it from a loaded model:

* ``architecture``: ``config.architectures[0]``, else the model class name
  (GGUF-loaded configs carry no ``architectures``);
* ``model_id``: the hub id or local folder (plus ``#file.gguf``) it came from
  (a label: not compared);
* ``config_sha256``: :func:`config_digest` of the config as transformers would
  write ``config.json`` (``to_json_string(use_diff=True)``, with
  ``architectures`` set to the model class when missing, as saving does),
  volatile keys dropped;
* ``tokenizer_sha256``: :func:`tokenizer_digest` of ``get_vocab()`` and the
  seven standard special-token roles (:data:`SPECIAL_TOKEN_ROLES`);
* ``dtype``, ``num_layers``, ``num_kv_heads``, ``head_dim`` from the model;
* ``weights_sha256`` (MIP 1.1): :func:`checkpoint_weights_digest` of the
  checkpoint files in the model folder, when the model was loaded from one
  (None for a model built in memory or resolved from a hub id, which then
  cannot take artefacts bound to weights).

This module imports neither torch nor transformers: it works on plain values,
so the engine and CLI can check compatibility without loading a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from protocol import ModelFingerprint, config_digest, tokenizer_digest, weights_digest
from runtime.cache import sha256_file

from .errors import FingerprintMismatchError

__all__ = [
    "SPECIAL_TOKEN_ROLES",
    "check_fingerprint",
    "checkpoint_files",
    "checkpoint_weights_digest",
    "make_fingerprint",
]

#: Special-token roles hashed into ``tokenizer_sha256`` (value: token string or null).
SPECIAL_TOKEN_ROLES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


def make_fingerprint(
    *,
    architecture: str,
    model_id: str,
    config: Mapping[str, Any],
    vocab: Mapping[str, int],
    special_tokens: Mapping[str, str | None],
    dtype: str,
    num_layers: int,
    num_kv_heads: int,
    head_dim: int,
    weights_sha256: str | None = None,
) -> ModelFingerprint:
    """Build a fingerprint from plain values (see the module docstring for each field)."""
    return ModelFingerprint(
        weights_sha256=weights_sha256,
        architecture=architecture,
        model_id=model_id,
        config_sha256=config_digest(config),
        tokenizer_sha256=tokenizer_digest(vocab, special_tokens),
        dtype=dtype,
        num_layers=num_layers,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
    )


def check_fingerprint(expected: ModelFingerprint, running: ModelFingerprint, *, what: str) -> None:
    """Raise :class:`FingerprintMismatchError` unless ``expected`` fits the running model.

    ``what`` names the artefact for the message (e.g. "KV cache kv.safetensors").
    """
    fields = expected.mismatches(running)
    if fields:
        raise FingerprintMismatchError(
            what, fields, expected_model=expected.model_id, running_model=running.model_id
        )


def checkpoint_files(folder: Path, gguf_file: str | None = None) -> list[Path]:
    """The files a model in ``folder`` has its weights from (empty when none are known).

    The named ``.gguf`` file; else every ``*.safetensors`` file (one, or the
    shards of a sharded checkpoint), which transformers prefers; else every
    ``*.bin`` file.
    """
    folder = Path(folder)
    if gguf_file:
        return [folder / gguf_file]
    for pattern in ("*.safetensors", "*.bin"):
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if found:
            return found
    return []


def checkpoint_weights_digest(folder: Path, gguf_file: str | None = None) -> str | None:
    """``weights_sha256`` (MIP 1.1 section 5.2) of the checkpoint in ``folder``, or None."""
    files = checkpoint_files(folder, gguf_file)
    if not files:
        return None
    return weights_digest({path.name: sha256_file(path)[0] for path in files})
