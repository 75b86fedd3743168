"""Each format's fixture imports to a signed pack with the expected memories and provenance."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol import SigningKey, read_pack, verify_signatures
from runtime.interop import PROVENANCE_KEY, ImportOptions, from_pack_file, import_to_pack
from runtime.tests.interop import builders

KEY = SigningKey.from_seed(b"i" * 32)
AMP_KEY = SigningKey.from_seed(b"a" * 32)


def _fixture(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        src = builders.FIXTURES / name
        dst = tmp / name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
        return dst

    return make


CASES = [
    ("mem0", _fixture("mem0-get-all.json"), 3, "mem0", "0b5c9a1e-4c1e-4f7a-9a52-1f0f2d3c4b5a"),
    ("mem0", lambda t: builders.openmemory_zip(t / "backup.zip"), 2, "mem0", "om-1"),
    ("mcp-memory", _fixture("memory.jsonl"), 5, "mcp-memory", "John_Smith#0"),
    ("memos", _fixture("memos-cube"), 2, "memos", "7e2a1c4b-0000-4000-8000-000000000001"),
    ("letta", _fixture("letta-agent.af"), 3, "letta", "block-1"),
    ("cogx", lambda t: builders.cogx(t / "export.cogx.tar.gz"), 4, "cognee", "fact-1"),
    ("amp", lambda t: builders.amp_pack(t / "tips.zip", AMP_KEY), 2, "memorymarket-amp",
     "amp-rust"),
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "make", "count", "system", "some_id"), CASES)
def test_import_gives_expected_count_and_provenance(
    tmp_path: Path, fmt: str, make: Callable[[Path], Path], count: int, system: str, some_id: str
) -> None:
    out = tmp_path / "out.memcube"
    result = import_to_pack(fmt, make(tmp_path), out, name="me/imported", key=KEY)
    assert result.memories == count
    pack = read_pack(out)
    assert pack.manifest.mip_version == "2.0"  # the current format, as `memos init` writes
    assert verify_signatures(pack.manifest_bytes, pack.signatures, [KEY.public_key])
    memories = from_pack_file(out)
    assert len(memories) == count
    assert {m.system for m in memories} == {system}
    assert some_id in {m.original_id for m in memories}


def test_mem0_keeps_timestamps_categories_and_scope(tmp_path: Path) -> None:
    out = tmp_path / "out.memcube"
    import_to_pack("mem0", builders.FIXTURES / "mem0-get-all.json", out, name="me/m", key=KEY)
    first = next(m for m in from_pack_file(out) if m.text.startswith("Prefers window"))
    assert first.created_at is not None and first.created_at.isoformat() == (
        "2025-11-03T17:15:00+00:00"
    )
    assert first.updated_at is not None and first.updated_at.day == 1
    assert first.tags == ("travel", "preferences")
    assert first.metadata["mem0"]["user_id"] == "alex"
    assert first.metadata["source"] == "chat"


def test_provenance_is_stored_in_the_pack_records(tmp_path: Path) -> None:
    out = tmp_path / "out.memcube"
    import_to_pack("mcp-memory", builders.FIXTURES / "memory.jsonl", out, name="me/g", key=KEY)
    pack = read_pack(out, target=tmp_path / "x")
    text = (tmp_path / "x" / "payloads" / "memories" / "memories.jsonl").read_text()
    assert PROVENANCE_KEY in text and '"system":"mcp-memory"' in text
    assert pack.manifest.name == "me/g"


def test_cogx_keeps_valid_and_invalid_times_as_lifecycle(tmp_path: Path) -> None:
    out = tmp_path / "out.memcube"
    import_to_pack("cogx", builders.cogx(tmp_path / "e.cogx.tar.gz"), out, name="me/c", key=KEY)
    fact = next(m for m in from_pack_file(out) if m.original_id == "fact-1")
    assert fact.text == "Alex lives_in Lisbon"
    assert fact.metadata["lifecycle"] == {
        "valid_at": "2024-01-01T00:00:00Z", "invalid_at": "2025-06-30T00:00:00Z"}  # fmt: skip


def test_letta_never_imports_secrets_and_messages_only_on_request(tmp_path: Path) -> None:
    source = builders.FIXTURES / "letta-agent.af"
    out = tmp_path / "out.memcube"
    result = import_to_pack("letta", source, out, name="me/l", key=KEY)
    assert {s.what for s in result.skipped} >= {"secrets", "messages"}
    assert "sk-not-a-real-secret" not in out.read_bytes().decode("latin-1")
    with_messages = import_to_pack(
        "letta", source, tmp_path / "m.memcube", name="me/l", key=KEY,
        options=ImportOptions(with_messages=True),
    )  # fmt: skip
    assert with_messages.memories == 5


def test_amp_signer_is_recorded_and_a_trusted_key_is_enforced(tmp_path: Path) -> None:
    source = builders.amp_pack(tmp_path / "tips.zip", AMP_KEY)
    out = tmp_path / "out.memcube"
    import_to_pack("amp", source, out, name="me/a", key=KEY,
                   options=ImportOptions(trusted_keys=(AMP_KEY.public_key,)))  # fmt: skip
    memory = from_pack_file(out)[0]
    assert memory.metadata["amp"]["signature_verified"] is True
    from runtime.errors import InteropError

    with pytest.raises(InteropError) as exc:
        import_to_pack("amp", source, out, name="me/a", key=KEY,
                       options=ImportOptions(trusted_keys=(KEY.public_key,)))  # fmt: skip
    assert exc.value.code == "interop.amp_untrusted"


def test_vectors_are_written_as_exact_float32_and_wide_integers_survive(tmp_path: Path) -> None:
    """orjson writes the vectors; a record it cannot take (a 70-bit integer) goes via json."""
    import json

    import numpy as np

    from runtime.engine.embedding import HashEmbedder

    source = tmp_path / "mem0.json"
    items = [
        {"id": "a", "memory": "tea in the morning", "metadata": {"n": 1}},
        {"id": "b", "memory": "trains at noon", "metadata": {"big": 2**70}},
    ]
    source.write_text(json.dumps({"results": items}))
    out = tmp_path / "out.memcube"
    embedder = HashEmbedder()
    import_to_pack("mem0", source, out, name="me/v", key=KEY, embedder=embedder)
    memories = {m.original_id: m for m in from_pack_file(out)}
    assert memories["b"].metadata["big"] == 2**70
    pack = read_pack(out, target=tmp_path / "x")
    expected = embedder.embed(["tea in the morning", "trains at noon"])
    vectors = {}
    for ref in pack.manifest.cubes[0].payloads:
        for line in (tmp_path / "x" / ref.path).read_bytes().splitlines():
            record = json.loads(line)
            vectors[record["id"]] = np.asarray(record["embedding"]["vector"], dtype=np.float32)
    assert np.array_equal(vectors["a"], expected[0])
    assert np.array_equal(vectors["b"], expected[1])
