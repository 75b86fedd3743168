"""``memos install`` against the real MemStore registry.

A Django live server, PostgreSQL and local storage.

The registry's own fixtures start the services (``memstore.testing.plugin``).
A new user installs a published pack by name, searches it, moves a memory
through its lifecycle, rolls it back and reads the audit log; a version
signed by a key the namespace then revoked is refused and leaves the
installed version intact.
"""

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


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    from runtime.cli.main import main

    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out) if "--json" in argv else captured.out


def test_install_search_lifecycle_rollback_audit_from_the_registry(
    tmp_path: Path,
    live_server: Any,
    local_storage: Any,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from memstore.accounts.actor import Actor
    from memstore.accounts.services import signing_key_revoke
    from memstore.packs.services import pack_publish
    from memstore.testing.factories import publisher
    from memstore.testing.packs import build_pack
    from runtime.cli.main import main

    user, ns, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)
    pack_publish(
        actor=actor,
        pack_file=build_pack(
            tmp_path / "v1",
            name="acme/live-tips",
            keys=[key],
            memories=["Rotate the API keys every quarter", "Backups run nightly at 02:00"],
        ),
    )

    (installed,) = _run(capsys, ["install", "acme/live-tips", "--json"])
    assert (installed["name"], installed["version"], installed["signed_by"]) == (
        "acme/live-tips",
        "1.0.0",
        [key.keyid],
    )
    hits = _run(capsys, ["search", "when do backups run", "--json", "--as", "agent-9"])
    mid = hits[0]["id"]
    assert hits[0]["text"] == "Backups run nightly at 02:00"
    _run(capsys, ["lifecycle", mid, "archive"])
    versions = _run(capsys, ["history", mid, "--json"])
    # The search activated it in place (no version): install, archive.
    assert [v["snapshot"]["state"] for v in versions] == ["generated", "archived"]
    rolled = _run(capsys, ["rollback", mid, "1", "--json"])
    assert (rolled["state"], rolled["version"]) == ("generated", 3)
    reads = _run(capsys, ["audit", "--json", "--actor", "agent-9", "--action", "search"])
    assert mid in reads[0]["detail"]["memories"]

    # A new version signed by a key that is then revoked: refused, 1.0.0 stays.
    from memstore.accounts.services import signing_key_register
    from protocol import SigningKey

    second = SigningKey.generate()
    signing_key_register(actor=actor, namespace=ns, public_key=second.public_key.to_text())
    pack_publish(
        actor=actor,
        pack_file=build_pack(
            tmp_path / "v2",
            name="acme/live-tips",
            version="1.1.0",
            keys=[second],
            memories=["changed"],
        ),
    )
    signing_key_revoke(actor=actor, namespace=ns, keyid=second.keyid, reason="laptop stolen")
    capsys.readouterr()
    assert main(["upgrade", "acme/live-tips"]) == 1
    # Through the registry's TUF index: a key no pinned key endorsed is refused as such.
    assert "trust.key_not_endorsed" in capsys.readouterr().err
    assert _run(capsys, ["list", "--json"])[0]["version"] == "1.0.0"


def test_partial_fetch_and_delta_upgrade_blob_by_blob_from_the_registry(
    tmp_path: Path,
    live_server: Any,
    local_storage: Any,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The registry's per-blob URLs (Range, by digest): only the running model's KV cache is
    fetched, never the .memcube file; an upgrade fetches only the changed memories blob."""
    from memstore.accounts.actor import Actor
    from memstore.packs.services import pack_publish
    from memstore.testing.factories import publisher
    from protocol import read_pack
    from runtime.tests.helpers import build_pack, fingerprint_digest_of, kv_cube, tiny_fingerprint

    user, _ns, key = publisher("acme", "alice")
    actor = Actor(user=user, scopes=None)
    models = ("a" * 64, "c" * 64, "d" * 64)

    def publish(version: str, text: str) -> dict[str, str]:
        path = build_pack(
            tmp_path / version, name="acme/kv", version=version, keys=[key],
            memories=["stable memory", text],
            extra_cubes=[kv_cube(f"kv{i}", config_sha256=m, seed=i) for i, m in enumerate(models)],
        )  # fmt: skip
        pack_publish(actor=actor, pack_file=path)
        return {c.id: c.payloads[0].sha256 for c in read_pack(path).manifest.cubes}

    v1 = publish("1.0.0", "old wording")
    running = fingerprint_digest_of(tiny_fingerprint(models[2]))
    monkeypatch.setenv("MEMOS_MODEL_FINGERPRINT", running)
    (installed,) = _run(capsys, ["install", "acme/kv", "--json"])
    assert set(installed["fetched"]) == {v1["notes"], v1["kv2"]}
    v2 = publish("1.1.0", "new wording")
    (upgraded,) = _run(capsys, ["upgrade", "acme/kv", "--json"])
    assert upgraded["version"] == "1.1.0"
    assert upgraded["fetched"] == [v2["notes"]]
    assert _run(capsys, ["verify", "--installed", "--json"])["ok"] is True
