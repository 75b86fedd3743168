"""``memos migrate``: a MIP 1.x pack rewritten as MIP 2.0, verified with the publisher's key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol import read_pack
from runtime.cli.main import main


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEMOS_DEBUG", raising=False)
    monkeypatch.delenv("MEMOS_KEY_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)


def test_migrate_writes_a_2x_pack_that_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "src", "--name", "acme/rust-tips"]) == 0
    assert main(["keygen", "--out", "keys"]) == 0
    sign = ["--key", "keys/memos-signing.key"]
    assert main(["pack", "src", "--out", "new.memcube", *sign]) == 0
    assert read_pack(tmp_path / "new.memcube").manifest.major == 2  # what memos init writes
    assert main(["pack", "src", "--out", "p.memcube", *sign, "--mip", "1"]) == 0
    assert read_pack(tmp_path / "p.memcube").manifest.major == 1
    capsys.readouterr()
    args = ["migrate", "p.memcube", "--key", "keys/memos-signing.key", "--out", "p2.memcube"]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mip_version"] == "2.0" and summary["file"] == "p2.memcube"
    assert read_pack(tmp_path / "p2.memcube").manifest.major == 2
    assert main(["verify", "p2.memcube", "--trusted-key", "keys/memos-signing.pub"]) == 0
    assert "OK acme/rust-tips@0.1.0" in capsys.readouterr().out
    assert main(["migrate", "p.memcube", "--key", "keys/memos-signing.key"]) == 0
    assert "Migrated acme/rust-tips@0.1.0 to MIP 2.0" in capsys.readouterr().out
    assert read_pack(tmp_path / "p.memcube").manifest.major == 2


def test_migrate_of_a_missing_file_fails_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "nope.memcube", "--key", "nokey"]) != 0
