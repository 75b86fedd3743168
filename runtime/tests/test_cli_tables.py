"""`memos history` and `memos audit` stay readable at 80 columns: whole timestamps, no
line wider than the terminal (the README walkthrough's terminal)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.cli.main import main

STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("MEMOS_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)


def test_history_and_audit_fit_80_columns_with_whole_timestamps(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["init", "src", "--name", "acme/rust-tips"]) == 0
    assert main(["keygen", "--out", "keys"]) == 0
    assert main(["pack", "src", "--out", "p.memcube", "--key", "keys/memos-signing.key"]) == 0
    trusted = ["--trusted-key", "keys/memos-signing.pub"]
    assert main(["install", "./p.memcube", *trusted]) == 0
    capsys.readouterr()
    for command in (["history", "acme/rust-tips/notes/welcome-2"], ["audit"]):
        assert main(command) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines and all(len(line) <= 80 for line in lines), command
        assert STAMP.search("\n".join(lines)), command
