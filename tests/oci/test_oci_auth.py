"""The registry token challenge (``WWW-Authenticate: Bearer``) against an httpx.MockTransport."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.oci import OCIClient, OCIError
from runtime.oci.auth import TokenAuth, parse_challenge

DIGEST = "sha256:" + hashlib.sha256(b"x").hexdigest()
CHALLENGE = 'Bearer realm="{realm}",service="reg.example",scope="repository:acme/tips:pull"'


class Registry:
    """A registry that wants a Bearer token, and its token service."""

    def __init__(self, realm: str = "https://auth.example/token") -> None:
        self.realm = realm
        self.token_requests: list[httpx.Request] = []
        self.seen_auth: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            self.token_requests.append(request)
            return httpx.Response(200, json={"token": "tok-1"})
        self.seen_auth.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != "Bearer tok-1":
            return httpx.Response(
                401, headers={"WWW-Authenticate": CHALLENGE.format(realm=self.realm)}
            )
        return httpx.Response(200)


def _client(handler: object, auth: httpx.Auth) -> OCIClient:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    return OCIClient("https://reg.example", "acme/tips", transport=transport, auth=auth)


def test_an_anonymous_token_is_fetched_once_and_reused() -> None:
    registry = Registry()
    client = _client(registry, TokenAuth())
    assert client.has_blob(DIGEST) and client.has_blob(DIGEST)
    assert len(registry.token_requests) == 1
    params = registry.token_requests[0].url.params
    assert params["service"] == "reg.example" and params["scope"] == "repository:acme/tips:pull"
    assert "authorization" not in registry.token_requests[0].headers
    assert registry.seen_auth == [None, "Bearer tok-1", "Bearer tok-1"]


def test_credentials_go_to_a_tls_realm() -> None:
    registry = Registry()
    _client(registry, TokenAuth("me", "pat")).has_blob(DIGEST)
    expected = "Basic " + base64.b64encode(b"me:pat").decode()
    assert registry.token_requests[0].headers["authorization"] == expected


def test_credentials_never_go_to_a_plain_http_realm_elsewhere() -> None:
    registry = Registry(realm="http://elsewhere.example/token")
    _client(registry, TokenAuth("me", "pat")).has_blob(DIGEST)
    assert "authorization" not in registry.token_requests[0].headers


def test_a_refused_token_is_unauthorized() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(401)
        return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE.format(
            realm="https://auth.example/token")})  # fmt: skip

    with pytest.raises(OCIError) as info:
        _client(handler, TokenAuth()).has_blob(DIGEST)
    assert info.value.code == "oci.unauthorized"


def test_a_registry_without_a_usable_challenge_is_unauthorized() -> None:
    client = _client(lambda request: httpx.Response(401), TokenAuth())
    with pytest.raises(OCIError) as info:
        client.has_blob(DIGEST)
    assert info.value.code == "oci.unauthorized"


@given(st.text(max_size=200))
def test_any_challenge_header_parses(header: str) -> None:
    scheme, params = parse_challenge(header)
    assert isinstance(scheme, str) and all(isinstance(v, str) for v in params.values())
