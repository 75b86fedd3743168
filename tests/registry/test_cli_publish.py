"""`memos login` and `memos publish` against a real registry server (live_server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from memstore.accounts.services import user_create
from memstore.packs.models import PackVersion
from memstore.testing.factories import publisher
from memstore.testing.packs import build_pack
from protocol import SigningKey
from runtime.cli.main import main
from runtime.client import RegistryClient

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def memos_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "memos-home"
    monkeypatch.setenv("MEMOS_HOME", str(home))
    monkeypatch.delenv("MEMOS_TOKEN", raising=False)
    monkeypatch.delenv("MEMOS_REGISTRY", raising=False)
    return home


def test_login_then_publish_with_the_cli(
    tmp_path: Path,
    live_server: Any,
    local_storage: Any,
    memos_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user, _, key = publisher("acme", "alice")
    user.set_password("alice-password")
    user.save()
    url = live_server.url
    assert (
        main(["login", "--registry", url, "--username", "alice", "--password", "alice-password"])
        == 0
    )
    config = json.loads((memos_home / "config.json").read_text())
    assert config["registry"] == url and config["tokens"][url].startswith("mst_")
    pack_file = build_pack(tmp_path, name="acme/cli-pack", keys=[key])
    capsys.readouterr()
    assert main(["publish", str(pack_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["name"] == "acme/cli-pack" and result["version"] == "1.0.0"
    assert PackVersion.objects.filter(pack__name="cli-pack").count() == 1
    # The same version again: refused with the registry's code, exit 1.
    assert main(["publish", str(pack_file)]) == 1
    assert "registry.version_exists" in capsys.readouterr().err
    # A pack signed by an unregistered key: the protocol code comes through.
    stranger = build_pack(
        tmp_path / "x", name="acme/cli-pack", version="2.0.0", keys=[SigningKey.generate()]
    )
    assert main(["publish", str(stranger)]) == 1
    assert "signature.untrusted" in capsys.readouterr().err


def test_login_with_a_wrong_password_fails_cleanly(
    live_server: Any, memos_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_create(username="bob", password="right")
    assert main(["login", "--registry", live_server.url, "-u", "bob", "--password", "wrong"]) == 1
    assert "registry.bad_credentials" in capsys.readouterr().err
    assert not (memos_home / "config.json").exists()


def test_large_packs_go_through_a_resumable_session(
    tmp_path: Path, live_server: Any, local_storage: Any, settings: Any
) -> None:
    settings.MEMSTORE_UPLOAD_CHUNK_BYTES = 4096
    user, _, key = publisher("acme", "alice")
    import hashlib

    memories = [
        "".join(hashlib.sha256(f"{i}-{j}".encode()).hexdigest() for j in range(4))
        for i in range(200)
    ]
    pack_file = build_pack(tmp_path, name="acme/large", keys=[key], memories=memories)
    assert pack_file.stat().st_size > 3 * 4096
    from memstore.accounts.services import api_token_create

    _, raw = api_token_create(user=user)
    seen: list[int] = []
    with RegistryClient(live_server.url, token=raw) as client:
        result = client.publish(
            pack_file,
            one_request_limit=1024,
            chunk_size=4096,
            progress=lambda done, total: seen.append(done),
        )
    assert result.ref == "acme/large@1.0.0"
    assert seen[-1] == pack_file.stat().st_size and len(seen) >= 3


@pytest.mark.django_db(transaction=False)
def test_publisher_resumes_after_a_lost_chunk() -> None:
    """Transport-level fake: the server already has the first chunk the client thinks it lost."""
    state = {"offset": 0, "patches": 0}
    size = 10

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/uploads/" and request.method == "POST":
            return httpx.Response(201, json={"id": "u1", "offset": 0, "max_chunk_bytes": 4})
        if request.method == "PATCH":
            state["patches"] += 1
            offset = int(request.headers["Upload-Offset"])
            if state["patches"] == 2:  # pretend the answer to the first chunk was lost
                state["offset"] = 8
                return httpx.Response(
                    409,
                    json={
                        "error": {
                            "code": "registry.upload_offset_mismatch",
                            "message": "x",
                            "detail": {"offset": 8},
                        }
                    },
                )
            assert offset == state["offset"]
            state["offset"] += len(request.content)
            return httpx.Response(200, json={"offset": state["offset"]})
        if request.method == "GET":
            return httpx.Response(200, json={"offset": state["offset"]})
        if request.url.path.endswith("/complete"):
            assert state["offset"] == size
            return httpx.Response(
                201,
                json={
                    "name": "a/b",
                    "version": "1.0.0",
                    "sha256": "0" * 64,
                    "size": size,
                    "signed_by": [],
                    "ingest": {"status": "pending"},
                },
            )
        return httpx.Response(500)

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.memcube"
        path.write_bytes(b"0123456789")
        with RegistryClient(
            "http://registry.test", token="t", transport=httpx.MockTransport(handler)
        ) as client:
            result = client.publish(path, one_request_limit=1, chunk_size=4)
    assert result.ref == "a/b@1.0.0"
