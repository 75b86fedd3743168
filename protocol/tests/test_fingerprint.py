import hashlib

import pytest

from protocol import MIPError, canonical_bytes, config_digest, tokenizer_digest
from protocol.fingerprint import VOLATILE_CONFIG_KEYS


def test_config_digest_is_sha256_of_canonical_config_without_volatile_keys():
    config = {"hidden_size": 8, "architectures": ["X"], "transformers_version": "4.1", "dtype": "f"}
    expected = hashlib.sha256(
        canonical_bytes({"hidden_size": 8, "architectures": ["X"]})
    ).hexdigest()
    assert config_digest(config) == expected


def test_config_digest_ignores_volatile_keys_at_any_depth_and_key_order():
    a = {"b": 1, "a": {"_name_or_path": "/tmp/x", "n": [{"torch_dtype": "f", "k": 2}]}}
    b = {"a": {"n": [{"k": 2}]}, "b": 1, "_commit_hash": "abc"}
    assert config_digest(a) == config_digest(b)


def test_config_digest_keeps_architectures_and_sees_real_changes():
    assert "architectures" not in VOLATILE_CONFIG_KEYS
    assert config_digest({"architectures": ["A"]}) != config_digest({"architectures": ["B"]})
    assert config_digest({"hidden_size": 8}) != config_digest({"hidden_size": 9})


def test_config_digest_refuses_values_json_cannot_carry():
    with pytest.raises(MIPError) as info:
        config_digest({"x": float("nan")})
    assert info.value.code == "manifest.not_canonicalizable"
    with pytest.raises(MIPError):
        config_digest(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_tokenizer_digest_is_sha256_of_canonical_vocab_and_special_tokens():
    vocab = {"b": 1, "a": 0}
    specials = {"eos_token": "b", "pad_token": None}
    expected = hashlib.sha256(
        canonical_bytes({"vocab": vocab, "special_tokens": specials})
    ).hexdigest()
    assert tokenizer_digest(vocab, specials) == expected
    assert tokenizer_digest(vocab, specials) != tokenizer_digest(vocab, {"eos_token": "a"})


@pytest.mark.parametrize(
    ("vocab", "specials"),
    [({"a": True}, {}), ({"a": "0"}, {}), ({"a": 0}, {"eos": 5}), ({1: 0}, {})],
)
def test_tokenizer_digest_refuses_malformed_inputs(vocab, specials):
    with pytest.raises(MIPError):
        tokenizer_digest(vocab, specials)
