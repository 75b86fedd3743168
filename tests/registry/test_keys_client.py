"""`memos keys` and the registry client's signing-key calls, over ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.main import get_command

from protocol import SigningKey
from runtime.cli import registry_cmds
from runtime.cli.main import app, main
from runtime.client import RegistryClient
from runtime.errors import RegistryError

REGISTRY = "http://registry.test"
KEY = SigningKey.generate()
KEYID = KEY.keyid
CREATED = "2026-11-25T10:00:00Z"


def key_body(**changes: Any) -> dict[str, Any]:
    body = {
        "keyid": KEYID,
        "public_key": KEY.public_key.to_text(),
        "label": "laptop",
        "created_at": CREATED,
        "revoked_at": None,
        "revocation_reason": "",
    }
    body.update(changes)
    return body


def error(status: int, code: str, message: str = "refused") -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "detail": {}}})


class FakeRegistry:
    """Records requests; answers with ``answer(request)`` (a key by default)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(
            201, json=key_body()
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def client(self, token: str | None = "mst_t") -> RegistryClient:
        return RegistryClient(REGISTRY, token=token, transport=httpx.MockTransport(self))

    @property
    def last_json(self) -> Any:
        return json.loads(self.requests[-1].content)


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


# ---------------------------------------------------------------- the library


def test_register_key_sends_the_key_text_and_label_with_the_token(fake: FakeRegistry) -> None:
    with fake.client() as client:
        key = client.register_key("acme", KEY.public_key, label="laptop")
    request = fake.requests[-1]
    assert request.method == "POST" and request.url.path == "/api/v1/namespaces/acme/keys"
    assert request.headers["Authorization"] == "Bearer mst_t"
    assert fake.last_json == {"public_key": KEY.public_key.to_text(), "label": "laptop"}
    assert key.keyid == KEYID and key.label == "laptop" and not key.revoked


def test_register_key_refuses_an_answer_about_another_key(fake: FakeRegistry) -> None:
    other = SigningKey.generate()
    fake.answer = lambda r: httpx.Response(
        201, json=key_body(keyid=other.keyid, public_key=other.public_key.to_text())
    )
    with fake.client() as client, pytest.raises(RegistryError) as info:
        client.register_key("acme", KEY.public_key)
    assert info.value.code == "registry.bad_response"


def test_list_keys_includes_revoked_keys(fake: FakeRegistry) -> None:
    revoked = key_body(keyid="a" * 64, revoked_at=CREATED, revocation_reason="stolen")
    fake.answer = lambda r: httpx.Response(200, json=[key_body(), revoked])
    with fake.client(token=None) as client:
        keys = client.list_keys("acme")
    assert fake.requests[-1].method == "GET" and "Authorization" not in fake.requests[-1].headers
    assert [k.revoked for k in keys] == [False, True]
    assert keys[1].revocation_reason == "stolen" and keys[1].revoked_at == CREATED


def test_revoke_key_posts_the_reason_to_the_keys_revoke_url(fake: FakeRegistry) -> None:
    fake.answer = lambda r: httpx.Response(
        200, json=key_body(revoked_at=CREATED, revocation_reason="stolen")
    )
    with fake.client() as client:
        key = client.revoke_key("acme", KEYID, reason="stolen")
    assert fake.requests[-1].url.path == f"/api/v1/namespaces/acme/keys/{KEYID}/revoke"
    assert fake.last_json == {"reason": "stolen"} and key.revoked


def test_path_segments_are_quoted(fake: FakeRegistry) -> None:
    with fake.client() as client:
        client.revoke_key("ac/me", "../x")
    assert fake.requests[-1].url.raw_path == b"/api/v1/namespaces/ac%2Fme/keys/..%2Fx/revoke"


@pytest.mark.parametrize(
    "body",
    [
        {"keys": []},  # not a list
        [{"keyid": "not-hex", "public_key": "ed25519:x"}],
        [{"keyid": KEYID}],  # no public key
        [{**key_body(), "revoked_at": 7}],
    ],
)
def test_malformed_key_answers_are_bad_responses(fake: FakeRegistry, body: Any) -> None:
    fake.answer = lambda r: httpx.Response(200, json=body)
    with fake.client() as client, pytest.raises(RegistryError) as info:
        client.list_keys("acme")
    assert info.value.code == "registry.bad_response"


def test_server_errors_keep_their_codes(fake: FakeRegistry) -> None:
    fake.answer = lambda r: error(409, "registry.key_revoked")
    with fake.client() as client, pytest.raises(RegistryError) as info:
        client.register_key("acme", KEY.public_key)
    assert info.value.code == "registry.key_revoked"


# ---------------------------------------------------------------- the commands


@pytest.fixture
def cli(fake: FakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEMOS_REGISTRY", REGISTRY)
    monkeypatch.setenv("MEMOS_TOKEN", "mst_t")
    monkeypatch.delenv("MEMOS_DEBUG", raising=False)

    def publisher(url: str, *, token: str | None = None) -> RegistryClient:
        assert url == REGISTRY
        return RegistryClient(url, token=token, transport=httpx.MockTransport(fake))

    monkeypatch.setattr(registry_cmds, "RegistryClient", publisher)
    return fake


@pytest.fixture
def pubfile(tmp_path: Path) -> Path:
    path = tmp_path / "memos-signing.pub"
    path.write_bytes(KEY.public_key.to_pem())
    return path


def test_keys_register_prints_the_key_id(
    cli: FakeRegistry, pubfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "register", str(pubfile), "--namespace", "acme", "--label", "laptop"]) == 0
    assert KEYID in capsys.readouterr().out
    assert cli.last_json == {"public_key": KEY.public_key.to_text(), "label": "laptop"}


def test_keys_register_accepts_key_text_and_answers_json(
    cli: FakeRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "key.txt"
    text.write_text(KEY.public_key.to_text() + "\n")
    assert main(["keys", "register", str(text), "-n", "acme", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["keyid"] == KEYID


def test_keys_register_never_sends_a_private_key(
    cli: FakeRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private = tmp_path / "memos-signing.key"
    private.write_bytes(KEY.to_pem(None))
    assert main(["keys", "register", str(private), "--namespace", "acme"]) == 1
    stderr = capsys.readouterr().err
    assert "keys.private_key" in stderr and "hint:" in stderr and ".pub" in stderr
    assert cli.requests == []


def test_keys_register_refuses_a_file_that_is_not_a_key(
    cli: FakeRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.pub"
    junk.write_text("hello")
    assert main(["keys", "register", str(junk), "--namespace", "acme"]) == 1
    assert "signature.bad_key" in capsys.readouterr().err and cli.requests == []


def test_keys_commands_need_a_login_to_change_keys(
    cli: FakeRegistry,
    pubfile: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("MEMOS_TOKEN")
    assert main(["keys", "register", str(pubfile), "--namespace", "acme"]) == 1
    assert main(["keys", "revoke", KEYID, "--namespace", "acme"]) == 1
    stderr = capsys.readouterr().err
    assert stderr.count("registry.not_authenticated") == 2 and "memos login" in stderr
    assert cli.requests == []


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (403, "registry.forbidden", "maintainer or owner"),
        (404, "registry.namespace_not_found", "memos login lists"),
        (409, "registry.key_revoked", "memos keygen"),
        (400, "registry.bad_key", ".pub"),
    ],
)
def test_keys_register_refusals_print_the_code_and_a_hint(
    cli: FakeRegistry,
    pubfile: Path,
    capsys: pytest.CaptureFixture[str],
    status: int,
    code: str,
    hint: str,
) -> None:
    cli.answer = lambda r: error(status, code)
    assert main(["keys", "register", str(pubfile), "--namespace", "acme"]) == 1
    stderr = capsys.readouterr().err
    assert code in stderr and "hint:" in stderr and hint in stderr


def test_keys_list_shows_active_and_revoked_keys(
    cli: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    revoked = key_body(keyid="b" * 64, label="old", revoked_at=CREATED, revocation_reason="[lost]")
    cli.answer = lambda r: httpx.Response(200, json=[key_body(), revoked])
    assert main(["keys", "list", "--namespace", "acme"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(KEYID) and "active" in lines[0] and "laptop" in lines[0]
    assert "revoked" in lines[1] and "[lost]" in lines[1]
    assert main(["keys", "list", "--namespace", "acme", "--json"]) == 0
    assert [k["revoked_at"] for k in json.loads(capsys.readouterr().out)] == [None, CREATED]


def test_keys_list_of_a_namespace_without_keys(
    cli: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.answer = lambda r: httpx.Response(200, json=[])
    assert main(["keys", "list", "--namespace", "acme"]) == 0
    assert "no signing keys" in capsys.readouterr().out


def test_keys_revoke_prints_the_revocation(
    cli: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.answer = lambda r: httpx.Response(200, json=key_body(revoked_at=CREATED))
    assert main(["keys", "revoke", KEYID, "--namespace", "acme", "--reason", "stolen"]) == 0
    assert "Revoked key" in capsys.readouterr().out and cli.last_json == {"reason": "stolen"}
    cli.answer = lambda r: error(404, "registry.key_not_found")
    assert main(["keys", "revoke", "c" * 64, "--namespace", "acme"]) == 1
    assert "memos keys list --namespace" in capsys.readouterr().err


def test_every_keys_command_has_an_example_in_its_help() -> None:
    group = get_command(app).commands["keys"]  # type: ignore[attr-defined]
    assert "Example:" in (group.epilog or "")
    for name in ("register", "list", "revoke"):
        command = group.commands[name]
        assert f"memos keys {name}" in (command.help or ""), name
