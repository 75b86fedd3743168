"""``memos import`` and ``memos export`` as commands: signed pack out, loss report, codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.cli.main import main
from runtime.tests.interop import builders


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    assert main(["keygen", "--out", str(tmp_path / "keys")]) == 0
    return tmp_path / "keys" / "memos-signing.key"


def test_import_install_search_and_export_from_the_command_line(
    tmp_path: Path,
    keyfile: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # `memos install` writes memos.lock in the working directory
    pack = tmp_path / "notes.memcube"
    code = main(
        [
            "import",
            "--from",
            "mem0",
            str(builders.FIXTURES / "mem0-get-all.json"),
            "--name",
            "me/notes",
            "--key",
            str(keyfile),
            "--out",
            str(pack),
            "--json",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["memories"] == 3
    pub = keyfile.with_suffix(".pub")
    assert main(["install", str(pack), "--trusted-key", str(pub)]) == 0
    capsys.readouterr()
    out = tmp_path / "memory.jsonl"
    assert main(["export", "me/notes", "--to", "mcp-memory", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["memories"] == 3
    assert {row["what"] for row in report["not_carried"]} >= {"created_at", "tags"}
    assert len(out.read_text().splitlines()) == 3
    assert main(["export", str(pack), "--to", "mem0", "--out", str(tmp_path / "m.json")]) == 0


def test_import_errors_print_their_code(
    tmp_path: Path, keyfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    code = main(["import", "--from", "mem0", str(bad), "--name", "me/x", "--key", str(keyfile)])
    assert code == 1
    assert "[interop.bad_record]" in capsys.readouterr().err
    code = main(["export", "me/none", "--to", "mem0", "--out", str(tmp_path / "o.json")])
    assert code == 1
