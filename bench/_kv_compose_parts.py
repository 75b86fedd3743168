"""Helpers of bench/kv_compose.py, kept apart so each module stays short.

* :func:`installed_source`: a pack signed and installed into a scratch engine
  home, opened as ``memos generate`` opens an installed pack (its KV payload is
  the blob cache's file);
* :func:`answers_of`: greedy answers for many prompts, cheap when they agree
  with reference answers (one teacher-forced pass instead of step-by-step decoding).

Not a benchmark by itself; not imported by the runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from protocol import MemoryRecord, SigningKey, pack_directory
from runtime.models.causal_lm import LoadedModel, greedy_generate
from runtime.models.generation import MemorySource
from runtime.models.packs import build_model_pack_source, open_model_memory

__all__ = ["answers_of", "installed_source"]


def installed_source(lm: LoadedModel, texts: list[str], work: Path) -> MemorySource:
    """A pack of ``texts`` (plaintext + KV cube) signed, installed into a scratch engine home
    from its file, and opened as the engine does: payloads are the blob cache's files."""
    from runtime.engine.embedding import HashEmbedder
    from runtime.engine.engine import Engine
    from runtime.install import Installer

    records = [MemoryRecord(id=f"f{i}", text=t) for i, t in enumerate(texts)]
    source = build_model_pack_source(lm, records, work / "two-k", name="bench/two-k",
                                     with_lora=False)  # fmt: skip
    key = SigningKey.generate()
    pack_directory(source, work / "two-k.memcube", keys=[key])
    engine = Engine(work / "home", embedder=HashEmbedder(), maintain_every=None)
    try:
        installer = Installer(engine.home, engine)
        installer.install_file(work / "two-k.memcube", trusted_keys=[key.public_key],
                               everything=True)  # fmt: skip
        view = installer.installed_view("bench/two-k", work / "view")
    finally:
        engine.close()
    return MemorySource.from_model_memory(open_model_memory(view))


def answers_of(lm: LoadedModel, make_cache: Callable[[], Any], prompts: list[list[int]], k: int,
               hints: Sequence[Sequence[int]] = ()) -> list[tuple[int, ...]]:  # fmt: skip
    """Greedy answers (``k`` tokens, or up to EOS) of every prompt over a fresh cache each.

    With ``hints`` (the reference answers), a prompt's query and its hint run as one
    teacher-forced pass: greedy decoding yields the hint for as long as every argmax
    equals the next hint token, so only the tokens after a divergence are decoded one
    by one (the cache cropped back to it). Same tokens as step-by-step greedy decoding
    up to float rounding, at about the cost of one prompt forward when they agree.
    """
    out = []
    for j, ids in enumerate(prompts):
        cache, hint = make_cache(), list(hints[j][: k - 1]) if hints else []
        if not hint:
            out.append(greedy_generate(lm, ids, cache=cache, max_new_tokens=k).tokens)
            continue
        cached = cache.get_seq_length()
        step = torch.tensor([[*ids[cached:], *hint]], device=lm.device)
        with torch.no_grad():
            res = lm.model(input_ids=step, cache=cache, use_cache=True,
                           logits_to_keep=len(hint) + 1)  # fmt: skip
        got: list[int] = []
        for i, token in enumerate(res.logits[0].argmax(-1).tolist()):
            got.append(int(token))
            if token in lm.eos_token_ids or len(got) == k or i == len(hint) or token != hint[i]:
                break
        if got[-1] not in lm.eos_token_ids and len(got) < k:  # diverged: decode the rest
            res.cache.crop(len(ids) + len(got) - 1)
            more = greedy_generate(lm, [*ids, *got], cache=res.cache, max_new_tokens=k - len(got))
            got += more.tokens
        out.append(tuple(got))
    return out
