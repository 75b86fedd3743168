"""The install tool: off by default; with allow_install, installs a pinned-key local pack."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from mcp import Client
from mcp_types import TextContent

from protocol import SigningKey
from runtime import MemOS
from runtime.mcp import build_server
from runtime.tests.helpers import build_pack


def test_install_tool_installs_a_local_pack_when_enabled(tmp_path: Path) -> None:
    key = SigningKey.from_seed(b"p" * 32)
    pack = build_pack(tmp_path, name="acme/tips", keys=[key], memories=["Tip one.", "Tip two."])
    home = tmp_path / "home"
    (home / "trusted-keys").mkdir(parents=True)
    (home / "trusted-keys" / "acme.pub").write_bytes(key.public_key.to_pem())

    async def main(mem: MemOS) -> tuple[bool, str]:
        async with Client(build_server(mem, allow_install=True)) as client:
            result = await client.call_tool("install_pack", {"ref": str(pack)})
            first = result.content[0]
            assert isinstance(first, TextContent)
            return bool(result.is_error), first.text

    with MemOS(home, principal="ops") as mem:
        is_error, text = anyio.run(main, mem)
        assert not is_error, text
        assert json.loads(text)["memories"] == 2
        assert [p.name for p in mem.installed()] == ["acme/tips"]
        assert any(e.actor == "ops" for e in mem.audit())
