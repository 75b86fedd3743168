"""`memos keys` against a real registry server (live_server): register, publish, list, revoke."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memstore.accounts.models import SigningKey as SigningKeyRow
from memstore.accounts.services import user_create
from memstore.packs.models import PackVersion
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack
from protocol import SigningKey
from runtime.cli.main import main

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def memos_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "memos-home"
    monkeypatch.setenv("MEMOS_HOME", str(home))
    for name in ("MEMOS_TOKEN", "MEMOS_REGISTRY", "MEMOS_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return home


def test_a_key_registered_with_the_cli_signs_packs_until_it_is_revoked(
    tmp_path: Path,
    live_server: Any,
    local_storage: Any,
    memos_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user, _, _ = publisher("acme", "alice")
    user.set_password("alice-password")
    user.save()
    url = live_server.url
    assert main(["login", "--registry", url, "-u", "alice", "--password", "alice-password"]) == 0

    key = SigningKey.generate()
    pub = tmp_path / "laptop.pub"
    pub.write_bytes(key.public_key.to_pem())
    capsys.readouterr()
    assert main(["keys", "register", str(pub), "--namespace", "acme", "--label", "laptop"]) == 0
    assert key.keyid in capsys.readouterr().out
    assert SigningKeyRow.objects.get(keyid=key.keyid).label == "laptop"

    # A pack signed with the new key is accepted.
    assert main(["publish", str(build_pack(tmp_path / "a", name="acme/tips", keys=[key]))]) == 0
    assert PackVersion.objects.filter(pack__name="tips").count() == 1

    capsys.readouterr()
    assert main(["keys", "list", "--namespace", "acme", "--json"]) == 0
    listed = {k["keyid"]: k for k in json.loads(capsys.readouterr().out)}
    assert len(listed) == 2 and listed[key.keyid]["revoked_at"] is None

    assert main(["keys", "revoke", key.keyid, "--namespace", "acme", "--reason", "lost"]) == 0
    assert main(["keys", "list", "--namespace", "acme"]) == 0
    human = capsys.readouterr().out
    assert f"{key.keyid}  revoked" in human and "lost" in human

    # Revoked: its packs are refused, and it cannot come back.
    v2 = build_pack(tmp_path / "b", name="acme/tips", version="2.0.0", keys=[key])
    assert main(["publish", str(v2)]) == 1
    assert "signature.revoked_key" in capsys.readouterr().err
    assert main(["keys", "register", str(pub), "--namespace", "acme"]) == 1
    stderr = capsys.readouterr().err
    assert "registry.key_revoked" in stderr and "hint:" in stderr


def test_outsiders_cannot_register_keys(
    tmp_path: Path, live_server: Any, memos_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher("acme", "alice")
    user_create(username="mallory", password="mallory-pw")
    url = live_server.url
    assert main(["login", "--registry", url, "-u", "mallory", "--password", "mallory-pw"]) == 0
    pub = tmp_path / "m.pub"
    pub.write_bytes(SigningKey.generate().public_key.to_pem())
    assert main(["keys", "register", str(pub), "--namespace", "acme"]) == 1
    assert main(["keys", "revoke", "0" * 64, "--namespace", "acme"]) == 1
    stderr = capsys.readouterr().err
    assert stderr.count("registry.forbidden") == 2 and "maintainer or owner" in stderr
    assert main(["keys", "list", "--namespace", "nobody"]) == 1
    assert "registry.namespace_not_found" in capsys.readouterr().err
