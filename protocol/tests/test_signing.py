import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from protocol import (
    PublicKey,
    Signature,
    SignatureError,
    SigningKey,
    key_id,
    sign_manifest,
    verify_or_raise,
    verify_signatures,
)
from protocol.conformance.generate import KEY_A, KEY_B, KEY_C

MESSAGE = b'{"canonical":"manifest"}'


def test_key_id_is_sha256_of_the_raw_public_key():
    import hashlib

    assert (
        KEY_A.keyid
        == hashlib.sha256(KEY_A.public_key.raw).hexdigest()
        == key_id(KEY_A.public_key.raw)
    )


def test_signing_is_deterministic_and_verifies():
    sig = sign_manifest(MESSAGE, KEY_A)
    assert sig == sign_manifest(MESSAGE, KEY_A)
    assert KEY_A.public_key.verify(sig.value, MESSAGE)
    assert not KEY_A.public_key.verify(sig.value, MESSAGE + b" ")


def test_public_key_text_and_pem_round_trip():
    pub = KEY_A.public_key
    assert pub.to_text().startswith("ed25519:")
    assert PublicKey.from_text(pub.to_text()) == pub
    assert PublicKey.load(pub.to_text().encode()) == pub
    assert PublicKey.load(pub.to_pem()) == pub
    assert PublicKey.from_pem(pub.to_pem()) == pub


@pytest.mark.parametrize(
    "text",
    [
        "rsa:AAAA",
        "ed25519",
        "ed25519:not base64!",
        "ed25519:" + base64.b64encode(b"short").decode(),
    ],
)
def test_malformed_public_key_text_is_refused(text):
    with pytest.raises(SignatureError) as info:
        PublicKey.from_text(text)
    assert info.value.code == "signature.bad_key"


def test_non_ed25519_and_garbage_keys_are_refused():
    ec = generate_private_key(SECP256R1())
    ec_pub = ec.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ec_priv = ec.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for call in (
        lambda: PublicKey.from_pem(ec_pub),
        lambda: PublicKey.from_pem(b"-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n"),
        lambda: PublicKey.load(b"\xff\xfe"),
        lambda: SigningKey.from_pem(ec_priv),
        lambda: SigningKey.from_pem(b"garbage"),
    ):
        with pytest.raises(SignatureError) as info:
            call()
        assert info.value.code == "signature.bad_key"


def test_private_key_pem_round_trip_with_and_without_password():
    key = SigningKey.generate()
    assert SigningKey.from_pem(key.to_pem()).keyid == key.keyid
    locked = key.to_pem(b"secret")
    assert SigningKey.from_pem(locked, b"secret").keyid == key.keyid
    with pytest.raises(SignatureError):
        SigningKey.from_pem(locked, b"wrong")
    assert "private" not in repr(key).lower() or "_private" not in repr(key)


def test_signature_file_round_trip_is_canonical_json():
    sig = KEY_A.sign(MESSAGE)
    body = sig.to_bytes()
    assert json.loads(body) == {
        "alg": "ed25519",
        "keyid": KEY_A.keyid,
        "sig": base64.b64encode(sig.value).decode(),
    }
    assert Signature.from_bytes(body) == sig


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"[]", "signature.malformed"),
        (b"{", "signature.malformed"),
        (b'{"alg":"rsa","keyid":"00","sig":""}', "signature.unsupported_algorithm"),
        (b'{"alg":"ed25519","keyid":"XY","sig":""}', "signature.malformed"),
        (b'{"alg":"ed25519","keyid":"' + b"0" * 64 + b'","sig":5}', "signature.malformed"),
        (b'{"alg":"ed25519","keyid":"' + b"0" * 64 + b'","sig":"!!"}', "signature.malformed"),
        (b'{"alg":"ed25519","keyid":"' + b"0" * 64 + b'","sig":"AAAA"}', "signature.malformed"),
    ],
)
def test_malformed_signature_files_are_refused(data, code):
    with pytest.raises(SignatureError) as info:
        Signature.from_bytes(data)
    assert info.value.code == code


def test_verification_result_reports_valid_invalid_and_untrusted():
    good = KEY_A.sign(MESSAGE)
    bad = Signature(KEY_B.keyid, KEY_B.sign(b"other").value)
    stranger = KEY_C.sign(MESSAGE)
    result = verify_signatures(MESSAGE, [good, bad, stranger], [KEY_A.public_key, KEY_B.public_key])
    assert result.valid == (KEY_A.keyid,)
    assert result.invalid == (KEY_B.keyid,)
    assert result.untrusted == (KEY_C.keyid,)
    assert not result.ok
    ok = verify_signatures(MESSAGE, [good, good], {"a": KEY_A.public_key}, threshold=2)
    assert ok.valid == (KEY_A.keyid,) and ok.missing == 1 and not ok.ok


def test_verify_or_raise_codes():
    good_a, good_b = KEY_A.sign(MESSAGE), KEY_B.sign(MESSAGE)
    trusted = [KEY_A.public_key, KEY_B.public_key]
    assert verify_or_raise(MESSAGE, [good_a, good_b], trusted, threshold=2).ok
    cases = [
        ([], trusted, 1, "signature.missing"),
        ([KEY_C.sign(MESSAGE)], trusted, 1, "signature.untrusted"),
        ([good_a], trusted, 2, "signature.threshold"),
        ([good_a, Signature(KEY_B.keyid, good_a.value)], trusted, 1, "signature.invalid"),
    ]
    for sigs, keys, threshold, code in cases:
        with pytest.raises(SignatureError) as info:
            verify_or_raise(MESSAGE, sigs, keys, threshold=threshold)
        assert info.value.code == code


def test_threshold_must_be_positive():
    with pytest.raises(ValueError, match="threshold"):
        verify_signatures(MESSAGE, [], [], threshold=0)
