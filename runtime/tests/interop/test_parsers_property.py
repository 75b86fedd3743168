"""Any JSON at all is either read or refused with an ``interop.*`` code, never a crash."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import InteropError
from runtime.interop.letta import read_agent_file
from runtime.interop.mcp_memory import read_mcp_memory
from runtime.interop.mem0 import read_mem0

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
KEYS = st.sampled_from(["id", "memory", "content", "metadata", "categories", "created_at",
                        "updated_at", "results", "type", "name", "observations", "agents",
                        "blocks", "block_ids", "value", "label", "from", "to"])  # fmt: skip
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)  # fmt: skip


def _read(reader: Any, value: Any, suffix: str, *, lines: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"src{suffix}"
        items = value if lines and isinstance(value, list) else [value]
        path.write_text("\n".join(json.dumps(v) for v in items) if lines else json.dumps(value))
        code = "read"
        try:
            reader(path)
        except InteropError as exc:
            code = exc.code
        assert code == "read" or code.startswith("interop.")


@settings(max_examples=150, deadline=None)
@given(values)
def test_mem0_reader_refuses_or_reads_any_json(value: Any) -> None:
    _read(read_mem0, value, ".json")


@settings(max_examples=150, deadline=None)
@given(values)
def test_mcp_memory_reader_refuses_or_reads_any_json_lines(value: Any) -> None:
    _read(read_mcp_memory, value, ".jsonl", lines=True)


@settings(max_examples=150, deadline=None)
@given(values)
def test_letta_reader_refuses_or_reads_any_json(value: Any) -> None:
    _read(read_agent_file, value, ".af")


def test_letta_reader_ignores_block_ids_that_are_not_strings(tmp_path: Path) -> None:
    path = tmp_path / "a.af"
    path.write_text(json.dumps({"agents": [{"block_ids": [[1]]}],
                                "blocks": [{"id": [1], "value": "x"}]}))  # fmt: skip
    assert read_agent_file(path) == ([], [])
