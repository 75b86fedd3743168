"""``memos mcp`` as a real subprocess, driven by the ``mcp`` SDK's own client (stdio and HTTP)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent, TextResourceContents

from protocol import SigningKey
from runtime import MemOS
from runtime.tests.helpers import build_pack

MEMOS = str(Path(sys.executable).parent / "memos")
EXPECTED_TOOLS = {
    "search", "plan", "get_memory", "add_memory", "update_memory", "forget_memory",
    "history", "rollback", "list_packs", "install_pack",
}  # fmt: skip


@pytest.fixture
def memos_home(tmp_path: Path) -> Path:
    """A MEMOS_HOME with one signed pack installed (acme/rust-tips)."""
    home = tmp_path / "home"
    key = SigningKey.from_seed(b"m" * 32)
    pack = build_pack(
        tmp_path, name="acme/rust-tips", keys=[key],
        memories=["Use borrowing instead of cloning to satisfy the borrow checker.",
                  "Deploys happen on Tuesdays."],
    )  # fmt: skip
    with MemOS(home, principal="installer") as mem:
        mem.install(pack, trusted_keys=[key.public_key])
    return home


def _env(home: Path) -> dict[str, str]:
    return {"MEMOS_HOME": str(home), "MEMOS_EMBEDDER": "hash", "MEMOS_PRINCIPAL": "nobody"}


def _data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return dict(result.structured_content)
    first = result.content[0]
    assert isinstance(first, TextContent)
    return dict(json.loads(first.text))


def _error_text(result: CallToolResult) -> str:
    """The error's text: the SDK says which tool failed, then our ``[code] message``."""
    assert result.is_error
    first = result.content[0]
    assert isinstance(first, TextContent)
    return first.text


