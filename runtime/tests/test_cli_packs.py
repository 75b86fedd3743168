"""The publisher's CLI flow from the README: init, keygen, pack, sign, verify, validate, inspect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.cli.main import main


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEMOS_DEBUG", raising=False)
    monkeypatch.delenv("MEMOS_KEY_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)


def run(*args: str) -> int:
    return main(list(args))


def make_signed_pack(tmp_path: Path) -> Path:
    assert run("init", "src", "--name", "acme/rust-tips") == 0
    assert run("keygen", "--out", "keys") == 0
    assert run("pack", "src", "--out", "p.memcube", "--key", "keys/memos-signing.key") == 0
    return tmp_path / "p.memcube"


def test_readme_flow_init_keygen_pack_verify_inspect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = make_signed_pack(tmp_path)
    assert pack.is_file()
    assert run("verify", "p.memcube", "--trusted-key", "keys/memos-signing.pub") == 0
    assert "OK acme/rust-tips@0.1.0" in capsys.readouterr().out
    assert run("inspect", "p.memcube", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["name"] == "acme/rust-tips"
    assert summary["memory_types"] == ["plaintext"]
    assert len(summary["signatures"]) == 1


def test_pack_is_byte_identical_when_repeated(tmp_path: Path) -> None:
    make_signed_pack(tmp_path)
    assert run("pack", "src", "--out", "again.memcube", "--key", "keys/memos-signing.key") == 0
    assert (tmp_path / "p.memcube").read_bytes() == (tmp_path / "again.memcube").read_bytes()


def test_verify_refuses_a_key_that_did_not_sign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_signed_pack(tmp_path)
    assert run("keygen", "--out", "other") == 0
    capsys.readouterr()
    assert run("verify", "p.memcube", "--trusted-key", "other/memos-signing.pub") == 1
    assert "[signature.untrusted]" in capsys.readouterr().err


def test_verify_without_trusted_keys_says_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_signed_pack(tmp_path)
    capsys.readouterr()
    assert run("verify", "p.memcube") == 1
    err = capsys.readouterr().err
    assert "[cli.no_trusted_keys]" in err and "--trusted-key" in err


def test_verify_uses_keys_pinned_in_memos_home(tmp_path: Path) -> None:
    make_signed_pack(tmp_path)
    pinned = tmp_path / "home" / "trusted-keys"
    pinned.mkdir(parents=True)
    (pinned / "acme.pub").write_bytes((tmp_path / "keys" / "memos-signing.pub").read_bytes())
    assert run("verify", "p.memcube") == 0


def test_sign_adds_a_cosignature_and_keeps_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_signed_pack(tmp_path)
    assert run("keygen", "--out", "co") == 0
    assert run("sign", "p.memcube", "--key", "co/memos-signing.key") == 0
    capsys.readouterr()
    assert run("inspect", "p.memcube", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)["signatures"]) == 2
    for pub in ("keys", "co"):
        assert run("verify", "p.memcube", "--trusted-key", f"{pub}/memos-signing.pub") == 0


def test_unsigned_pack_is_reported_missing_signature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("init", "src", "--name", "acme/x") == 0
    assert run("keygen", "--out", "keys") == 0
    assert run("pack", "src", "--out", "u.memcube") == 0
    capsys.readouterr()
    assert run("verify", "u.memcube", "--trusted-key", "keys/memos-signing.pub") == 1
    assert "[signature.missing]" in capsys.readouterr().err


def test_tampered_pack_fails_with_a_stable_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = make_signed_pack(tmp_path)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    capsys.readouterr()
    assert run("verify", "p.memcube", "--trusted-key", "keys/memos-signing.pub") == 1
    err = capsys.readouterr().err
    assert "error [" in err and "hint:" in err and "Traceback" not in err


def test_validate_lists_every_violation_with_its_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("init", "src", "--name", "acme/x") == 0
    manifest = json.loads((tmp_path / "src" / "manifest.json").read_text())
    manifest["version"] = "one"
    manifest["license"] = ""
    (tmp_path / "bad.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert run("validate", "bad.json") == 1
    out = capsys.readouterr().out
    assert "/version" in out and "/license" in out


def test_validate_accepts_a_source_folder_and_a_pack(tmp_path: Path) -> None:
    make_signed_pack(tmp_path)
    assert run("validate", "src") == 0
    assert run("validate", "p.memcube", "--json") == 0


def test_validate_checks_the_manifest_memos_init_wrote_as_its_pack_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's `memos validate my-pack/manifest.json` on a fresh template."""
    assert run("init", "src", "--name", "acme/x") == 0
    assert run("validate", "src/manifest.json") == 0
    path = tmp_path / "src" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["version"] = "one"
    path.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert run("validate", "src/manifest.json") == 1
    assert "/version" in capsys.readouterr().out


def test_validate_without_mip_version_still_lists_every_other_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("init", "src", "--name", "acme/x") == 0
    path = tmp_path / "src" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["mip_version"]
    manifest["version"] = "one"
    manifest["cubes"][0]["lifecycle"] = "zzz"
    path.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert run("validate", "src/manifest.json", "--json") == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "manifest.bad_mip_version"
    pointers = [v["pointer"] for v in error["detail"]["violations"]]
    assert pointers == ["/mip_version", "/cubes/0/lifecycle", "/version"]
    assert "1.1" in error["detail"]["violations"][0]["message"]


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x").write_text("x")
    assert run("init", "src", "--name", "acme/x") == 1


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert run("keygen", "--out", "keys") == 0
    assert run("keygen", "--out", "keys") == 1
    assert run("keygen", "--out", "keys", "--force") == 0


def test_encrypted_private_key_needs_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMOS_KEY_PASSWORD", "s3cret")
    assert run("init", "src", "--name", "acme/x") == 0
    assert run("keygen", "--out", "keys") == 0
    assert b"ENCRYPTED" in (tmp_path / "keys" / "memos-signing.key").read_bytes()
    assert run("pack", "src", "--out", "p.memcube", "--key", "keys/memos-signing.key") == 0
    monkeypatch.setenv("MEMOS_KEY_PASSWORD", "wrong")
    assert run("pack", "src", "--out", "q.memcube", "--key", "keys/memos-signing.key") == 1


def test_usage_errors_exit_2() -> None:
    assert run("pack") == 2
    assert run("no-such-command") == 2


def test_every_command_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("init", "keygen", "pack", "sign", "verify", "validate", "inspect"):
        assert run(command, "--help") == 0
        assert "Example:" in capsys.readouterr().out, command


def test_debug_mode_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMOS_DEBUG", "1")
    (tmp_path / "junk.memcube").write_bytes(b"junk")
    with pytest.raises(Exception, match=r"archive\.corrupt"):
        run("inspect", "junk.memcube")


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("memos")
    env = dict(os.environ, MEMOS_HOME=str(tmp_path / "home"))
    done = subprocess.run(
        [str(exe), "init", "s", "--name", "acme/p"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    bad = subprocess.run(
        [str(exe), "inspect", "missing.memcube"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
