"""MIP 2 signatures are DSSE envelopes over an in-toto statement (SPEC section 16).

The cross-check verifies a pack's envelope with securesystemslib alone: no
project code on the verification path, as a third-party tool would.
"""

import base64
import hashlib
import json
import tarfile

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from protocol import SignatureError, dsse, pack_directory, read_pack, sign_manifest, verify_or_raise
from protocol.conformance import generate as g
from protocol.signing import DSSE_ALGORITHM, SIGNATURE_ALGORITHM, Signature

from .conftest import write_source


def _sslib_key(key):
    raw = key.public_key.raw
    return SSlibKey(key.keyid, "ed25519", "ed25519", {"public": raw.hex()})


@pytest.fixture
def pack2(tmp_path):
    kv, weights = g.kv_cache(), g.lora_weights()
    manifest = g.manifest_dict(
        g.plaintext_cube(), g.activation_cube(kv), g.parameter_cube(g.LORA_CONFIG, weights)
    )
    bodies = [g.NOTES, kv, g.LORA_CONFIG, weights]
    source = write_source(tmp_path / "src", manifest, g.payload_map(manifest, bodies))
    out = tmp_path / "p.memcube"
    pack_directory(source, out, keys=[g.KEY_A, g.KEY_B], mip_version="2.0")
    return out


def _members(path):
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_securesystemslib_verifies_the_envelope_and_the_subjects_match_the_files(pack2):
    members = _members(pack2)
    envelope = Envelope.from_dict(json.loads(members[f"signatures/{g.KEY_A.keyid}.json"]))
    assert envelope.payload_type == "application/vnd.in-toto+json"
    verified = envelope.verify([_sslib_key(g.KEY_A)], 1)
    assert list(verified) == [g.KEY_A.keyid]
    statement = json.loads(envelope.pae().split(b" ", 4)[4])
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://memstore.dev/mip/2/pack"
    manifest = json.loads(members["manifest.json"])
    assert statement["predicate"]["manifest"] == manifest
    first, *files = statement["subject"]
    assert first == {
        "name": f"{manifest['name']}@{manifest['version']}",
        "digest": {"sha256": hashlib.sha256(members["manifest.json"]).hexdigest()},
    }
    stored = {
        n.removeprefix("blobs/sha256/").removesuffix(".zst") for n in members if "blobs/" in n
    }
    assert {s["digest"]["sha256"] for s in files} == stored
    paths = [p["path"] for c in manifest["cubes"] for p in c["payloads"]]
    assert [s["name"] for s in files] == sorted(paths)


def test_securesystemslib_refuses_another_key_and_a_changed_statement(pack2):
    members = _members(pack2)
    body = members[f"signatures/{g.KEY_A.keyid}.json"]
    with pytest.raises(VerificationError):
        Envelope.from_dict(json.loads(body)).verify([_sslib_key(g.KEY_B)], 1)
    data = json.loads(body)  # Envelope.from_dict consumes the dict it is given
    statement = json.loads(base64.b64decode(data["payload"]))
    statement["subject"][1]["digest"]["sha256"] = "0" * 64
    data["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(data).verify([_sslib_key(g.KEY_A)], 1)


def test_a_2x_pack_reads_with_dsse_signatures_that_verify(pack2):
    pack = read_pack(pack2)
    assert {s.algorithm for s in pack.signatures} == {DSSE_ALGORITHM}
    assert all(s.statement is None for s in pack.signatures)  # not kept after the check
    result = verify_or_raise(
        pack.manifest_bytes, pack.signatures, [g.KEY_A.public_key, g.KEY_B.public_key], threshold=2
    )
    assert len(result.valid) == 2


def test_a_dsse_signature_does_not_verify_over_the_raw_manifest_or_another_manifest(pack2):
    pack = read_pack(pack2)
    sig = next(s for s in pack.signatures if s.keyid == g.KEY_A.keyid)
    assert not g.KEY_A.public_key.verify(sig.value, pack.manifest_bytes)
    other = json.loads(pack.manifest_bytes)
    other["version"] = "9.9.9"
    other_bytes = dsse.canonical_bytes(other)
    assert not sig.verifies(g.KEY_A.public_key, other_bytes)
    assert sig.verifies(g.KEY_A.public_key, pack.manifest_bytes)


def test_the_wire_form_is_compact_and_round_trips(pack2):
    sig = read_pack(pack2).signatures[0]
    wire = sig.to_dict()
    assert wire["alg"] == DSSE_ALGORITHM and set(wire) == {"alg", "keyid", "sig"}
    assert Signature.from_dict(wire) == sig
    assert Signature.from_bytes(sig.to_bytes()) == sig


def test_a_1x_manifest_is_signed_in_the_detached_form_and_dsse_never_verifies_it():
    manifest = dsse.canonical_bytes(g.manifest_dict())
    sig = sign_manifest(manifest, g.KEY_A)
    assert sig.algorithm == SIGNATURE_ALGORITHM and sig.envelope_bytes(manifest) == sig.to_bytes()
    assert g.KEY_A.public_key.verify(sig.value, manifest)
    as_dsse = Signature(sig.keyid, sig.value, DSSE_ALGORITHM)
    assert as_dsse.signed_message(manifest) is None
    assert not as_dsse.verifies(g.KEY_A.public_key, manifest)
    assert sign_manifest(b"not json", g.KEY_A).algorithm == SIGNATURE_ALGORITHM


def test_pae_is_the_dsse_v1_encoding():
    assert dsse.pae("t", b"hello") == b"DSSEv1 1 t 5 hello"


@pytest.mark.parametrize(
    ("envelope", "code"),
    [
        ({"payloadType": "x", "payload": "", "signatures": []}, "signature.unsupported_algorithm"),
        ({"payloadType": dsse.PAYLOAD_TYPE, "payload": 3, "signatures": []}, "signature.malformed"),
        (
            {"payloadType": dsse.PAYLOAD_TYPE, "payload": "%%", "signatures": []},
            "signature.malformed",
        ),
        (
            {"payloadType": dsse.PAYLOAD_TYPE, "payload": "", "signatures": []},
            "signature.malformed",
        ),
        (
            {"payloadType": dsse.PAYLOAD_TYPE, "payload": "", "signatures": [{"keyid": 1}]},
            "signature.malformed",
        ),
        (
            {"payloadType": dsse.PAYLOAD_TYPE, "payload": "", "signatures": [{"keyid": "ab"}]},
            "signature.malformed",
        ),
        (
            {
                "payloadType": dsse.PAYLOAD_TYPE,
                "payload": "",
                "signatures": [{"keyid": "a" * 64, "sig": base64.b64encode(b"x").decode()}],
            },
            "signature.malformed",
        ),
        ({"alg": DSSE_ALGORITHM, "keyid": 5, "sig": ""}, "signature.malformed"),
    ],
)
def test_malformed_envelopes_are_refused_with_a_stable_code(envelope, code):
    with pytest.raises(SignatureError) as err:
        Signature.from_dict(envelope)
    assert err.value.code == code
