"""End to end against the real registry (Django live server): install through its TUF index.

The registry runs on its embedded default (demo root key under the data dir).
``memos registry add`` pins its root and prints the fingerprint; install takes
the namespace's keys from the signed delegation; a key rotation endorsed by the
old key is followed; a key registered without one (a stolen ``admin:`` token,
or the operator) is refused; a key declared compromised refuses what it signed
from then on while older versions stay installable.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: Any) -> Path:
    home = tmp_path / "memos-home"
    monkeypatch.setenv("MEMOS_HOME", str(home))
    monkeypatch.setenv("MEMOS_REGISTRY", live_server.url)
    monkeypatch.setenv("MEMOS_EMBEDDER", "hash")
    monkeypatch.setenv("MEMOS_MAINTAIN_HOURS", "0")
    monkeypatch.delenv("MEMOS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def _cli(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    from runtime.cli.main import main

    capsys.readouterr()
    assert main(argv) == code
    captured = capsys.readouterr()
    if code:
        return captured.err
    return json.loads(captured.out) if "--json" in argv else captured.out


def test_install_rotate_and_refuse_through_the_registry_s_tuf_index(
    tmp_path: Path, live_server: Any, local_storage: Any, cli_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from django.utils import timezone

    from memstore.accounts.actor import Actor
    from memstore.accounts.services import signing_key_register
    from memstore.packs.services import pack_publish
    from memstore.testing.factories import publisher
    from memstore.testing.packs import build_pack
    from memstore.tuf.services import key_compromised, key_endorse
    from protocol import SigningKey
    from protocol.endorsement import endorse_key

    user, ns, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)

    def publish(version: str, signer: SigningKey) -> None:
        pack_publish(actor=actor, pack_file=build_pack(
            tmp_path / version, name="acme/tips", version=version, keys=[signer],
            memories=[f"tip {version}"],
        ))  # fmt: skip

    publish("1.0.0", key)
    root = httpx.get(f"{live_server.url}/api/v1/tuf/1.root.json").content
    pinned = _cli(capsys, ["registry", "add", live_server.url, "--json"])
    assert pinned["root_sha256"] == hashlib.sha256(root).hexdigest()
    assert pinned["first_use"] is True

    (installed,) = _cli(capsys, ["install", "acme/tips", "--json"])
    assert (installed["version"], installed["signed_by"]) == ("1.0.0", [key.keyid])
    assert not any("signature only" in w for w in installed.get("warnings", []))

    # Rotation: the new key, endorsed by the old one, signs 1.1.0.
    new = SigningKey.generate()
    signing_key_register(actor=actor, namespace=ns, public_key=new.public_key.to_text())
    key_endorse(actor=actor, namespace=ns, keyid=new.keyid,
                signature=endorse_key("acme", new.public_key, key))  # fmt: skip
    publish("1.1.0", new)
    (upgraded,) = _cli(capsys, ["upgrade", "acme/tips", "--json"])
    assert (upgraded["version"], upgraded["signed_by"]) == ("1.1.0", [new.keyid])

    # A key registered without an endorsement signs 1.2.0: refused, 1.1.0 stays.
    rogue = SigningKey.generate()
    signing_key_register(actor=actor, namespace=ns, public_key=rogue.public_key.to_text())
    publish("1.2.0", rogue)
    assert "trust.key_not_endorsed" in _cli(capsys, ["upgrade", "acme/tips"], code=1)
    assert _cli(capsys, ["list", "--json"])[0]["version"] == "1.1.0"

    # The new key is declared compromised since after 1.1.0: 1.1.0 (older) stays installable.
    key_compromised(actor=actor, namespace=ns, keyid=new.keyid,
                    since=timezone.now() + timedelta(seconds=1))  # fmt: skip
    (again,) = _cli(capsys, ["install", "acme/tips@1.1.0", "--json"])
    assert again["version"] == "1.1.0"
