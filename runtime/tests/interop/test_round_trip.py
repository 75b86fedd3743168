"""import -> export -> import gives the same memories, from a .memcube and from an install."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from protocol import SigningKey
from runtime import MemOS
from runtime.interop import (
    ImportOptions,
    PortableMemory,
    export_memories,
    from_installed,
    from_pack_file,
    import_to_pack,
)
from runtime.tests.interop import builders

KEY = SigningKey.from_seed(b"r" * 32)
AMP_KEY = SigningKey.from_seed(b"a" * 32)

SOURCES: dict[str, Callable[[Path], Path]] = {
    "mem0": lambda t: builders.FIXTURES / "mem0-get-all.json",
    "mcp-memory": lambda t: builders.FIXTURES / "memory.jsonl",
    "cogx": lambda t: builders.cogx(t / "in.cogx.tar.gz"),
    "amp": lambda t: builders.amp_pack(t / "in.zip", AMP_KEY),
}
OUT_NAMES = {"mem0": "out.json", "mcp-memory": "out.jsonl", "cogx": "out.cogx.tar.gz",
             "amp": "out.zip"}  # fmt: skip


def _comparable(memories: list[PortableMemory]) -> list[tuple[Any, ...]]:
    """Everything a memory carries except who signed an AMP pack (re-signed on export)."""
    rows = []
    for m in memories:
        meta = {k: v for k, v in m.metadata.items() if k != "amp"}
        rows.append((m.original_id, m.text, m.created_at, m.updated_at, m.tags, meta))
    return sorted(rows, key=lambda r: r[0])


@pytest.mark.parametrize("fmt", sorted(SOURCES))
def test_round_trip_through_a_pack_file_keeps_every_memory(tmp_path: Path, fmt: str) -> None:
    first = tmp_path / "first.memcube"
    import_to_pack(fmt, SOURCES[fmt](tmp_path), first, name="me/rt", key=KEY)
    exported = tmp_path / OUT_NAMES[fmt]
    report = export_memories(fmt, from_pack_file(first), exported, key=KEY)
    assert report.memories == len(from_pack_file(first))
    second = tmp_path / "second.memcube"
    import_to_pack(fmt, exported, second, name="me/rt", key=KEY,
                   options=ImportOptions(trusted_keys=(KEY.public_key,)))  # fmt: skip
    assert _comparable(from_pack_file(second)) == _comparable(from_pack_file(first))


@pytest.mark.parametrize("fmt", ["mem0", "cogx"])
def test_round_trip_from_an_installed_pack_keeps_every_memory(tmp_path: Path, fmt: str) -> None:
    first = tmp_path / "first.memcube"
    import_to_pack(fmt, SOURCES[fmt](tmp_path), first, name="me/rt", key=KEY)
    with MemOS(tmp_path / "home", principal="alice") as mem:
        mem.install(first, trusted_keys=[KEY.public_key])
        installed = from_installed(mem, "me/rt")
    exported = tmp_path / OUT_NAMES[fmt]
    export_memories(fmt, installed, exported)
    second = tmp_path / "second.memcube"
    import_to_pack(fmt, exported, second, name="me/rt", key=KEY)
    assert _comparable(from_pack_file(second)) == _comparable(from_pack_file(first))


def test_export_reports_what_mcp_memory_cannot_carry(tmp_path: Path) -> None:
    pack = tmp_path / "m.memcube"
    import_to_pack("mem0", SOURCES["mem0"](tmp_path), pack, name="me/m", key=KEY)
    report = export_memories("mcp-memory", from_pack_file(pack), tmp_path / "memory.jsonl")
    lost = {(s.item, s.what) for s in report.not_carried}
    assert ("0b5c9a1e-4c1e-4f7a-9a52-1f0f2d3c4b5a", "created_at") in lost
    assert ("0b5c9a1e-4c1e-4f7a-9a52-1f0f2d3c4b5a", "tags") in lost
    assert ("0b5c9a1e-4c1e-4f7a-9a52-1f0f2d3c4b5a", "metadata") in lost


def test_amp_export_needs_a_key(tmp_path: Path) -> None:
    from runtime.errors import InteropError

    pack = tmp_path / "m.memcube"
    import_to_pack("mem0", SOURCES["mem0"](tmp_path), pack, name="me/m", key=KEY)
    with pytest.raises(InteropError) as exc:
        export_memories("amp", from_pack_file(pack), tmp_path / "x.zip")
    assert exc.value.code == "interop.amp_unsigned"
