"""A tampered blob, or a signature by an unknown or revoked key, is refused.

Nothing is installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from memos_cli import memos

from protocol import SigningKey
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import build_pack


def _assert_nothing_installed(env: dict[str, str], cwd: Path) -> None:
    assert json.loads(memos(["list", "--json"], env, cwd).stdout) == []
    assert json.loads(memos(["search", "memory", "--json"], env, cwd).stdout) == []
    blobs = Path(env["MEMOS_HOME"]) / "cache" / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("tampered", "integrity.digest_mismatch"),
        ("unknown", "signature.untrusted"),
        ("revoked", "signature.revoked_key"),
    ],
)
def test_refused_and_nothing_installed(
    case: str,
    code: str,
    tmp_path: Path,
    registry: FakeRegistry,
    key: SigningKey,
    env: dict[str, str],
) -> None:
    signer = key
    if case in ("unknown", "revoked"):
        signer = SigningKey.from_seed(b"x" * 32)
        if case == "revoked":
            registry.add_key("acme", signer.public_key, revoked=True)
    registry.publish(build_pack(tmp_path, name="acme/tips", keys=[signer], memories=["a memory"]))
    registry.tamper = case == "tampered"
    proc = memos(["install", "acme/tips"], env, tmp_path, check=False)
    assert proc.returncode == 1
    assert code in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "memos.lock").exists()
    _assert_nothing_installed(env, tmp_path)


def test_refused_upgrade_keeps_previous_version(
    tmp_path: Path, registry: FakeRegistry, key: SigningKey, env: dict[str, str]
) -> None:
    registry.publish(
        build_pack(tmp_path, name="acme/tips", version="1.0.0", keys=[key], memories=["v1 memory"])
    )
    memos(["install", "acme/tips"], env, tmp_path)
    registry.publish(
        build_pack(tmp_path, name="acme/tips", version="1.1.0", keys=[key], memories=["v2 memory"])
    )
    registry.tamper = True
    assert memos(["upgrade"], env, tmp_path, check=False).returncode == 1
    assert json.loads(memos(["list", "--json"], env, tmp_path).stdout)[0]["version"] == "1.0.0"
    hits = json.loads(memos(["search", "memory", "--json"], env, tmp_path).stdout)
    assert [h["text"] for h in hits] == ["v1 memory"]
