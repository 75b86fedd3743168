"""What a compressed KV encoding costs in quality, measured when a pack is built.

:func:`encode_and_measure` re-encodes a freshly built (``raw``) KV payload in
the requested encoding (:func:`.kv_codec.transcode_kv`), then answers a few
held-out probe questions, which are not part of the memories, with both
caches: the share of probes whose first :data:`PROBE_TOKENS` greedy tokens
are identical and the largest difference of the first token's logits. The
result (and ``bytes_per_token``: keys, values and scales per cached token, the
file's JSON header left out) goes into the activation cube's ``kv`` field of the manifest (signed
with it), so an installer or a person can judge the encoding before using it::

    "kv": {"encoding": "int8", "scales": "per-token", "bytes_per_token": 11897,
           "quality": {"probes": 3, "tokens": 16, "identical": 3, "max_logit_diff": 0.02}}

The fingerprint binding does not change with the encoding (the header keeps
the model's fingerprint digest; SPEC 4.2.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .causal_lm import LoadedModel, greedy_generate
from .kv import load_kv, template_for
from .kv_codec import transcode_kv
from .kv_compose import compose_kv

__all__ = ["PROBES", "PROBE_TOKENS", "encode_and_measure"]

PROBE_TOKENS = 16
PROBES = (
    "What do these memories say, in one sentence?",
    "Which names or numbers appear in the memories?",
    "What is the first memory about?",
)


def _tensor_bytes(path: Path) -> int:
    """Bytes of keys, values and scales (the file less its JSON header and token ids)."""
    from protocol import KV_INPUT_IDS, read_safetensors_header

    with open(path, "rb") as fh:
        header = read_safetensors_header(fh, path.stat().st_size)
    return sum(t.end - t.start for t in header.tensors.values() if t.name != KV_INPUT_IDS)


def encode_and_measure(lm: LoadedModel, path: Path, encoding: str) -> dict[str, Any] | None:
    """Re-encode the ``raw`` payload at ``path`` in place; the manifest's ``kv`` field.

    None for ``raw`` (nothing to re-encode or measure).
    """
    path = Path(path)
    if encoding == "raw":
        return None
    raw = load_kv(path, lm)
    tmp = path.with_name(f".{path.name}.{encoding}")
    transcode_kv(path, tmp, encoding)
    small = load_kv(tmp, lm)
    tpl = template_for(lm, raw.template)
    identical, worst = 0, 0.0
    for probe in PROBES:
        ids = [*raw.input_ids, *lm.encode(tpl.query_text(probe), add_special_tokens=False)]
        tokens, logits = [], []
        for kv in (raw, small):
            cache = compose_kv(lm, [kv]).to_cache(lm)
            with torch.no_grad():
                logits.append(
                    lm.model(
                        input_ids=torch.tensor([ids[kv.num_tokens :]], device=lm.device),
                        cache=cache,
                        use_cache=True,
                        logits_to_keep=1,
                    ).logits[0, -1]
                )
            out = greedy_generate(
                lm, ids, cache=compose_kv(lm, [kv]).to_cache(lm), max_new_tokens=PROBE_TOKENS
            )
            tokens.append(out.tokens)
        identical += tokens[0] == tokens[1]
        worst = max(worst, float((logits[0] - logits[1]).abs().max()))
    tmp.replace(path)
    field: dict[str, Any] = {
        "encoding": encoding,
        "bytes_per_token": round(_tensor_bytes(path) / raw.num_tokens),
        "quality": {
            "probes": len(PROBES),
            "tokens": PROBE_TOKENS,
            "identical": identical,
            "max_logit_diff": round(worst, 6),
        },
    }
    if encoding == "int8":
        field["scales"] = "per-token"
    return field
