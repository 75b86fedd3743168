"""Running an exported sentence encoder: Hugging Face ``tokenizers`` plus ONNX Runtime.

Why not torch for a query: a search query is a dozen tokens, and on a CPU most of
a torch forward pass at that size is the eager framework's per-operator overhead,
not arithmetic (all-MiniLM-L6-v2 on one thread: ~15 ms in torch, ~5 ms here on a
busy machine, vectors equal to cosine 0.99999). The graph already ends in the
model's pooling and normalisation (:mod:`.onnx_build` exports them), so one
``run`` returns finished vectors.

The session runs on one intra-op thread by default: on a loaded two-core machine
a parallel region waits for its slowest, descheduled thread (the reason the torch
path uses one thread for queries too). ``InferenceSession.run`` is thread-safe,
so one encoder serves every thread of a process.

Not here: building and checking the ONNX file (:mod:`.onnx_build`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import EncoderError

__all__ = ["ATTENTION_BUDGET", "OnnxSentenceEncoder"]

#: Texts x tokens^2 of one forward pass: 64 texts of 128 tokens (16 of 256).
ATTENTION_BUDGET = 64 * 128 * 128


class OnnxSentenceEncoder:
    """Texts to L2-normalised float32 rows, through an exported model and its tokenizer."""

    def __init__(
        self,
        model_file: Path,
        tokenizer_file: Path,
        *,
        max_length: int,
        dimension: int,
        threads: int = 1,
        batch_size: int = 64,
    ) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise EncoderError("encoder.unavailable", f"onnxruntime is not installed: {e}") from e
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no "removing initializer" chatter
        self._session: Any = ort.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._tokenizer: Any = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.no_padding()
        self._pad = int(self._tokenizer.token_to_id("[PAD]") or 0)
        normalizer = json.loads(self._tokenizer.to_str()).get("normalizer") or {}
        #: Whether the tokenizer lower-cases (BERT uncased): callers may fold case in keys.
        self.lowercase = bool(normalizer.get("lowercase", False))
        self.max_length = max_length
        self.dimension = dimension
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One row per text, in order; batches sorted by length to waste little padding."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for idx in self._batches(order, [len(e.ids) for e in encodings]):
            out[idx] = self._run([encodings[i] for i in idx])
        return out

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """``order`` (shortest first) cut into batches of at most ``batch_size`` texts whose
        attention scores (texts x tokens^2) stay within :data:`ATTENTION_BUDGET`.

        Why: a forward pass holds every layer's scores at once, so 64 texts of 256 tokens
        took an ingest worker to 1.2 GB (``bench/ingest_memory.py``) however short the rest
        of the pack was; fewer texts when they are long bound the peak by the budget, not
        by the longest batch a pack happens to contain. The arithmetic is the same."""
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            width = lengths[i]  # the longest so far: ``order`` is sorted
            if current and (
                len(current) >= self.batch_size
                or (len(current) + 1) * width * width > ATTENTION_BUDGET
            ):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _run(self, encodings: list[Any]) -> npt.NDArray[np.float32]:
        width = max(len(e.ids) for e in encodings)
        shape = (len(encodings), width)
        arrays = {
            "input_ids": np.full(shape, self._pad, dtype=np.int64),
            "attention_mask": np.zeros(shape, dtype=np.int64),
            "token_type_ids": np.zeros(shape, dtype=np.int64),
        }
        for row, e in enumerate(encodings):
            n = len(e.ids)
            arrays["input_ids"][row, :n] = e.ids
            arrays["attention_mask"][row, :n] = e.attention_mask
            arrays["token_type_ids"][row, :n] = e.type_ids
        feeds = {name: arrays[name] for name in self._inputs}
        result: npt.NDArray[np.float32] = self._session.run(None, feeds)[0]
        return np.asarray(result, dtype=np.float32)
