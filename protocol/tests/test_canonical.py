import hashlib

import pytest

from protocol import ManifestError, canonical_bytes, canonical_sha256


def test_canonical_bytes_sort_keys_and_drop_whitespace():
    assert canonical_bytes({"b": [1, 2.0, "é"], "a": None}) == '{"a":null,"b":[1,2,"é"]}'.encode()


def test_canonical_sha256_hashes_canonical_bytes():
    assert canonical_sha256({"a": 1}) == hashlib.sha256(b'{"a":1}').hexdigest()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**60, {1: "x"}, "\ud800", object()])
def test_values_without_a_canonical_form_are_refused(value):
    with pytest.raises(ManifestError) as info:
        canonical_bytes(value)
    assert info.value.code == "manifest.not_canonicalizable"
