import hashlib

import pytest

from protocol import (
    MIPError,
    ModelFingerprint,
    canonical_bytes,
    config_digest,
    fingerprint_digest,
    tokenizer_digest,
    weights_digest,
)
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


# --------------------------------------------------------------------------- weights (MIP 1.1)

A, B = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()


def test_weights_digest_is_sha256_of_canonical_file_digests():
    files = {"model-00002-of-00002.safetensors": B, "model-00001-of-00002.safetensors": A}
    expected = hashlib.sha256(canonical_bytes({"files": files})).hexdigest()
    assert weights_digest(files) == expected
    assert weights_digest(dict(reversed(list(files.items())))) == expected
    assert weights_digest({"model.safetensors": A}) != weights_digest({"model.safetensors": B})
    assert weights_digest({"model.safetensors": A}) != weights_digest({"other.safetensors": A})


@pytest.mark.parametrize(
    "files",
    [{}, {"dir/model.safetensors": A}, {"": A}, {"m.gguf": "ABC"}, {"m.gguf": A.upper()}],
)
def test_weights_digest_refuses_malformed_inputs(files):
    with pytest.raises(MIPError) as info:
        weights_digest(files)
    assert info.value.code == "manifest.not_canonicalizable"


def _fingerprint(**fields):
    base = {
        "architecture": "A",
        "model_id": "m",
        "config_sha256": "0" * 64,
        "tokenizer_sha256": "1" * 64,
        "dtype": "float32",
        "num_layers": 1,
        "num_kv_heads": 1,
        "head_dim": 1,
    }
    return ModelFingerprint.from_dict(base | fields)


def test_weights_are_checked_when_the_artefact_names_them():
    bound, other = _fingerprint(weights_sha256=A), _fingerprint(weights_sha256=B)
    unbound = _fingerprint()
    assert bound.mismatches(_fingerprint(weights_sha256=A, model_id="x")) == []
    assert bound.mismatches(other) == ["weights_sha256"]
    assert bound.mismatches(unbound) == ["weights_sha256"]  # the running model's are unknown
    assert unbound.mismatches(bound) == []  # a MIP 1.0 artefact binds config and shapes only


def test_weights_round_trip_and_stay_out_of_the_kv_header_digest():
    bound = _fingerprint(weights_sha256=A)
    assert bound.to_dict()["weights_sha256"] == A
    assert "weights_sha256" not in _fingerprint().to_dict()
    assert ModelFingerprint.from_dict(bound.to_dict()) == bound
    assert fingerprint_digest(bound) == fingerprint_digest(_fingerprint())
