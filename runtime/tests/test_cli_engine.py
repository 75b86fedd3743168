from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol import SigningKey
from runtime.cli.main import main
from runtime.tests.helpers import build_pack

COMMANDS = [
    "install",
    "list",
    "remove",
    "upgrade",
    "gc",
    "add",
    "search",
    "plan",
    "show",
    "history",
    "rollback",
    "edit",
    "lifecycle",
    "maintain",
    "audit",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_shows_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    assert "Example:" in capsys.readouterr().out


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_add_search_plan_history_rollback_audit(capsys: pytest.CaptureFixture[str]) -> None:
    added = _json(
        capsys,
        ["add", "Deploys happen on Tuesdays", "--tag", "ops", "--meta", "team=core", "--json"],
    )
    assert isinstance(added, dict)
    mid = added["id"]
    hits = _json(capsys, ["search", "deploy tuesday", "--json", "--as", "agent-7"])
    assert isinstance(hits, list)
    assert hits[0]["id"] == mid
    assert _json(capsys, ["search", "", "--meta", "team=core", "--json"])[0]["id"] == mid  # type: ignore[index]
    plan = _json(capsys, ["plan", "when are deploys", "--budget", "64", "--json"])
    assert isinstance(plan, dict)
    assert plan["items"][0]["memory_id"] == mid
    assert plan["items"][0]["reason"]
    assert main(["lifecycle", mid, "archive"]) == 0
    versions = _json(capsys, ["history", mid, "--json"])
    assert isinstance(versions, list)
    assert [v["event"] for v in versions] == ["create", "archive"]  # reads add no version
    restored = _json(capsys, ["rollback", mid, "1", "--json"])
    assert restored["state"] == "generated"  # type: ignore[index]
    assert restored["version"] == 3  # type: ignore[index]
    entries = _json(capsys, ["audit", "--json", "--actor", "agent-7", "--action", "search"])
    assert isinstance(entries, list)
    assert entries[0]["detail"]["memories"] == [mid]
    assert entries[0]["detail"]["query"] == "deploy tuesday"
    assert main(["audit", "--verify"]) == 0


def test_illegal_transition_exits_1_with_code(capsys: pytest.CaptureFixture[str]) -> None:
    mid = _json(capsys, ["add", "x", "--json"])["id"]  # type: ignore[index]
    capsys.readouterr()
    assert main(["lifecycle", mid, "restore"]) == 1
    err = capsys.readouterr().err
    assert "lifecycle.illegal_transition" in err
    assert "hint" in err


def test_private_memory_is_denied_to_others(capsys: pytest.CaptureFixture[str]) -> None:
    mid = _json(capsys, ["add", "secret plan", "--private-to", "bob", "--json"])["id"]  # type: ignore[index]
    assert _json(capsys, ["search", "secret plan", "--as", "eve", "--json"]) == []
    capsys.readouterr()
    assert main(["show", mid, "--as", "eve"]) == 1
    assert "access.denied" in capsys.readouterr().err
    assert main(["show", mid, "--as", "bob"]) == 0


def test_install_local_file_and_list_remove(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    key = SigningKey.from_seed(b"c" * 32)
    pack = build_pack(tmp_path, name="acme/cli", keys=[key], memories=["cli memory"])
    pub = tmp_path / "acme.pub"
    pub.write_bytes(key.public_key.to_pem())
    capsys.readouterr()
    assert main(["install", str(pack)]) == 1
    assert "install.no_trusted_keys" in capsys.readouterr().err
    result = _json(capsys, ["install", str(pack), "--trusted-key", str(pub), "--json"])
    assert result[0]["name"] == "acme/cli"  # type: ignore[index]
    assert (tmp_path / "memos.lock").exists()
    assert _json(capsys, ["list", "--json"])[0]["memories"] == 1  # type: ignore[index]
    assert (
        _json(capsys, ["search", "cli memory", "--pack", "acme/cli", "--json"])[0]["pack"]
        == "acme/cli"
    )  # type: ignore[index]
    assert _json(capsys, ["remove", "acme/cli", "--json"]) == {"removed": "acme/cli", "memories": 1}
    assert json.loads((tmp_path / "memos.lock").read_text())["packs"] == {}


def test_maintain_reports(capsys: pytest.CaptureFixture[str]) -> None:
    main(["add", "dup text"])
    main(["add", "Dup  text"])
    report = _json(capsys, ["maintain", "--json"])
    assert len(report["merged"]) == 1  # type: ignore[index]


def test_sdk_round_trip(tmp_path: Path) -> None:
    from runtime import Budget, MemOS, State

    with MemOS(tmp_path / "sdk", principal="agent-1") as mem:
        m = mem.add("The wifi password is on the fridge", tags=("home",))
        assert mem.search("wifi password")[0].memory.id == m.id
        plan = mem.plan("wifi", Budget(tokens=100))
        assert plan.items[0].memory.id == m.id
        assert "wifi" in plan.prompt_prefix()
        mem.transition(m.id, "archive")
        assert mem.get(m.id).state is State.ARCHIVED
        mem.rollback(m.id, 1)
        assert [v.version for v in mem.history(m.id)] == [1, 2, 3]  # create, archive, rollback
        assert mem.audit(actor="agent-1")
        assert mem.maintain().to_dict()["dry_run"] is False
        assert mem.transform().to_dict() == {"promoted": [], "demoted": [], "skipped": []}


def test_upgrade_with_no_registry_pack_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["upgrade"]) == 0
    assert "Nothing to upgrade" in capsys.readouterr().out
