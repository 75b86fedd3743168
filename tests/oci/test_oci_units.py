"""The OCI client's parsing and refusals without a registry: references, manifests and blob
streams from outside data (hypothesis), and HTTP answers from an httpx.MockTransport."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import BlobEntry, SigningKey, canonical_bytes, manifest_blobs, read_pack
from runtime.cli.errors import hint_for
from runtime.errors import RegistryError
from runtime.oci import (
    OCIClient,
    OCIError,
    OCIPackSource,
    OCIReference,
    build_manifest,
    parse_manifest,
    parse_reference,
)
from runtime.oci.client import verified_chunks
from runtime.oci.mapping import BLOB_MEDIA_TYPE, check_pack, tag_for_version
from runtime.tests.helpers import build_pack

_component = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4}){0,2}", fullmatch=True)
_repository = st.lists(_component, min_size=1, max_size=4).map("/".join)
_host = st.sampled_from(["localhost", "127.0.0.1:5000", "registry.example.com", "[::1]:8080",
                         "ghcr.io", "a-b.c.example:443"])  # fmt: skip
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


def _code(fn: Callable[..., object], *args: object) -> str | None:
    """The code of the OCIError ``fn(*args)`` raises, or None when it raises nothing."""
    try:
        fn(*args)
    except OCIError as exc:
        return exc.code
    return None


_digest = st.binary(min_size=1, max_size=8).map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest())


@given(_host, _repository, st.none() | _tag, st.none() | _digest)
def test_reference_round_trips(host: str, repo: str, tag: str | None, digest: str | None) -> None:
    ref = OCIReference(host, repo, tag, digest)
    assert parse_reference(str(ref)) == ref


@given(st.text(max_size=80))
def test_reference_parser_refuses_with_a_stable_code(text: str) -> None:
    assert _code(parse_reference, "oci://" + text) in (None, "oci.bad_reference")


def test_loopback_hosts_use_plain_http_others_https() -> None:
    assert parse_reference("oci://127.0.0.1:5000/a/b:1").base_url() == "http://127.0.0.1:5000"
    assert parse_reference("oci://localhost/a/b:1").base_url() == "http://localhost"
    assert parse_reference("oci://[::1]:5000/a/b:1").base_url() == "http://[::1]:5000"
    assert parse_reference("oci://ghcr.io/a/b:1").base_url() == "https://ghcr.io"
    assert parse_reference("oci://ghcr.io/a/b:1").base_url(plain_http=True) == "http://ghcr.io"


@pytest.mark.parametrize("text", ["oci://host", "oci://host/", "oci://host/Upper/case:1",
                                  "oci://host/a/b:bad tag", "oci://host/a@sha256:xyz",
                                  "https://host/a/b:1", "oci://host:99999/a/b:1"])  # fmt: skip
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(OCIError) as info:
        parse_reference(text)
    assert info.value.code == "oci.bad_reference"


def test_a_reference_without_tag_or_digest_names_no_manifest() -> None:
    with pytest.raises(OCIError) as info:
        _ = parse_reference("oci://host/acme/tips").manifest_ref
    assert info.value.code == "oci.bad_reference"


def test_versions_with_build_metadata_get_a_legal_tag() -> None:
    assert tag_for_version("1.2.0+build.7") == "1.2.0_build.7"


# ---------------------------------------------------------------- the mapping


@pytest.fixture
def pack_path(tmp_path: Path) -> Path:
    return build_pack(tmp_path, name="acme/tips", keys=[SigningKey.from_seed(b"u" * 32)],
                      memories=["one", "two"])  # fmt: skip


def test_build_then_parse_keeps_config_blobs_and_signatures(pack_path: Path) -> None:
    pack = read_pack(pack_path)
    blobs = manifest_blobs(pack.manifest)
    data = build_manifest(pack.manifest_bytes, blobs, pack.signatures)
    assert data == canonical_bytes(json.loads(data))  # canonical: same pack, same digest
    oci = parse_manifest(data)
    assert oci.config.sha256 == hashlib.sha256(pack.manifest_bytes).hexdigest()
    assert [d.sha256 for d in oci.blobs] == [b.sha256 for b in blobs]
    assert len(oci.signatures) == 1
    assert oci.annotations["org.opencontainers.image.title"] == "acme/tips"
    check_pack(oci, pack.manifest, parse_reference("oci://h/mirror/acme/tips:1.0.0"))


def _doc(pack_path: Path) -> dict[str, object]:
    pack = read_pack(pack_path)
    doc: dict[str, object] = json.loads(
        build_manifest(pack.manifest_bytes, manifest_blobs(pack.manifest), pack.signatures)
    )
    return doc


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda d: d.update(artifactType="application/vnd.other"), "oci.not_a_pack"),
        (lambda d: d["config"].update(mediaType="application/vnd.oci.image.config.v1+json"),
         "oci.not_a_pack"),
        (lambda d: d.update(mediaType="application/vnd.oci.image.index.v1+json"),
         "oci.not_a_pack"),
        (lambda d: d.update(schemaVersion=1), "oci.bad_manifest"),
        (lambda d: d["layers"][0].update(mediaType="application/vnd.oci.image.layer.v1.tar"),
         "oci.bad_manifest"),
        (lambda d: d["layers"][0].update(digest="sha256:XYZ"), "oci.bad_manifest"),
        (lambda d: d["layers"][0].update(size=-1), "oci.bad_manifest"),
        (lambda d: d["layers"].append(d["layers"][0]), "oci.bad_manifest"),
        (lambda d: d["config"].update(size=5 * 1024**2), "oci.too_large"),
    ],
)
def test_parse_refuses_what_is_not_a_mip_pack(pack_path: Path, change: object, code: str) -> None:
    doc = _doc(pack_path)
    change(doc)  # type: ignore[operator]
    with pytest.raises(OCIError) as info:
        parse_manifest(json.dumps(doc).encode())
    assert info.value.code == code


def test_layers_must_be_exactly_the_signed_blobs(pack_path: Path) -> None:
    pack = read_pack(pack_path)
    doc = _doc(pack_path)
    layers = doc["layers"]
    assert isinstance(layers, list)
    doc["layers"] = [layer for layer in layers if layer["mediaType"] != BLOB_MEDIA_TYPE]
    with pytest.raises(OCIError) as info:
        check_pack(parse_manifest(json.dumps(doc).encode()), pack.manifest,
                   parse_reference("oci://h/acme/tips:1.0.0"))  # fmt: skip
    assert info.value.code == "oci.layers_mismatch"


@settings(max_examples=200)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "digest", "size",
                         "annotations", "artifactType", "x"]), inner, max_size=5),
    max_leaves=20,
))  # fmt: skip
def test_parse_manifest_refuses_any_json_with_a_stable_code(value: object) -> None:
    code = _code(parse_manifest, json.dumps(value).encode())
    assert code is None or (code.startswith("oci.") and hint_for(code) is not None)


@given(st.binary(max_size=200))
def test_parse_manifest_refuses_any_bytes_with_a_stable_code(data: bytes) -> None:
    code = _code(parse_manifest, data)
    assert code is None or code.startswith("oci.")


# ---------------------------------------------------------------- blob streams


@given(st.lists(st.binary(max_size=64), max_size=6), st.integers(min_value=0, max_value=400))
def test_verified_chunks_never_pass_a_byte_beyond_the_declared_size(
    chunks: list[bytes], size: int
) -> None:
    data = b"".join(chunks)
    digest = "sha256:" + hashlib.sha256(data[:size]).hexdigest()
    got: list[bytes] = []
    code = _code(lambda: got.extend(verified_chunks(iter(chunks), digest, size)))
    assert code == (None if len(data) == size else "oci.blob_size_mismatch")
    assert len(b"".join(got)) <= size


def test_verified_chunks_refuse_other_bytes() -> None:
    digest = "sha256:" + hashlib.sha256(b"good").hexdigest()
    with pytest.raises(OCIError) as info:
        list(verified_chunks(iter([b"evil"]), digest, 4))
    assert info.value.code == "oci.blob_digest_mismatch"


# ---------------------------------------------------------------- HTTP answers


def _client(handler: object) -> OCIClient:
    return OCIClient("http://reg", "acme/tips", transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "code"),
                         [(401, "oci.unauthorized"), (403, "oci.forbidden"), (500, "oci.http")])
def test_refusals_keep_the_registry_error_codes(status: int, code: str) -> None:
    body = {"errors": [{"code": "DENIED", "message": "no"}]}
    client = _client(lambda request: httpx.Response(status, json=body))
    with pytest.raises(OCIError) as info:
        client.get_manifest("1.0.0", limit=1024)
    assert info.value.code == code
    assert info.value.detail["registry_errors"] == ["DENIED"] and info.value.status == status


def test_a_manifest_whose_bytes_are_not_the_announced_digest_is_refused() -> None:
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
               "Docker-Content-Digest": "sha256:" + "0" * 64}  # fmt: skip
    client = _client(lambda request: httpx.Response(200, content=b"{}", headers=headers))
    with pytest.raises(OCIError) as info:
        client.get_manifest("1.0.0", limit=1024)
    assert info.value.code == "oci.manifest_digest_mismatch"


def test_a_manifest_by_digest_must_have_that_digest() -> None:
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    client = _client(lambda request: httpx.Response(200, content=b"{}", headers=headers))
    with pytest.raises(OCIError) as info:
        client.get_manifest("sha256:" + "1" * 64, limit=1024)
    assert info.value.code == "oci.manifest_digest_mismatch"


def test_a_docker_image_is_not_a_pack() -> None:
    headers = {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}
    client = _client(lambda request: httpx.Response(200, content=b"{}", headers=headers))
    with pytest.raises(OCIError) as info:
        client.get_manifest("latest", limit=1024)
    assert info.value.code == "oci.not_a_pack"


def test_an_oversized_manifest_is_cut_off() -> None:
    client = _client(lambda request: httpx.Response(200, content=b" " * 5000))
    with pytest.raises(OCIError) as info:
        client.get_manifest("latest", limit=4096)
    assert info.value.code == "oci.too_large"


def test_a_blob_longer_than_declared_is_refused() -> None:
    data = b"x" * 100
    digest = "sha256:" + hashlib.sha256(data[:10]).hexdigest()
    client = _client(lambda request: httpx.Response(200, content=data))
    with pytest.raises(OCIError) as info:
        client.read_blob(digest, 10)
    assert info.value.code == "oci.blob_size_mismatch"


def test_a_missing_blob_and_an_unreachable_registry_have_codes() -> None:
    client = _client(lambda request: httpx.Response(404))
    with pytest.raises(OCIError) as info:
        client.read_blob("sha256:" + "2" * 64, 3)
    assert info.value.code == "oci.blob_missing"

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(OCIError) as info:
        _client(down).has_blob("sha256:" + "2" * 64)
    assert info.value.code == "oci.network"


def test_upload_follows_relative_locations_and_sends_the_digest() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url)))
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/acme/tips/blobs/uploads/u1?_s=1"})
        return httpx.Response(201, headers={"Docker-Content-Digest": request.url.params["digest"]})

    digest = "sha256:" + hashlib.sha256(b"abc").hexdigest()
    _client(handler).upload_blob(digest, 3, b"abc")
    assert seen[1][0] == "PUT" and "_s=1" in seen[1][1] and "digest=sha256%3A" in seen[1][1]


def test_every_oci_code_has_a_hint() -> None:
    from runtime.oci import errors

    codes = [line.split()[0] for line in (errors.__doc__ or "").splitlines()
             if line.strip().startswith("oci.")]  # fmt: skip
    assert len(codes) >= 15
    for code in codes:
        assert hint_for(code) is not None and hint_for(code) != hint_for("oci.zzz"), code


# ---------------------------------------------------------------- the pack source


def _source(pack_path: Path, handler: object) -> tuple[OCIPackSource, BlobEntry]:
    pack = read_pack(pack_path)
    oci = parse_manifest(
        build_manifest(pack.manifest_bytes, manifest_blobs(pack.manifest), pack.signatures)
    )
    source = OCIPackSource(_client(handler), parse_reference("oci://reg/acme/tips:1.0.0"), oci,
                           "sha256:" + "0" * 64, pack.manifest_bytes, pack.manifest,
                           pack.signatures)  # fmt: skip
    return source, manifest_blobs(pack.manifest)[0]


def test_source_resumes_with_a_range_and_skips_a_restart(pack_path: Path) -> None:
    data = bytes(range(256)) * 4
    ranges: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ranges.append(request.headers.get("range"))
        if len(ranges) == 1:
            return httpx.Response(206, content=data[100:],
                                  headers={"Content-Range": f"bytes 100-{len(data) - 1}/*"})
        return httpx.Response(200, content=data)  # a registry that ignores Range

    source, entry = _source(pack_path, handler)
    with source.open_blob(entry, 100) as chunks:
        assert b"".join(chunks) == data[100:]
    with source.open_blob(entry, 100) as chunks:
        assert b"".join(chunks) == data[100:]
    assert ranges == ["bytes=100-", "bytes=100-"]
    assert source.label == "oci"


def test_source_turns_a_broken_transfer_into_a_retryable_network_error(pack_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    source, entry = _source(pack_path, handler)
    with pytest.raises(RegistryError) as info, source.open_blob(entry) as chunks:
        list(chunks)
    assert info.value.code.startswith("network.")


def test_source_keeps_refusals_as_they_are(pack_path: Path) -> None:
    source, entry = _source(pack_path, lambda request: httpx.Response(404))
    with pytest.raises(OCIError) as info, source.open_blob(entry) as chunks:
        list(chunks)
    assert info.value.code == "oci.blob_missing"
