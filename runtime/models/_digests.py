"""The fingerprint digests, from the protocol library when it exports them.

TODO(protocol): ``config_digest`` and ``tokenizer_digest`` are being added to
``protocol/__init__.py``; once they are exported this shim only re-exports
them. Until then it uses ``protocol.fingerprint`` when present, else a local
copy of the same definition (RFC 8785 sha256; volatile config keys removed at
any depth; tokenizer = ``{"special_tokens", "vocab"}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from protocol import canonical_sha256

__all__ = ["config_digest", "tokenizer_digest"]

_VOLATILE = frozenset(
    {"transformers_version", "_name_or_path", "torch_dtype", "dtype", "_commit_hash"}
)


def _strip(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, (list, tuple)):
        return [_strip(v) for v in value]
    return value


def _local_config_digest(config: Mapping[str, Any]) -> str:
    return canonical_sha256(_strip(config))


def _local_tokenizer_digest(
    vocab: Mapping[str, int], special_tokens: Mapping[str, str | None]
) -> str:
    return canonical_sha256({"special_tokens": dict(special_tokens), "vocab": dict(vocab)})


def _resolve() -> tuple[
    Callable[[Mapping[str, Any]], str],
    Callable[[Mapping[str, int], Mapping[str, str | None]], str],
]:
    import importlib

    for module_name in ("protocol", "protocol.fingerprint"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cfg, tok = getattr(module, "config_digest", None), getattr(module, "tokenizer_digest", None)
        if callable(cfg) and callable(tok):
            return cfg, tok
    return _local_config_digest, _local_tokenizer_digest


config_digest, tokenizer_digest = _resolve()
