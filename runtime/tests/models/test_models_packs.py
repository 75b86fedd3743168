"""A pack holding plaintext, activation and parameter cubes: build, sign, read, use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol import MemoryRecord, MemoryType, SigningKey, pack_directory, read_pack
from runtime.models import FingerprintMismatchError
from runtime.models.causal_lm import LoadedModel
from runtime.models.kv import generate_with_kv, generate_with_prefix, load_kv
from runtime.models.lora import attach_adapter, detach_adapter
from runtime.models.packs import build_model_pack_source, open_model_memory, read_memories

RECORDS = [
    MemoryRecord(id="tea", text="alice likes green tea in the morning", tags=("alice",)),
    MemoryRecord(id="bikes", text="bob repairs old bicycles on sundays"),
]


@pytest.fixture(scope="module")
def pack_file(tiny_lm: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pack")
    stages: list[str] = []
    source = build_model_pack_source(
        tiny_lm,
        RECORDS,
        root / "src",
        name="acme/tiny-memory",
        lora_steps=3,
        progress=lambda stage, done, total: stages.append(stage),
    )
    assert {"kv", "lora"} <= set(stages)
    out = root / "tiny.memcube"
    pack_directory(source, out, keys=[SigningKey.generate()])
    return out


def test_pack_has_three_memory_types_bound_to_the_model(
    tiny_lm: LoadedModel, pack_file: Path
) -> None:
    pack = read_pack(pack_file)  # checks KV names, shapes, dtype and the fingerprint digest
    kinds = {c.id: c.memory_type for c in pack.manifest.cubes}
    assert kinds == {
        "memories": MemoryType.PLAINTEXT,
        "memories-kv": MemoryType.ACTIVATION,
        "memories-lora": MemoryType.PARAMETER,
    }
    for cube in pack.manifest.cubes:
        if cube.memory_type is not MemoryType.PLAINTEXT:
            assert cube.model is not None and cube.model.mismatches(tiny_lm.fingerprint) == []
            assert cube.provenance is not None and cube.provenance.derived_from == ("memories",)
    assert len(pack.signatures) == 1


def test_pack_memory_generates_the_same_tokens_with_kv_and_plaintext(
    tiny_lm: LoadedModel, pack_file: Path, tmp_path: Path
) -> None:
    memory = open_model_memory(read_pack(pack_file, target=tmp_path / "x"))
    assert memory.texts == tuple(r.text for r in RECORDS)
    ((cube, path),) = memory.kv
    loaded = load_kv(path, tiny_lm, expected=cube.model)
    got = generate_with_kv(tiny_lm, loaded, "what does alice like", max_new_tokens=8)
    want = generate_with_prefix(tiny_lm, memory.texts, "what does alice like", max_new_tokens=8)
    assert got.tokens == want.tokens


def test_pack_adapter_attaches_and_another_model_refuses_it(
    tiny_lm: LoadedModel, other_lm: LoadedModel, pack_file: Path, tmp_path: Path
) -> None:
    memory = open_model_memory(read_pack(pack_file, target=tmp_path / "x"))
    ((cube, config, weights),) = memory.adapters
    attach_adapter(tiny_lm, config, weights, expected=cube.model)
    detach_adapter(tiny_lm)
    with pytest.raises(FingerprintMismatchError):
        attach_adapter(other_lm, config, weights, expected=cube.model)
    ((kv_cube, kv_path),) = memory.kv
    with pytest.raises(FingerprintMismatchError):
        load_kv(kv_path, other_lm, expected=kv_cube.model)


def test_read_memories_accepts_jsonl_and_text(tmp_path: Path) -> None:
    (tmp_path / "m.txt").write_text("first memory\n\n second memory \n", "utf-8")
    assert [r.text for r in read_memories(tmp_path / "m.txt")] == ["first memory", "second memory"]
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "a", "text": "hello"}) + "\n", "utf-8")
    assert read_memories(tmp_path / "m.jsonl") == [MemoryRecord(id="a", text="hello")]
