from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import MIPError, PackRef, parse_ref
from runtime._wire import (
    parse_error,
    parse_key,
    parse_keys,
    parse_publish_result,
    parse_resolution,
    parse_token,
    parse_upload_offset,
    parse_upload_session,
    parse_whoami,
)
from runtime.client import RegistryClient
from runtime.errors import MemosError, RegistryError
from runtime.tests.fake_registry import FakeRegistry
from runtime.tests.helpers import build_pack

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_parse_resolution_never_crashes_on_garbage(value: Any) -> None:
    with contextlib.suppress(MemosError, MIPError):
        parse_resolution(value)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    st.sampled_from(["name", "version", "signatures", "keys", "pack", "manifest_b64"]), json_values
)
def test_a_corrupted_field_of_a_real_answer_is_refused_cleanly(
    tmp_path_factory: Any, field: str, value: Any
) -> None:
    body = _real_body(tmp_path_factory.mktemp("p"))
    body[field] = value
    body.pop("manifest", None)
    with contextlib.suppress(MemosError, MIPError):
        parse_resolution(body)


_BODY: dict[str, Any] = {}


def _real_body(tmp: Any) -> dict[str, Any]:
    if not _BODY:
        from protocol import SigningKey

        key = SigningKey.from_seed(b"w" * 32)
        reg = FakeRegistry()
        reg.add_key("acme", key.public_key)
        reg.publish(build_pack(tmp, name="acme/tips", keys=[key]))
        _, _, raw = reg.respond("/api/v1/resolve/acme/tips", {})
        _BODY.update(json.loads(raw))
    return json.loads(json.dumps(_BODY))


def test_parse_resolution_of_a_real_answer(tmp_path: Any) -> None:
    res = parse_resolution(_real_body(tmp_path))
    assert res.name == "acme/tips"
    assert res.manifest.name == "acme/tips"
    assert len(res.trusted_keys()) == 1


def test_manifest_object_is_accepted_without_b64(tmp_path: Any) -> None:
    body = _real_body(tmp_path)
    raw = base64.b64decode(body.pop("manifest_b64"))
    assert parse_resolution(body).manifest_bytes == raw


def test_name_mismatch_is_refused(tmp_path: Any) -> None:
    body = _real_body(tmp_path)
    body["name"] = "evil/tips"
    with pytest.raises(RegistryError) as info:
        parse_resolution(body)
    assert info.value.code == "registry.bad_response"


def test_error_bodies_map_to_codes() -> None:
    body = {"error": {"code": "registry.no_matching_version", "message": "no",
                      "detail": {"available": ["1.0.0"]}}}
    err = parse_error(404, json.dumps(body).encode())
    assert err.code == "registry.no_matching_version"
    assert err.detail["server_detail"] == {"available": ["1.0.0"]}
    assert parse_error(502, b"<html>").code == "http.502"


def test_client_sends_bearer_token_and_spec() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"error": {"code": "registry.not_found", "message": "x", "detail": {}}}
        return httpx.Response(404, json=body)

    transport = httpx.MockTransport(handler)
    with RegistryClient("http://reg/", token="mst_x", transport=transport) as client:
        with pytest.raises(RegistryError):
            client.resolve(parse_ref("acme/tips@^1.2"))
        with pytest.raises(RegistryError):
            client.resolve(PackRef("acme/tips", parse_ref("acme/tips").spec))
    assert seen[0].headers["Authorization"] == "Bearer mst_x"
    assert seen[0].url.path == "/api/v1/resolve/acme/tips"
    assert seen[0].url.params["spec"] == "^1.2"
    assert "spec" not in seen[1].url.params


def test_token_is_not_sent_to_another_host() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"x")

    client = RegistryClient("http://reg/", token="mst_x", transport=httpx.MockTransport(handler))
    with client, client.stream("https://s3.example/bucket/blob?sig=1") as response:
        response.read()
    assert "Authorization" not in seen[0].headers


def test_unreachable_registry() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route")

    client = RegistryClient("http://reg/", transport=httpx.MockTransport(handler))
    with client, pytest.raises(RegistryError) as info:
        client.resolve(parse_ref("acme/tips"))
    assert info.value.code == "network.unreachable"


@given(
    st.sampled_from([parse_key, parse_keys, parse_token, parse_whoami, parse_publish_result,
                     parse_upload_session, parse_upload_offset]),
    json_values,
)
def test_every_other_answer_parser_refuses_garbage_cleanly(parse: Any, value: Any) -> None:
    with contextlib.suppress(MemosError, MIPError):
        parse(value)


def test_resolve_keys_take_their_id_from_the_key_itself(tmp_path: Any) -> None:
    body = _real_body(tmp_path)
    real = body["keys"][0]["keyid"]
    body["keys"][0]["keyid"] = "f" * 64
    [key] = parse_resolution(body).keys
    assert key.keyid == real == key.public_key.keyid
    assert parse_key(body["keys"][0]).keyid == "f" * 64  # the keys endpoints report the server's


def test_a_key_object_has_the_same_shape_in_resolve_and_the_keys_endpoints(tmp_path: Any) -> None:
    raw = _real_body(tmp_path)["keys"][0]
    from_resolve = parse_key(raw, own_keyid=True)
    assert from_resolve == parse_key(raw)
    assert (from_resolve.label, from_resolve.created_at) == ("test", "2026-01-01T00:00:00Z")
    assert not from_resolve.revoked and from_resolve.revocation_reason == ""


def test_an_answer_that_is_not_json_is_a_bad_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>")

    client = RegistryClient("http://reg/", transport=httpx.MockTransport(handler))
    with client, pytest.raises(RegistryError) as info:
        client.whoami()
    assert info.value.code == "registry.bad_response"


@pytest.mark.parametrize("offset", [-1, "12", True, 1.5])
def test_an_upload_session_with_a_bad_offset_is_a_bad_response(offset: Any) -> None:
    with pytest.raises(RegistryError) as info:
        parse_upload_session({"id": "u1", "offset": offset})
    assert info.value.code == "registry.bad_response"
