"""Blob bodies over http.client (runtime._body): the rules httpx kept, kept here too.

A real server on 127.0.0.1 answers each path its own way: a blob, a redirect
to another origin, an error, a body cut short, a chunked body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runtime import _body
from runtime.client import RegistryClient
from runtime.credentials import BoundToken
from runtime.errors import RegistryError

BLOB = bytes(range(256)) * 4096  # 1 MiB


class _Server:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, str | None]] = []
        self.other: _Server | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.seen.append(
                    (self.path, self.headers.get("Authorization"), self.headers.get("Range"))
                )
                server.answer(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        if h.path == "/blob":
            rng = h.headers.get("Range")
            body, status = BLOB, 200
            if rng:
                start, _, last = rng.removeprefix("bytes=").partition("-")
                body = BLOB[int(start) : int(last) + 1 if last else None]
                status = 206
            h.send_response(status)
            if status == 206:
                h.send_header("Content-Range", f"bytes {start}-{int(start) + len(body) - 1}/*")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        elif h.path == "/elsewhere":
            assert self.other is not None
            h.send_response(302)
            h.send_header("Location", f"{self.other.url}/blob")
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif h.path == "/here":
            h.send_response(307)
            h.send_header("Location", "/blob")
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif h.path == "/gone":
            error = {"error": {"code": "registry.not_found", "message": "no such blob"}}
            payload = json.dumps(error).encode()
            h.send_response(404)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        elif h.path == "/short":
            h.send_response(200)
            h.send_header("Content-Length", str(len(BLOB)))
            h.end_headers()
            h.wfile.write(BLOB[:1000])
            h.close_connection = True
        elif h.path == "/chunked":
            h.send_response(200)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            for i in range(0, len(BLOB), 300_000):
                piece = BLOB[i : i + 300_000]
                h.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            h.wfile.write(b"0\r\n\r\n")
        elif h.path == "/loop":
            h.send_response(302)
            h.send_header("Location", "/loop")
            h.send_header("Content-Length", "0")
            h.end_headers()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[_Server, _Server]]:
    a, b = _Server(), _Server()
    a.other = b
    yield a, b
    a.close()
    b.close()


def _client(server: _Server) -> RegistryClient:
    return RegistryClient(server.url, token=BoundToken("secret-token", server.url + "/"))


def _read(client: RegistryClient, path: str, **kwargs: Any) -> tuple[int, bytes]:
    with client.open_blob_body(path, **kwargs) as body:
        return body.status_code, b"".join(bytes(c) for c in body.chunks)


def test_a_blob_comes_whole_and_ranges_are_asked_for(servers: tuple[_Server, _Server]) -> None:
    a, _ = servers
    client = _client(a)
    assert _read(client, "/blob") == (200, BLOB)
    assert _read(client, "/blob", offset=10, end=20) == (206, BLOB[10:20])
    assert _read(client, "/blob", offset=1000) == (206, BLOB[1000:])
    assert [r for _, _, r in a.seen] == [None, "bytes=10-19", "bytes=1000-"]


def test_the_token_goes_to_its_origin_and_no_further(servers: tuple[_Server, _Server]) -> None:
    a, b = servers
    client = _client(a)
    assert _read(client, "/here") == (200, BLOB)
    assert [auth for _, auth, _ in a.seen] == ["Bearer secret-token"] * 2
    assert _read(client, "/elsewhere") == (200, BLOB)  # another port: another origin
    assert b.seen == [("/blob", None, None)]


def test_an_error_answer_is_the_registrys_error(servers: tuple[_Server, _Server]) -> None:
    a, _ = servers
    with pytest.raises(RegistryError) as err:
        _read(_client(a), "/gone")
    assert err.value.code == "registry.not_found"


def test_a_body_cut_short_is_a_retryable_interruption(servers: tuple[_Server, _Server]) -> None:
    a, _ = servers
    with pytest.raises(RegistryError) as err:
        _read(_client(a), "/short")
    assert err.value.code == "network.download_interrupted"


def test_a_chunked_body_is_decoded(servers: tuple[_Server, _Server]) -> None:
    a, _ = servers
    assert _read(_client(a), "/chunked") == (200, BLOB)


def test_endless_redirects_stop(servers: tuple[_Server, _Server]) -> None:
    a, _ = servers
    with pytest.raises(RegistryError) as err:
        _read(_client(a), "/loop")
    assert err.value.code == "network.download_failed"
    assert len(a.seen) == 6


def test_an_unreachable_server_is_a_network_failure() -> None:
    with pytest.raises(RegistryError) as err:
        _read(RegistryClient("http://127.0.0.1:9"), "/blob")
    assert err.value.code == "network.download_failed"


def test_a_proxy_from_the_environment_leaves_the_download_to_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _body.usable_for("https://registry.example/blob")
    assert not _body.usable_for("file:///tmp/x")
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    assert not _body.usable_for("https://registry.example/blob")
    monkeypatch.setenv("no_proxy", "registry.example")
    assert _body.usable_for("https://registry.example/blob")
