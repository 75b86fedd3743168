import io
import json
import struct

import numpy as np
import pytest

from protocol import (
    KV_INPUT_IDS,
    Manifest,
    MemoryRecord,
    ModelFingerprint,
    PayloadError,
    fingerprint_digest,
    iter_memory_records,
    kv_tensor_name,
    read_safetensors_header,
    validate_payload,
)
from protocol.conformance import generate as g
from protocol.payloads import MAX_JSONL_LINE, dumps_records


def _records(data: bytes, **kw):
    return list(iter_memory_records(io.BytesIO(data), **kw))


def _code(call):
    with pytest.raises(PayloadError) as info:
        call()
    return info.value.code


def test_memory_records_are_parsed_and_blank_lines_skipped():
    records = _records(g.NOTES + b"\n  \n" + g.EMBEDDED)
    assert [r.id for r in records] == ["m1", "m2", "e1"]
    assert records[0].tags == ("geo",)
    assert records[1].created_at == g.T0
    assert (
        records[2].embedding == (0.5, -1.0, 2.25)
        and records[2].embedding_model == "example/embedder"
    )


def test_dumps_records_round_trips():
    records = [
        MemoryRecord("a", "text", ("t",), g.T0, g.T0, {"k": 1}, (1.0, 2.0), "emb"),
        MemoryRecord("b", "x"),
    ]
    assert _records(dumps_records(records)) == records
    assert dumps_records([]) == b""


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "payload.duplicate_memory_id"),
        (b"not json\n", "payload.bad_jsonl"),
        (b'\xff{"id":"a"}\n', "payload.bad_jsonl"),
        (b'{"id": "a"}\n', "payload.bad_memory_record"),
        (
            b'{"id": "a", "text": "x", "created_at": "2025-02-30T00:00:00Z"}\n',
            "payload.bad_memory_record",
        ),
        (
            b'{"id":"a","text":"x","embedding":{"model":"m","dimension":2,"vector":[1]}}',
            "payload.embedding_dimension",
        ),
        (
            b'{"id":"a","text":"x","embedding":{"model":"m","dimension":1,"vector":[1e400]}}',
            "payload.embedding_dimension",
        ),
        (
            b'{"id":"a","text":"x","embedding":{"model":"m","dimension":1,"vector":[1'
            + b"0" * 400
            + b"]}}",
            "payload.embedding_dimension",
        ),
        (b'{"id":"a","text":"' + b"a" * MAX_JSONL_LINE + b'"}', "payload.jsonl_line_too_long"),
    ],
)
def test_bad_memory_payloads_are_refused_with_their_code(data, code):
    assert _code(lambda: _records(data)) == code


def test_embedding_dimension_must_match_the_cube():
    assert (
        _code(lambda: _records(g.EMBEDDED, expected_dimension=4)) == "payload.embedding_dimension"
    )
    assert len(_records(g.EMBEDDED, expected_dimension=3)) == 1


def test_safetensors_header_is_parsed_by_hand():
    data = g.kv_cache()
    header = read_safetensors_header(io.BytesIO(data), len(data))
    assert header.metadata["mip.kind"] == "kv-cache"
    assert header.tensors[KV_INPUT_IDS].dtype == "I64"
    assert header.tensors[kv_tensor_name(1, "value")].shape == (1, 2, 3, 4)
    assert header.data_offset == 8 + struct.unpack("<Q", data[:8])[0]


