"""The one trust rule: verdicts per signature, revocations judged at a time."""

from datetime import UTC, datetime, timedelta

import pytest

from protocol import Signature, SignatureError, SignerStatus, TrustedKey, TrustedKeys
from protocol.conformance.generate import KEY_A, KEY_B, KEY_C

MESSAGE = b'{"canonical":"manifest"}'
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _keys(revoked_at: datetime | None = None, *, revoked: bool = False) -> TrustedKeys:
    return TrustedKeys(
        [
            TrustedKey(KEY_A.public_key, revoked=revoked, revoked_at=revoked_at, label="laptop"),
            TrustedKey(KEY_B.public_key),
        ]
    )


def test_each_signature_gets_a_verdict():
    forged = Signature(KEY_B.keyid, KEY_C.sign(MESSAGE).value)
    result = _keys().verify(MESSAGE, [KEY_A.sign(MESSAGE), forged, KEY_C.sign(MESSAGE)])
    assert [s.status for s in result.signers] == [
        SignerStatus.VERIFIED,
        SignerStatus.INVALID,
        SignerStatus.UNKNOWN_KEY,
    ]
    assert result.valid == (KEY_A.keyid,)
    assert result.tampered == (KEY_B.keyid,)
    assert not result.ok
    with pytest.raises(SignatureError) as info:
        result.raise_for_status()
    assert info.value.code == "signature.invalid"


def test_a_key_revoked_before_the_time_of_judgement_is_refused():
    keys = _keys(revoked_at=T0)
    with pytest.raises(SignatureError) as info:
        keys.verify_or_raise(MESSAGE, [KEY_A.sign(MESSAGE)], at=T0 + timedelta(days=1))
    assert info.value.code == "signature.revoked_key"
    assert keys.verify(MESSAGE, [KEY_A.sign(MESSAGE)], at=T0).signers[0].status == "revoked"


def test_a_key_revoked_after_the_time_of_judgement_still_verifies_and_says_so():
    check = (
        _keys(revoked_at=T0)
        .verify(MESSAGE, [KEY_A.sign(MESSAGE)], at=T0 - timedelta(seconds=1))
        .raise_for_status()
        .signers[0]
    )
    assert check.status is SignerStatus.VERIFIED
    assert check.revoked_later
    assert check.key is not None and check.key.label == "laptop"


def test_a_revocation_without_a_time_counts_at_every_time():
    keys = _keys(revoked=True)
    for at in (None, T0 - timedelta(days=3650)):
        assert keys.verify(MESSAGE, [KEY_A.sign(MESSAGE)], at=at).revoked == (KEY_A.keyid,)
    # judged with no time, a revocation dated in the future counts too
    assert _keys(revoked_at=T0).verify(MESSAGE, [KEY_A.sign(MESSAGE)]).revoked == (KEY_A.keyid,)


def test_a_bad_signature_by_a_revoked_key_is_revoked_not_tampering():
    bad = Signature(KEY_A.keyid, KEY_B.sign(MESSAGE).value)
    result = _keys(revoked=True).verify(MESSAGE, [bad])
    assert result.signers[0].status is SignerStatus.INVALID
    assert result.tampered == ()
    with pytest.raises(SignatureError) as info:
        result.raise_for_status()
    assert info.value.code == "signature.revoked_key"


def test_a_valid_signature_wins_over_a_revoked_one():
    result = _keys(revoked=True).verify_or_raise(
        MESSAGE, [KEY_A.sign(MESSAGE), KEY_B.sign(MESSAGE)]
    )
    assert result.valid == (KEY_B.keyid,)
    assert result.revoked == (KEY_A.keyid,)


def test_keys_in_force_leave_out_the_revoked_ones():
    keys = TrustedKeys.of([KEY_A.public_key, KEY_B.public_key], revoked=[KEY_A.keyid])
    assert keys.in_force() == (KEY_B.public_key,)
    assert len(keys) == 2 and KEY_A.keyid in keys and keys.get(KEY_C.keyid) is None
    assert _keys(revoked_at=T0).in_force(at=T0 - timedelta(days=1)) == (
        KEY_A.public_key,
        KEY_B.public_key,
    )


@pytest.mark.parametrize(
    ("signatures", "code"),
    [
        ([], "signature.missing"),
        ([KEY_C.sign(MESSAGE)], "signature.untrusted"),
    ],
)
def test_refusals_keep_their_codes(signatures, code):
    with pytest.raises(SignatureError) as info:
        _keys().verify_or_raise(MESSAGE, signatures)
    assert info.value.code == code


def test_threshold():
    keys = _keys()
    with pytest.raises(SignatureError) as info:
        keys.verify_or_raise(MESSAGE, [KEY_A.sign(MESSAGE)], threshold=2)
    assert info.value.code == "signature.threshold"
    with pytest.raises(ValueError, match="threshold"):
        keys.verify(MESSAGE, [], threshold=0)
    two = keys.verify_or_raise(MESSAGE, [KEY_A.sign(MESSAGE), KEY_B.sign(MESSAGE)], threshold=2)
    assert two.missing == 0
