"""End to end against the real registry (live server): install checks inclusion; ``memos log
verify`` reports unexpected key events and detects a split view shown to one client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server: Any) -> Path:
    home = tmp_path / "memos-home"
    monkeypatch.setenv("MEMOS_HOME", str(home))
    monkeypatch.setenv("MEMOS_REGISTRY", live_server.url)
    monkeypatch.setenv("MEMOS_EMBEDDER", "hash")
    monkeypatch.setenv("MEMOS_PRINCIPAL", "new-user")
    monkeypatch.setenv("MEMOS_MAINTAIN_HOURS", "0")
    monkeypatch.delenv("MEMOS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def _memos(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    from runtime.cli.main import main

    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_install_log_verify_and_a_split_view_from_the_live_registry(
    tmp_path: Path,
    live_server: Any,
    local_storage: Any,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from memstore.accounts.actor import Actor
    from memstore.accounts.services import signing_key_register
    from memstore.packs.services import pack_publish
    from memstore.testing.factories import publisher
    from memstore.testing.packs import build_pack
    from memstore.transparency import services
    from protocol import SigningKey
    from protocol.tree_head import SignedTreeHead
    from runtime.transparency import LogVerifier

    user, ns, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)
    pack_publish(
        actor=actor,
        pack_file=build_pack(tmp_path / "v1", name="acme/tips", keys=[key], memories=["one"]),
    )
    code, out, err = _memos(capsys, ["install", "acme/tips", "--json"])
    assert code == 0, err
    (state,) = (cli_env / "transparency").glob("*.json")
    kept = json.loads(state.read_text())["head"]
    assert kept["size"] == 2  # key registration, publish: inclusion was checked in this head

    # The installed pack's namespace is followed: its first key is new to this user.
    code, out, _ = _memos(capsys, ["log", "verify", "--json"])
    report = json.loads(out)
    assert code == 1 and report["namespaces"] == ["acme"]
    assert [(e["kind"], e["keyid"]) for e in report["unexpected"]] == [("key.register", key.keyid)]
    assert _memos(capsys, ["log", "verify", "--ack"])[0] == 0
    assert _memos(capsys, ["log", "verify"])[0] == 0

    # A key registered later (say, with a stolen token) is reported to every follower.
    stolen = SigningKey.generate()
    signing_key_register(actor=actor, namespace=ns, public_key=stolen.public_key.to_text())
    code, out, _ = _memos(capsys, ["log", "verify"])
    assert code == 1 and "key.register" in out and stolen.keyid[:16] in out

    # So is a transfer of the namespace to another owner (who could register keys next).
    from memstore.accounts.services import namespace_transfer
    from memstore.testing.factories import UserFactory

    UserFactory(username="bob")
    namespace_transfer(namespace=ns, to_owner="bob", actor=actor)
    code, out, _ = _memos(capsys, ["log", "verify", "--json"])
    kinds = [(e["kind"], e.get("to")) for e in json.loads(out)["unexpected"]]
    assert code == 1 and ("namespace.transfer", "bob") in kinds
    code, out, _ = _memos(capsys, ["log", "verify"])
    assert code == 1 and "alice -> bob" in out

    # Split view: the operator showed this client a different tree (signed with the real
    # log key) that hides that key; the log everyone else sees is not consistent with it.
    log_key = services.log_key()
    forged = SignedTreeHead(3, bytes(32), 1, "").signed_by(log_key)
    verifier = LogVerifier(cli_env, live_server.url, source=None)  # type: ignore[arg-type]
    data = json.loads(verifier.path.read_text())
    data["head"] = forged.to_dict()
    verifier.path.write_text(json.dumps(data))
    code, _, err = _memos(capsys, ["log", "verify"])
    assert code == 1 and "log.inconsistent" in err
    # And installing from it is refused too, nothing installed.
    code, _, err = _memos(capsys, ["install", "acme/tips@1.0.0", "--json"])
    assert code == 1 and "log.inconsistent" in err
