import copy
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from protocol import (
    AccessPolicy,
    Behaviour,
    Governance,
    Manifest,
    ManifestError,
    MemoryType,
    ModelFingerprint,
    Provenance,
    canonical_bytes,
    format_timestamp,
    parse_json,
    parse_timestamp,
)
from protocol.conformance import generate as g
from protocol.manifest import MAX_JSON_DEPTH, MAX_MANIFEST_BYTES


def _codes(data):
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(data)
    return info.value


def test_minimal_manifest_round_trips_to_identical_canonical_bytes(manifest_data):
    manifest = Manifest.from_dict(manifest_data)
    assert manifest.to_dict() == manifest_data
    assert manifest.canonical_bytes() == canonical_bytes(manifest_data)


def test_round_trip_keeps_defaults_written_explicitly():
    data = g.manifest_dict(
        g.plaintext_cube(
            behaviour={"access_count": 0, "priority": 0.5},
            governance={"access": {"visibility": "public", "principals": []}},
            provenance={"derived_from": []},
        ),
        description="",
        authors=[],
        keywords=[],
    )
    assert Manifest.from_dict(data).to_dict() == data


def test_round_trip_does_not_add_defaults_that_were_absent():
    data = g.manifest_dict(g.plaintext_cube(behaviour={}, governance={}, provenance={}))
    assert Manifest.from_dict(data).to_dict() == data


def test_unknown_fields_are_kept_at_every_level():
    data = g.manifest_dict(
        g.plaintext_cube(
            x_cube=1,
            provenance={"source": "s", "x_p": [1]},
            governance={"access": {"visibility": "private", "x_a": True}, "x_g": None},
            behaviour={"priority": 0.25, "x_b": {}},
            embedding={"model": "e", "dimension": 2, "x_e": "e"},
        ),
        x_top={"deep": [None]},
        authors=[{"name": "A", "x_author": 2}],
    )
    data["cubes"][0]["payloads"][0]["x_payload"] = "p"
    act = g.activation_cube(b"")
    act["model"]["x_model"] = 7
    data["cubes"].append(act)
    manifest = Manifest.from_dict(data)
    assert manifest.to_dict() == data
    assert manifest.extra == {"x_top": {"deep": [None]}}
    assert manifest.cubes[1].model is not None and manifest.cubes[1].model.extra == {"x_model": 7}


def test_explicit_nulls_are_kept():
    data = g.manifest_dict(
        g.plaintext_cube(
            governance={"ttl_seconds": None, "expires_at": None},
            behaviour={"last_accessed_at": None},
        )
    )
    assert Manifest.from_dict(data).to_dict() == data


def test_typed_fields_and_conveniences(manifest_data):
    manifest = Manifest.from_dict(g.manifest_dict(g.plaintext_cube(), g.activation_cube(b"abc")))
    assert manifest.namespace == "example"
    assert manifest.short_name == "conformance"
    assert manifest.ref == "example/conformance@1.0.0"
    assert manifest.memory_types == ["activation", "plaintext"]
    assert manifest.cube("prefix").memory_type is MemoryType.ACTIVATION
    assert manifest.total_size == len(g.NOTES) + 3
    assert len(manifest.payloads()) == 2
    assert manifest.cube("notes").payload("application/vnd.mip.memories+jsonl") is not None
    assert manifest.cube("notes").payload("application/vnd.mip.kv-cache+safetensors") is None
    assert manifest.cube("notes").size == len(g.NOTES)
    with pytest.raises(KeyError):
        manifest.cube("nope")
    assert manifest.with_cubes(manifest.cubes[:1]).cubes == manifest.cubes[:1]


def test_programmatic_objects_serialise_without_defaults():
    assert Behaviour().to_dict() == {}
    assert Behaviour(access_count=2, priority=0.7).to_dict() == {"access_count": 2, "priority": 0.7}
    assert Governance().to_dict() == {}
    assert Governance(AccessPolicy("restricted", ("u",))).to_dict() == {
        "access": {"visibility": "restricted", "principals": ["u"]}
    }
    assert Provenance(derived_from=("a",)).to_dict() == {"derived_from": ["a"]}


def test_access_policy_allows():
    assert AccessPolicy().allows(None)
    assert AccessPolicy("restricted", ("bob",)).allows("bob")
    assert not AccessPolicy("restricted", ("bob",)).allows("eve")
    assert not AccessPolicy("private").allows(None)


def test_fingerprint_compatibility_ignores_model_id():
    fp = ModelFingerprint.from_dict(g.FINGERPRINT)
    renamed = ModelFingerprint.from_dict({**g.FINGERPRINT, "model_id": "/local/path"})
    other = ModelFingerprint.from_dict({**g.FINGERPRINT, "head_dim": 8})
    assert fp.is_compatible(renamed)
    assert fp.mismatches(other) == ["head_dim"]
    assert not fp.is_compatible(other)


def test_every_schema_violation_is_reported_with_its_pointer(manifest_data):
    data = copy.deepcopy(manifest_data)
    data["version"] = "1.0"
    data["name"] = "Bad Name"
    del data["title"]
    data["cubes"][0]["payloads"][0]["size"] = -1
    error = _codes(data)
    assert error.code == "manifest.schema"
    pointers = {v.pointer for v in error.violations}
    assert {"/version", "/name", "", "/cubes/0/payloads/0/size"} <= pointers
    messages = {v.pointer: v.message for v in error.violations}
    assert messages["/version"] == '"1.0" is not a semantic version (MAJOR.MINOR.PATCH)'
    assert "and 3 more" in error.message


