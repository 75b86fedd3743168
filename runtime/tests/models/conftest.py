"""Tiny random causal LMs and a tiny tokenizer, built in-process (no downloads)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see runtime/models/causal_lm.py
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from runtime.models.causal_lm import LoadedModel  # noqa: E402

SENTENCES = [
    "the cat sat on the mat",
    "memories are stored in cubes and packs",
    "the capital of france is paris",
    "alice likes green tea in the morning",
    "bob repairs old bicycles on sundays",
    "question answer what where who is",
]


def _tokenizer(extra_special: tuple[str, ...] = ()) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<s>", "</s>", *extra_special],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator(SENTENCES, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


@pytest.fixture(scope="session")
def make_tokenizer() -> Callable[..., Any]:
    """``make_tokenizer(extra_special=())``: a tiny byte-level BPE tokenizer."""
    return _tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    return _tokenizer()


@pytest.fixture(scope="session")
def make_lm(tiny_tokenizer: Any) -> Callable[..., LoadedModel]:
    """Build a tiny Llama: ``make_lm(seed=0, layers=2, tokenizer=None, **config)``."""

    def make(seed: int = 0, layers: int = 2, tokenizer: Any = None, **config: Any) -> LoadedModel:
        from transformers import LlamaConfig, LlamaForCausalLM

        tok = tokenizer if tokenizer is not None else tiny_tokenizer
        settings: dict[str, Any] = dict(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        )
        settings.update(config)
        torch.manual_seed(seed)
        model = LlamaForCausalLM(LlamaConfig(**settings))
        return LoadedModel.from_parts(model, tok, f"tiny-llama-{seed}-{layers}")

    return make


@pytest.fixture(scope="session")
def tiny_lm(make_lm: Callable[..., LoadedModel]) -> LoadedModel:
    return make_lm()


@pytest.fixture(scope="session")
def other_lm(make_lm: Callable[..., LoadedModel]) -> LoadedModel:
    """Another model: one more layer and another RoPE base."""
    return make_lm(seed=1, layers=3, rope_theta=5000.0)


MEMORIES = ["alice likes green tea in the morning", "bob repairs old bicycles on sundays"]


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_lm: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny model saved as a local model folder (safetensors + tokenizer files)."""
    folder = tmp_path_factory.mktemp("tiny-model")
    tiny_lm.model.save_pretrained(folder)
    tiny_lm.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def other_model_dir(other_lm: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("other-model")
    other_lm.model.save_pretrained(folder)
    other_lm.tokenizer.save_pretrained(folder)
    return folder
