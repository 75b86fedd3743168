"""Issue 13 item 3: the CLI sends a token only to the exact origin (scheme, host, port)
it was issued for. Two real HTTP servers on 127.0.0.1, on different ports: the registry
the user logged in to, and another one (MinIO on the next port, or a registry that a
``memos.lock`` names). The other one must never see the ``Authorization`` header."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runtime.cli.main import main
from runtime.client import RegistryClient
from runtime.config import load_settings, save_token
from runtime.credentials import BoundToken, origin_of
from runtime.errors import RegistryError

TOKEN = "mst_secret-token-for-the-registry"


class Recorder:
    """A real HTTP server that records each request's Authorization header."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append((self.path, self.headers.get("Authorization")))
                body = b"blob bytes" if "/blob" in self.path else b'{"error": {"code": '
                body += b"" if "/blob" in self.path else b'"registry.not_found",'
                body += b"" if "/blob" in self.path else b' "message": "no", "detail": {}}}'
                self.send_response(200 if "/blob" in self.path else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def authorizations(self) -> list[str | None]:
        return [auth for _, auth in self.seen]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


@pytest.fixture
def other() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def test_origins_compare_scheme_host_and_port() -> None:
    assert origin_of("http://h:80/x") == origin_of("http://H/y")
    assert origin_of("https://h/") != origin_of("http://h/")
    assert origin_of("http://h:9000/") != origin_of("http://h:8000/")


def test_a_download_on_another_port_of_the_same_host_gets_no_token(
    registry: Recorder, other: Recorder
) -> None:
    assert origin_of(registry.url)[1] == origin_of(other.url)[1]  # same host, other port
    with RegistryClient(registry.url, token=TOKEN) as client:
        with client.stream(f"{other.url}/blob/1") as response:
            response.read()
        with client.stream(f"{registry.url}/blob/2") as response:
            response.read()
    assert other.authorizations() == [None]
    assert registry.authorizations() == [f"Bearer {TOKEN}"]


def test_a_token_bound_to_one_registry_is_not_sent_to_another(
    registry: Recorder, other: Recorder
) -> None:
    bound = BoundToken(TOKEN, registry.url)
    with RegistryClient(other.url, token=bound) as client, pytest.raises(RegistryError):
        client.whoami()
    assert other.authorizations() == [None]


def test_install_locked_does_not_send_the_stored_token_to_the_lockfiles_registry(
    registry: Recorder, other: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEMOS_TOKEN", raising=False)
    monkeypatch.delenv("MEMOS_REGISTRY", raising=False)
    monkeypatch.chdir(tmp_path)
    save_token(load_settings(), registry.url, TOKEN)  # what `memos login` stores
    entry = {
        "version": "1.0.0",
        "registry": other.url,  # a lockfile from someone else names another registry
        "sha256": "0" * 64,
        "size": 10,
        "manifest_sha256": "0" * 64,
        "signed_by": [],
        "keys": [],
    }
    lock = {"lockfile_version": 1, "packs": {"acme/docs": entry}}
    (tmp_path / "memos.lock").write_text(json.dumps(lock), "utf-8")
    assert main(["install", "--locked", "--quiet"]) != 0  # the other registry answers 404
    assert other.seen, "the lockfile's registry was asked"
    assert other.authorizations() == [None] * len(other.seen)


def test_memos_token_from_the_environment_is_bound_to_the_configured_registry(
    registry: Recorder, other: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEMOS_TOKEN", TOKEN)
    monkeypatch.setenv("MEMOS_REGISTRY", registry.url)
    token = load_settings().token_for(registry.url)
    assert token == TOKEN
    with RegistryClient(other.url, token=token) as client, pytest.raises(RegistryError):
        client.whoami()
    assert other.authorizations() == [None]
    assert load_settings().token_for(other.url) is None  # not for another registry


def test_install_locked_sends_neither_token_to_the_wrong_one_of_two_logged_in_registries(
    registry: Recorder, other: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logged in to both live origins, with a different token each; the lockfile names
    the second. The first registry's token (and MEMOS_TOKEN, meant for the first) never
    reaches the second; whatever the second sees is its own token or none."""
    other_token = "mst_token-of-the-second-registry"
    monkeypatch.setenv("MEMOS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEMOS_REGISTRY", raising=False)
    monkeypatch.chdir(tmp_path)
    save_token(load_settings(), other.url, other_token)
    save_token(load_settings(), registry.url, TOKEN)  # the default registry: the first
    monkeypatch.setenv("MEMOS_TOKEN", "mst_from-the-environment")
    assert load_settings().registry == registry.url
    entry = {
        "version": "1.0.0",
        "registry": other.url,
        "sha256": "0" * 64,
        "size": 10,
        "manifest_sha256": "0" * 64,
        "signed_by": [],
        "keys": [],
    }
    lock = {"lockfile_version": 1, "packs": {"acme/docs": entry}}
    (tmp_path / "memos.lock").write_text(json.dumps(lock), "utf-8")
    assert main(["install", "--locked", "--quiet"]) != 0  # the second registry answers 404
    assert other.seen, "the lockfile's registry was asked"
    assert set(other.authorizations()) <= {None, f"Bearer {other_token}"}
    assert not registry.seen or set(registry.authorizations()) <= {
        None, "Bearer mst_from-the-environment"
    }  # fmt: skip
    assert load_settings().token_for(other.url) == other_token  # its own, bound to it