async def _scenario(alice: Client, bob: Client) -> None:
    tools = {t.name for t in (await alice.list_tools()).tools}
    assert tools >= EXPECTED_TOOLS

    hits = _data(await alice.call_tool("search", {"query": "borrow checker cloning", "k": 3}))
    assert hits["hits"][0]["pack"] == "acme/rust-tips"
    assert "borrow" in hits["hits"][0]["text"]

    resources = {str(r.uri) for r in (await alice.list_resources()).resources}
    assert "memos://packs" in resources
    listed = (await alice.read_resource("memos://packs/acme/rust-tips")).contents[0]
    assert isinstance(listed, TextResourceContents)
    assert len(json.loads(listed.text)) == 2

    packs = _data(await alice.call_tool("list_packs", {}))
    assert [p["name"] for p in packs["packs"]] == ["acme/rust-tips"]

    added = _data(await alice.call_tool(
        "add_memory", {"text": "The vault code is 1234.", "private_to": ["alice"]}))  # fmt: skip
    memory_id = added["id"]
    changed = _data(await alice.call_tool(
        "update_memory", {"memory_id": memory_id, "text": "The vault code is 9999."}))  # fmt: skip
    assert changed["version"] == 2
    restored = _data(await alice.call_tool("rollback", {"memory_id": memory_id, "version": 1}))
    assert restored["text"] == "The vault code is 1234."
    versions = _data(await alice.call_tool("history", {"memory_id": memory_id}))["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]

    denied = await bob.call_tool("get_memory", {"memory_id": memory_id})
    assert "[access.denied]" in _error_text(denied)
    denied_history = await bob.call_tool("history", {"memory_id": memory_id})
    assert "[access.denied]" in _error_text(denied_history)
    bob_hits = _data(await bob.call_tool("search", {"query": "vault code", "min_similarity": 0}))
    assert memory_id not in {h["id"] for h in bob_hits["hits"]}

    refused = await alice.call_tool("install_pack", {"ref": "acme/other"})
    assert "[mcp.install_disabled]" in _error_text(refused)

    planned = _data(await alice.call_tool("plan", {"query": "borrow checker", "dry_run": True}))
    assert all(item["reason"] for item in planned["items"])


def _audit_actors(home: Path) -> set[str | None]:
    with MemOS(home, principal="auditor") as mem:
        return {entry.actor for entry in mem.audit()}


def test_mcp_over_stdio_searches_adds_rolls_back_and_denies_another_principal(
    memos_home: Path,
) -> None:
    def params(principal: str) -> StdioServerParameters:
        return StdioServerParameters(
            command=MEMOS, args=["mcp", "--as", principal], env=_env(memos_home)
        )

    async def main() -> None:
        async with Client(params("alice")) as alice, Client(params("bob")) as bob:
            await _scenario(alice, bob)

    anyio.run(main)
    assert {"alice", "bob"} <= _audit_actors(memos_home)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _token(home: Path, principal: str) -> str:
    done = subprocess.run(
        [MEMOS, "mcp-token", principal], env={**os.environ, **_env(home)},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def _serve(home: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [MEMOS, "mcp", "--transport", "http", "--port", str(port), "--as", "alice", *extra],
        env={**os.environ, **_env(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("memos mcp did not start listening")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    if proc.stderr:
        proc.stderr.close()


@pytest.fixture
def tokens(memos_home: Path) -> dict[str, str]:
    """Bearer tokens issued for alice and bob (before the server starts: it reads them once)."""
    return {name: _token(memos_home, name) for name in ("alice", "bob")}


@pytest.fixture
def http_server(memos_home: Path, tokens: dict[str, str]) -> Iterator[str]:
    proc, url = _serve(memos_home)
    try:
        yield url
    finally:
        _stop(proc)


def _http_client(url: str, token: str | None) -> Client:
    """A client whose session proves its principal with a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers)))


def test_mcp_over_streamable_http_runs_each_request_as_its_tokens_principal(
    memos_home: Path, tokens: dict[str, str], http_server: str
) -> None:
    async def main() -> None:
        async with (
            _http_client(http_server, tokens["alice"]) as alice,
            _http_client(http_server, tokens["bob"]) as bob,
        ):
            await _scenario(alice, bob)

    anyio.run(main)
    assert {"alice", "bob"} <= _audit_actors(memos_home)


def test_mcp_over_http_refuses_requests_without_a_valid_token_and_ignores_claimed_names(
    memos_home: Path, tokens: dict[str, str], http_server: str
) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({}, {"Authorization": "Bearer memos-mcp-forged"},
                    {"Memos-Principal": "alice"}):  # fmt: skip
        answer = httpx.post(http_server, json=init, headers={**accept, **headers}, timeout=10)
        assert answer.status_code == 401, (headers, answer.text)
    stored = (memos_home / "mcp-tokens.json").read_text()
    assert tokens["alice"] not in stored and tokens["bob"] not in stored  # digests only
    assert oct((memos_home / "mcp-tokens.json").stat().st_mode & 0o777) == "0o600"


def test_a_revoked_token_no_longer_opens_the_server(memos_home: Path) -> None:
    keep, gone = _token(memos_home, "alice"), _token(memos_home, "bob")
    subprocess.run([MEMOS, "mcp-token", "bob", "--revoke"], env={**os.environ, **_env(memos_home)},
                   check=True, capture_output=True)  # fmt: skip
    proc, url = _serve(memos_home)
    try:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
        accept = {"Accept": "application/json, text/event-stream"}
        for token, status in ((gone, 401), (keep, 200)):
            answer = httpx.post(url, json=init, timeout=10,
                                headers={**accept, "Authorization": f"Bearer {token}"})  # fmt: skip
            assert answer.status_code == status
    finally:
        _stop(proc)


def test_without_tokens_http_serves_loopback_only(memos_home: Path) -> None:
    done = subprocess.run(
        [MEMOS, "mcp", "--transport", "http", "--host", "0.0.0.0", "--as", "alice"],
        env={**os.environ, **_env(memos_home)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "mcp.insecure" in done.stderr or "memos mcp-token" in done.stderr