@pytest.mark.parametrize(
    ("mutate", "pointer", "needle"),
    [
        (
            lambda d: d["cubes"].append(copy.deepcopy(d["cubes"][0])),
            "/cubes/1/id",
            "duplicate cube id",
        ),
        (
            lambda d: d["cubes"][0]["payloads"][0].update(path="payloads/else/x"),
            "/cubes/0/payloads/0/path",
            "under",
        ),
        (lambda d: d.update(created_at="2025-02-30T00:00:00Z"), "/created_at", "real timestamp"),
        (
            lambda d: d["cubes"][0].update(governance={"expires_at": "2025-13-01T00:00:00Z"}),
            "/cubes/0/governance/expires_at",
            "real timestamp",
        ),
        (
            lambda d: d["cubes"][0].update(behaviour={"last_accessed_at": "2025-01-01T25:00:00Z"}),
            "/cubes/0/behaviour/last_accessed_at",
            "real timestamp",
        ),
    ],
)
def test_cross_field_rules(manifest_data, mutate, pointer, needle):
    mutate(manifest_data)
    error = _codes(manifest_data)
    assert any(v.pointer == pointer and needle in v.message for v in error.violations), (
        error.violations
    )


def test_payload_paths_must_not_clash_with_folders_of_others():
    cube = g.plaintext_cube()
    second = copy.deepcopy(cube["payloads"][0])
    second["path"] = cube["payloads"][0]["path"] + "/inner"
    cube["payloads"].append(second)
    error = _codes(g.manifest_dict(cube))
    assert any("clashes" in v.message for v in error.violations)
    cube["payloads"].reverse()
    assert any("clashes" in v.message for v in _codes(g.manifest_dict(cube)).violations)


def test_payload_paths_are_unique_ignoring_case():
    cube = g.plaintext_cube()
    second = copy.deepcopy(cube["payloads"][0])
    second["path"] = second["path"].upper().replace("PAYLOADS/NOTES", "payloads/notes")
    cube["payloads"].append(second)
    assert any(
        "duplicate payload path" in v.message for v in _codes(g.manifest_dict(cube)).violations
    )


def test_memory_type_rules_are_enforced():
    act = g.activation_cube(b"x")
    del act["model"]
    assert _codes(g.manifest_dict(act)).code == "manifest.schema"
    plain = g.plaintext_cube()
    plain["payloads"][0]["media_type"] = "application/vnd.mip.kv-cache+safetensors"
    assert _codes(g.manifest_dict(plain)).code == "manifest.schema"


def test_manifest_must_be_an_object():
    assert _codes([1]).code == "manifest.schema"


def test_from_bytes_accepts_any_spelling_and_refuses_oversize(manifest_data):
    pretty = json.dumps(manifest_data, indent=4).encode()
    assert Manifest.from_bytes(pretty).to_dict() == manifest_data
    with pytest.raises(ManifestError) as info:
        Manifest.from_bytes(b" " * (MAX_MANIFEST_BYTES + 1))
    assert info.value.code == "archive.limit.manifest_size"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xff{}", "manifest.bad_encoding"),
        (b"\xef\xbb\xbf{}", "manifest.bad_encoding"),
        (b'{"a":1,"a":2}', "manifest.bad_json"),
        (b'{"a":NaN}', "manifest.bad_json"),
        (b'{"a":Infinity}', "manifest.bad_json"),
        (b"{", "manifest.bad_json"),
        (b"[" * 100000 + b"]" * 100000, "manifest.bad_json"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "manifest.too_deep"),
        (b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1), "manifest.too_deep"),
    ],
)
def test_parse_json_is_strict(data, code):
    with pytest.raises(ManifestError) as info:
        parse_json(data)
    assert info.value.code == code


def test_parse_json_accepts_depth_at_the_limit():
    depth = MAX_JSON_DEPTH
    assert parse_json(b"[" * depth + b"]" * depth) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (
            "2025-01-02T03:04:05.5+01:00",
            datetime(2025, 1, 2, 3, 4, 5, 500000, tzinfo=timezone(timedelta(hours=1))),
        ),
        (
            "2025-01-02T03:04:05.123456789-02:30",
            datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(-timedelta(hours=2, minutes=30))),
        ),
    ],
)
def test_parse_timestamp(text, expected):
    assert parse_timestamp(text) == expected


def test_parse_timestamp_needs_an_offset():
    with pytest.raises(ValueError, match="offset"):
        parse_timestamp("2025-01-02T03:04:05")


def test_format_timestamp_writes_utc_z():
    assert (
        format_timestamp(datetime(2025, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))))
        == "2025-01-02T03:04:05Z"
    )
    assert (
        format_timestamp(datetime(2025, 1, 2, 3, 4, 5, 120000, tzinfo=UTC))
        == "2025-01-02T03:04:05.120000Z"
    )


@pytest.mark.parametrize(
    "document",
    [
        b'{"title": "a\\u0000b"}',
        b'{"a\\u0000": 1}',
        b'["x", ["\\u0000"]]',
        b'"\\u0000"',
        b'{"title": "\\ud800"}',
    ],
)
def test_parse_json_refuses_nul_and_lone_surrogates_in_any_string(document: bytes) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_json(document)
    assert caught.value.code == "manifest.bad_encoding"


def test_parse_json_keeps_an_escaped_backslash_before_u0000() -> None:
    assert parse_json(b'{"t": "\\\\u0000"}') == {"t": "\\u0000"}
