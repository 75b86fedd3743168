"""SmolLM2: three signed KV packs installed and used together from the CLI and the SDK.

Model tier; small packs and prompts (2 shared cores in CI).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from protocol import MemoryRecord
from runtime.cli.main import main
from runtime.models.causal_lm import LoadedModel
from runtime.models.kv import load_kv
from runtime.models.kv_compose import compose_kv
from runtime.models.packs import build_model_pack_source

pytestmark = pytest.mark.model

PACKS = [
    ["The MemStore project codename is Bluefin.", "Standups start at 09:15 on weekdays."],
    ["Alice's favourite drink is green tea with mint.", "Bob rides a red bicycle to work."],
    ["The staging server restarts every Sunday at 03:00 UTC.", "Backups are kept for 30 days."],
]
QUERY = "What is the project codename?"
# Touches every pack, so the plan's retrieval finds all three (a pack's KV cube joins a plan
# when its plaintext memories answer the query).
WIDE = "What is the project codename, what does Alice drink, and when does staging restart?"


@pytest.fixture
def installed(
    smollm2: LoadedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> list[Path]:
    """Three packs built for SmolLM2 (the last one int8), signed and installed."""
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEMOS_EMBEDDER", "hash")
    monkeypatch.chdir(tmp_path)
    assert main(["keygen", "--out", "keys"]) == 0
    files = []
    for i, texts in enumerate(PACKS):
        records = [MemoryRecord(id=f"m{j}", text=t) for j, t in enumerate(texts)]
        source = build_model_pack_source(
            smollm2, records, tmp_path / f"src{i}", name=f"acme/facts-{i}", with_lora=False,
            kv_encoding="int8" if i == 2 else "raw",
        )  # fmt: skip
        manifest = json.loads((source / "manifest.json").read_text("utf-8"))
        (cube,) = [c for c in manifest["cubes"] if c["memory_type"] == "activation"]
        if i == 2:  # the builder measured the int8 cache against float32 and recorded it
            assert cube["kv"]["encoding"] == "int8" and cube["kv"]["bytes_per_token"] < 12_000
            assert cube["kv"]["quality"]["probes"] >= 1
        pack = ["pack", f"src{i}", "--out", f"p{i}.memcube", "--key", "keys/memos-signing.key"]
        assert main(pack) == 0, capsys.readouterr().err
        files.append(tmp_path / f"p{i}.memcube")
        args = [f"./p{i}.memcube", "--trusted-key", "keys/memos-signing.pub", "--no-lock", "-q"]
        assert main(["install", *args]) == 0, capsys.readouterr().err
    return files


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    assert main(list(args)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_three_installed_packs_compose_from_the_cli_and_the_sdk(
    smollm2: LoadedModel, installed: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    packs = [a for i in range(3) for a in ("--pack", f"acme/facts-{i}")]
    common = ["--max-new-tokens", "8", "--json", "--model", "smollm2"]
    composed = _json(capsys, "generate", QUERY, *packs, "--recompute", "1.0", *common)
    assert composed["form"] == "activation" and "3 KV caches" in composed["reason"]
    assert "Bluefin" in composed["text"]
    planned = _json(capsys, "generate", WIDE, "--engine", "--budget", "2048", *common)
    caches = [i for i in planned["plan"]["items"] if i["form"] == "activation"]
    assert len(caches) == 3 and caches[0]["offset"] == 0
    assert "3 KV cache(s)" in planned["reason"]

    from runtime.engine.interfaces import LatencyProfile
    from runtime.engine.scheduler import Budget
    from runtime.models.engine_adapter import TransformersBackend
    from runtime.sdk import MemOS

    profile = LatencyProfile(
        prefill_tokens_per_s=500.0, kv_load_bytes_per_s=1e9, kv_fixed_overhead_s=0.001
    )  # measured once by the CLI call above; not again here
    with MemOS(backend=TransformersBackend(smollm2, profile=profile)) as mem:
        result, plan = mem.generate(WIDE, Budget(tokens=2048), max_new_tokens=8)
    assert sum(i.form == "activation" for i in plan.items) == 3
    assert result.form == "activation" and "3 KV cache(s)" in result.reason


def test_full_recompute_matches_full_prefill_on_smollm2(
    smollm2: LoadedModel, tmp_path: Path
) -> None:
    from runtime.models.kv import build_kv

    caches = [
        load_kv(build_kv(smollm2, texts, tmp_path / f"{i}.safetensors").path, smollm2)
        for i, texts in enumerate(PACKS)
    ]
    composed = compose_kv(smollm2, caches, recompute=1.0)
    query = smollm2.encode(QUERY + "<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
    suffix = [*composed.closing_ids, *query]
    with torch.no_grad():
        full = smollm2.model(input_ids=torch.tensor([[*composed.input_ids, *suffix]])).logits
        got = smollm2.model(input_ids=torch.tensor([suffix]), cache=composed.to_cache(smollm2))
    torch.testing.assert_close(got.logits[0, -1], full[0, -1], atol=2e-3, rtol=1e-3)
