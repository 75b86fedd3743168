"""The digests that identify a model in a MIP model fingerprint.

A KV cache or a LoRA adapter is only meaningful for the exact model that made
it. A fingerprint (:class:`protocol.manifest.ModelFingerprint`) names that
model by shapes and by two digests defined here, so that every implementation
computes the same hex strings from the same model:

* ``config_sha256`` = :func:`config_digest`: sha256 of the RFC 8785 canonical
  JSON of the model's configuration object (Hugging Face ``config.json`` as a
  dict) with the volatile keys :data:`VOLATILE_CONFIG_KEYS` removed from every
  object, at any depth. ``architectures`` is kept.
* ``tokenizer_sha256`` = :func:`tokenizer_digest`: sha256 of the canonical JSON
  of ``{"special_tokens": {...}, "vocab": {...}}``, ``vocab`` mapping every
  token string to its id and ``special_tokens`` mapping each special-token role
  (``bos_token``, ``eos_token``, ``pad_token``, ``unk_token``, ...) to its
  token string or null.

* ``weights_sha256`` (MIP 1.1, optional) = :func:`weights_digest`: sha256 of
  the canonical JSON of ``{"files": {name: sha256}}`` over the checkpoint files
  the weights are read from (``model.safetensors``, every shard of a sharded
  checkpoint, or the one ``.gguf`` file), by file name. A digest of the
  checkpoint as distributed: the same weights re-sharded or re-saved differ
  (a refusal, never a false match), and any implementation can compute it
  without a deep-learning framework.

Pure functions over plain mappings.

Not here: loading a model or tokenizer and hashing its files (the runtime's
job, runtime.models); comparing fingerprints
(:meth:`protocol.manifest.ModelFingerprint.mismatches`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .canonical import canonical_sha256
from .errors import ManifestError

__all__ = ["VOLATILE_CONFIG_KEYS", "config_digest", "tokenizer_digest", "weights_digest"]

#: Keys that change with the library version or the load call, not the model.
VOLATILE_CONFIG_KEYS: frozenset[str] = frozenset(
    {"transformers_version", "_name_or_path", "torch_dtype", "dtype", "_commit_hash"}
)


def _strip_volatile(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in VOLATILE_CONFIG_KEYS}
    if isinstance(value, (list, tuple)):
        return [_strip_volatile(v) for v in value]
    return value


def config_digest(config: Mapping[str, Any]) -> str:
    """``config_sha256`` of a fingerprint.

    The hex sha256 of the canonical config, volatile keys removed.

    Raises ManifestError (``manifest.not_canonicalizable``) for values JSON
    cannot carry (NaN, integers beyond 2**53, non-string keys).
    """
    if not isinstance(config, Mapping):
        raise ManifestError(
            "a model config must be a JSON object", code="manifest.not_canonicalizable"
        )
    return canonical_sha256(_strip_volatile(config))


def tokenizer_digest(vocab: Mapping[str, int], special_tokens: Mapping[str, str | None]) -> str:
    """``tokenizer_sha256`` of a fingerprint.

    The hex sha256 of the canonical ``{"special_tokens", "vocab"}`` object.
    """
    for token, index in vocab.items():
        if not isinstance(token, str) or isinstance(index, bool) or not isinstance(index, int):
            raise ManifestError(
                "a vocab maps token strings to integer ids", code="manifest.not_canonicalizable"
            )
    for role, special in special_tokens.items():
        if not isinstance(role, str) or not (special is None or isinstance(special, str)):
            raise ManifestError(
                "special tokens map role names to token strings or null",
                code="manifest.not_canonicalizable",
            )
    return canonical_sha256({"special_tokens": dict(special_tokens), "vocab": dict(vocab)})


_HEX64 = re.compile(r"[0-9a-f]{64}")


def weights_digest(files: Mapping[str, str]) -> str:
    """``weights_sha256`` of a fingerprint from ``{checkpoint file name: its hex sha256}``.

    Names are the files' names in the model folder (no directories); at least
    one file. Raises ManifestError (``manifest.not_canonicalizable``) otherwise.
    """
    if not files:
        raise ManifestError(
            "a weights digest needs at least one checkpoint file",
            code="manifest.not_canonicalizable",
        )
    for name, digest in files.items():
        if not isinstance(name, str) or not name or "/" in name or "\\" in name:
            raise ManifestError(
                f"checkpoint file names are bare file names, got {name!r}",
                code="manifest.not_canonicalizable",
            )
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise ManifestError(
                f"{name}: expected a lowercase hex sha256", code="manifest.not_canonicalizable"
            )
    return canonical_sha256({"files": dict(files)})
