"""Runtime governance: every SDK call and every memory command acts for a principal.

Reads and changes (history, show, rollback, edit, transition) are checked
against the memory's access policy, denied attempts are audited, a rollback
adds exactly one version, and reads (search, get) never add a version.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol import AccessPolicy
from runtime import MemOS
from runtime.cli.main import main
from runtime.engine.embedding import HashEmbedder
from runtime.errors import AccessDeniedError

SECRET = "the vault code is 1234"


def _memos(home: Path, principal: str | None) -> MemOS:
    return MemOS(home, principal=principal, embedder=HashEmbedder(), maintain_every=None)


@pytest.fixture
def secret_id(home: Path) -> str:
    with _memos(home, "alice") as mem:
        memory = mem.add(SECRET, access=AccessPolicy("private", ("alice",)))
        mem.update(memory.id, text=SECRET + " (rotated monthly)")
        return memory.id


def _denied(home: Path, principal: str, memory_id: str) -> list[str]:
    with _memos(home, "alice") as mem:
        entries = mem.audit(action="access_denied", actor=principal)
    return [str(e.detail.get("attempted")) for e in entries if e.target == memory_id]


def test_sdk_history_refuses_a_principal_the_policy_does_not_list(
    home: Path, secret_id: str
) -> None:
    with _memos(home, "mallory") as mem, pytest.raises(AccessDeniedError):
        mem.history(secret_id)
    assert _denied(home, "mallory", secret_id) == ["history"]
    with _memos(home, "alice") as mem:
        assert [v.version for v in mem.history(secret_id)] == [1, 2]


def test_sdk_rollback_edit_and_transition_need_write_permission(home: Path, secret_id: str) -> None:
    with _memos(home, "mallory") as mem:
        with pytest.raises(AccessDeniedError):
            mem.rollback(secret_id, 1)
        with pytest.raises(AccessDeniedError):
            mem.update(secret_id, text="mallory was here")
        with pytest.raises(AccessDeniedError):
            mem.transition(secret_id, "remove")
    with _memos(home, None) as anonymous, pytest.raises(AccessDeniedError):
        anonymous.rollback(secret_id, 1)
    with _memos(home, "alice") as mem:
        assert len(mem.history(secret_id)) == 2
        assert mem.get(secret_id).text.endswith("(rotated monthly)")
    assert sorted(_denied(home, "mallory", secret_id)) == [
        "rollback:1",
        "transition:remove",
        "update",
    ]


def test_rollback_adds_exactly_one_version_and_later_reads_add_none(
    home: Path, secret_id: str
) -> None:
    with _memos(home, "alice") as mem:
        restored = mem.rollback(secret_id, 1)
        assert restored.version == 3
        assert restored.text == SECRET
        mem.search("vault code")
        mem.get(secret_id)
        assert [v.version for v in mem.history(secret_id)] == [1, 2, 3]


def test_search_activates_without_adding_a_version(home: Path) -> None:
    with _memos(home, "alice") as mem:
        memory = mem.add("deploys happen on tuesdays")
        assert memory.state.value == "generated"
        assert mem.search("deploys tuesdays")[0].memory.id == memory.id
        mem.search("deploys tuesdays")
        after = mem.engine.get(memory.id, record=False)
        assert after.state.value == "activated"
        assert after.access_count == 2
        assert [v.event for v in mem.history(memory.id)] == ["create"]
        assert [e.detail["to"] for e in mem.audit(action="transition")] == ["activated"]


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _cli_secret(capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = _run(
        capsys, ["add", SECRET, "--private-to", "alice", "--as", "alice", "--json"]
    )
    assert code == 0, err
    memory_id = str(json.loads(out)["id"])
    assert _run(capsys, ["edit", memory_id, "--text", SECRET + "!", "--as", "alice"])[0] == 0
    return memory_id


def test_cli_history_needs_read_access_as_principal(capsys: pytest.CaptureFixture[str]) -> None:
    memory_id = _cli_secret(capsys)
    code, out, err = _run(capsys, ["history", memory_id, "--as", "mallory"])
    assert code == 1
    assert "access.denied" in err
    assert "vault" not in out + err
    code, out, _ = _run(capsys, ["history", memory_id, "--as", "alice", "--json"])
    assert code == 0
    assert [v["version"] for v in json.loads(out)] == [1, 2]


def test_cli_show_edit_rollback_refuse_a_stranger(capsys: pytest.CaptureFixture[str]) -> None:
    memory_id = _cli_secret(capsys)
    for argv in (
        ["show", memory_id, "--as", "mallory"],
        ["edit", memory_id, "--text", "owned", "--as", "mallory"],
        ["rollback", memory_id, "1", "--as", "mallory"],
    ):
        code, out, err = _run(capsys, argv)
        assert code == 1, argv
        assert "access.denied" in err
        assert "vault" not in out
    code, out, _ = _run(capsys, ["audit", "--json", "--actor", "mallory"])
    assert code == 0
    attempted = [e["detail"]["attempted"] for e in json.loads(out) if e["target"] == memory_id]
    assert sorted(attempted) == ["read", "rollback:1", "update"]
    code, out, _ = _run(capsys, ["history", memory_id, "--as", "alice", "--json"])
    assert [v["version"] for v in json.loads(out)] == [1, 2]


def test_cli_rollback_by_owner_adds_one_version(capsys: pytest.CaptureFixture[str]) -> None:
    memory_id = _cli_secret(capsys)
    assert _run(capsys, ["search", "vault code", "--as", "alice"])[0] == 0
    code, out, err = _run(capsys, ["rollback", memory_id, "1", "--as", "alice", "--json"])
    assert code == 0, err
    assert json.loads(out)["version"] == 3
    assert _run(capsys, ["show", memory_id, "--as", "alice"])[0] == 0
    code, out, _ = _run(capsys, ["history", memory_id, "--as", "alice", "--json"])
    assert [v["event"] for v in json.loads(out)] == ["create", "update", "rollback:1"]