def _st(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x80\x04K\x01.", "payload.pickle_forbidden"),
        (b"PK\x03\x04" + b"\x00" * 40, "payload.pickle_forbidden"),
        (b"abc", "payload.not_safetensors"),
        (struct.pack("<Q", 10**12), "payload.not_safetensors"),
        (
            _st({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})[:-3],
            "payload.not_safetensors",
        ),
        (_st([1]), "payload.not_safetensors"),
        (struct.pack("<Q", 4) + b"nope", "payload.not_safetensors"),
        (_st({"__metadata__": {"a": 1}}), "payload.not_safetensors"),
        (_st({"t": 5}), "payload.not_safetensors"),
        (
            _st({"t": {"dtype": "X", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
            "payload.not_safetensors",
        ),
        (
            _st({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
            "payload.not_safetensors",
        ),
        (
            _st({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, b"\0" * 4),
            "payload.not_safetensors",
        ),
        (
            _st({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 4),
            "payload.not_safetensors",
        ),
        (
            _st({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
            "payload.not_safetensors",
        ),
        (
            _st(
                {
                    "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                    "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]},
                },
                b"\0" * 8,
            ),
            "payload.not_safetensors",
        ),
        (
            _st({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8),
            "payload.not_safetensors",
        ),
    ],
)
def test_bad_safetensors_are_refused(data, code):
    assert _code(lambda: read_safetensors_header(io.BytesIO(data), len(data))) == code


def _cube(manifest_data):
    return Manifest.from_dict(manifest_data).cubes[0]


def _validate(cube, index, body):
    validate_payload(cube, cube.payloads[index], io.BytesIO(body))


def test_kv_cache_matching_its_fingerprint_is_accepted():
    body = g.kv_cache()
    _validate(_cube(g.manifest_dict(g.activation_cube(body))), 0, body)


def _kv(tensors, fp=g.FINGERPRINT, kind="kv-cache"):
    digest = fingerprint_digest(ModelFingerprint.from_dict(fp))
    from safetensors.numpy import save

    return save(tensors, metadata={"mip.kind": kind, "mip.fingerprint": digest})


def _full_kv(seq=3, dtype=np.float32, drop=None, extra=None, ids_dtype=np.int64):
    t = {KV_INPUT_IDS: np.arange(seq, dtype=ids_dtype)}
    for layer in range(2):
        for part in ("key", "value"):
            t[kv_tensor_name(layer, part)] = np.zeros((1, 2, seq, 4), dtype=dtype)
    if drop:
        del t[drop]
    t.update(extra or {})
    return t


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_kv(_full_kv(), kind="other"), "payload.kv_cache_shape"),
        (_kv(_full_kv(), fp={**g.FINGERPRINT, "head_dim": 8}), "payload.fingerprint_mismatch"),
        (_kv(_full_kv(ids_dtype=np.int32)), "payload.kv_cache_shape"),
        (_kv(_full_kv(drop=KV_INPUT_IDS)), "payload.kv_cache_shape"),
        (_kv(_full_kv(drop="layers.1.value")), "payload.kv_cache_shape"),
        (_kv(_full_kv(dtype=np.float16)), "payload.kv_cache_shape"),
        (
            _kv(_full_kv(extra={"layers.2.key": np.zeros((1,), dtype=np.float32)})),
            "payload.kv_cache_shape",
        ),
    ],
)
def test_kv_caches_that_do_not_fit_the_fingerprint_are_refused(body, code):
    cube = _cube(g.manifest_dict(g.activation_cube(body)))
    assert _code(lambda: _validate(cube, 0, body)) == code


def test_lora_adapter_is_accepted_and_bad_ones_refused():
    weights = g.lora_weights()
    cube = _cube(g.manifest_dict(g.parameter_cube(g.LORA_CONFIG, weights)))
    _validate(cube, 0, g.LORA_CONFIG)
    _validate(cube, 1, weights)
    from safetensors.numpy import save

    cases = [
        (0, b"{", "payload.lora_config"),
        (0, b'{"peft_type":"LORA"}', "payload.lora_config"),
        (1, save({}), "payload.lora_weights"),
        (1, save({"x.lora_A.weight": np.zeros((1,), dtype=np.int8)}), "payload.lora_weights"),
        (1, g.lora_weights(bad_name=True), "payload.lora_weights"),
    ]
    for index, body, code in cases:
        cube = _cube(
            g.manifest_dict(
                g.parameter_cube(
                    body if index == 0 else g.LORA_CONFIG, body if index == 1 else weights
                )
            )
        )
        assert _code(lambda cube=cube, index=index, body=body: _validate(cube, index, body)) == code


def test_oversized_lora_config_is_refused():
    big = b" " * (MAX_JSONL_LINE + 1)
    cube = _cube(g.manifest_dict(g.parameter_cube(big, g.lora_weights())))
    assert _code(lambda: _validate(cube, 0, big)) == "payload.lora_config"


def test_memory_text_with_nul_is_refused_as_bad_jsonl() -> None:
    line = b'{"id": "m1", "text": "before\\u0000after"}\n'
    with pytest.raises(PayloadError) as caught:
        list(iter_memory_records(io.BytesIO(line)))
    assert caught.value.code == "payload.bad_jsonl"


def _encoded_kv(encoding, scales=True, seq=3, meta=None):
    """A KV cache in ``encoding`` (SPEC 4.2.1) for the 2-layer test fingerprint."""
    from safetensors.numpy import save

    dtype = {"fp16": np.float16, "int8": np.int8}[encoding]
    t = _full_kv(seq=seq, dtype=dtype)
    if encoding == "int8" and scales:
        for layer in range(2):
            for part in ("key", "value"):
                t[f"layers.{layer}.{part}_scale"] = np.ones((1, 2, seq, 1), dtype=np.float16)
    digest = fingerprint_digest(ModelFingerprint.from_dict(g.FINGERPRINT))
    metadata = {"mip.kind": "kv-cache", "mip.fingerprint": digest, "mip.kv.encoding": encoding}
    if encoding == "int8":
        metadata["mip.kv.scales"] = "per-token"
    metadata.update(meta or {})
    return save(t, metadata={k: v for k, v in metadata.items() if v is not None})


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_encoded_kv("fp16"), None),
        (_encoded_kv("int8"), None),
        (_encoded_kv("int8", meta={"mip.kv.shared_prefix": "2"}), None),
        (_encoded_kv("int8", scales=False), "payload.kv_cache_shape"),
        (_encoded_kv("int8", meta={"mip.kv.scales": None}), "payload.kv_cache_shape"),
        (_encoded_kv("fp16", meta={"mip.kv.encoding": "int4"}), "payload.kv_cache_shape"),
        (_encoded_kv("fp16", meta={"mip.kv.positions": "none"}), "payload.kv_cache_shape"),
        (_encoded_kv("fp16", meta={"mip.kv.shared_prefix": "9"}), "payload.kv_cache_shape"),
    ],
)
def test_declared_kv_encodings_must_match_their_tensors(body, code):
    cube = _cube(g.manifest_dict(g.activation_cube(body)))
    if code is None:
        _validate(cube, 0, body)
    else:
        assert _code(lambda: _validate(cube, 0, body)) == code
